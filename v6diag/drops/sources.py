"""Where drop events come from, best first (the `bpf` source is bpf.py): the
tracepoint through tracefs (reason, location, EtherType; host-wide), or the SNMP
counters (totals per reason, per namespace)."""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Iterator

from v6diag.core import tracefs
from v6diag.drops import counters
from v6diag.drops.report import DropEvent

ETHERTYPES = {0x86DD: "ipv6", 0x0800: "ipv4", 0x0806: "arp"}


class TracefsDrops:
    name = "tracefs"

    def __init__(self, fmt: tracefs.DropFormat, root, reasons: list[int] | None):
        self.fmt = fmt
        self.trace = tracefs.DropTrace(root, fmt, reasons=reasons)
        self._offset = time.time() - time.monotonic()  # the instance stamps CLOCK_MONOTONIC

    def events(self, deadline: float | None) -> Iterator[DropEvent | None]:
        for line in self.trace.lines(deadline):
            if line is None:
                yield None
                continue
            yield {"time": round(self._offset + line.ts, 6), "reason": line.reason, "location": line.location,
                   "family": ETHERTYPES.get(line.protocol), "proto": None, "src": None, "dst": None, "sport": None,
                   "dport": None, "ifname": None, "netns": None, "inner": None, "source": self.name}

    def drain(self) -> Iterator[DropEvent]:
        """What is already in the buffer, without waiting (after Ctrl-C)."""
        for ev in self.events(time.monotonic()):
            if ev is not None:
                yield ev

    def dropped(self) -> int:
        return self.trace.lost()

    def counts(self) -> Counter | None:
        return None  # counted from the events read

    def close(self) -> None:
        self.trace.close()


class CounterDrops:
    """No events at all: the counters are read when watching starts and ends."""

    name = "counters"

    def __init__(self):
        self.before = counters.read()
        self.by_counter: Counter = Counter()

    def events(self, deadline: float | None) -> Iterator[None]:
        while deadline is None or time.monotonic() < deadline:
            time.sleep(0.2 if deadline is None else max(0.0, min(0.2, deadline - time.monotonic())))
            yield None

    def dropped(self) -> int:
        return 0

    def counts(self) -> Counter:
        by_reason, self.by_counter = counters.drops(self.before, counters.read())
        return by_reason

    def close(self) -> None:
        pass
