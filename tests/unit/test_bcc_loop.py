"""The event loop the BPF sources share (core/bcc.batches), driven by a plain
poll function standing in for bcc's buffer poll: this tier has no bcc to compile
with (the kernel tier runs the real buffers through it)."""

from __future__ import annotations

import time

from v6diag.core.bcc import batches


class Buffer:
    def __init__(self, arrivals):
        self.arrivals, self.pending, self.polls = list(arrivals), [], []

    def poll(self, timeout):
        self.polls.append(timeout)
        if self.arrivals:
            self.pending.extend(self.arrivals.pop(0))

    def take(self):
        out, self.pending = self.pending, []
        return out


def test_batches_ticks_and_drains_at_the_deadline():
    buf = Buffer([[1, 2], [], [3]])
    got = list(batches(buf.poll, buf.take, time.monotonic() + 0.3))
    events = [x for b in got if b for x in b]
    assert events == [1, 2, 3] and None in got
    assert all(0 <= t <= 200 for t in buf.polls)
    assert buf.polls[-1] == 0  # the last poll after the deadline does not wait


def test_what_arrives_at_the_deadline_is_still_delivered():
    buf = Buffer([])
    deadline = time.monotonic() - 1  # already past: draining from the start
    buf.arrivals = [[7, 8]]
    assert list(batches(buf.poll, buf.take, deadline)) == [[7, 8]]


def test_without_events_only_ticks_until_the_deadline():
    ticks = list(batches(None, list, time.monotonic() + 0.25))
    assert ticks and set(ticks) == {None}


def test_no_deadline_ticks_for_ever():
    buf = Buffer([[1]])
    it = batches(buf.poll, buf.take, None)
    assert next(it) == [1] and next(it) is None and next(it) is None
