"""Property tests: the numpy batch verifier gives exactly the reference
verifier's verdicts on any bytes (mutated real-shaped packets and noise), and
neither ever raises. Hypothesis writes .hypothesis/ (git-ignored)."""

from __future__ import annotations

import struct

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.vxlan_gen import all_cases
from v6diag.checksum.tally import ChecksumTally
from v6diag.checksum.verify import DEFAULT_PORTS, verify
from v6diag.checksum.verify_fast import verify_batch
from v6diag.core.frames import Batch

SEEDS = [c.data for c in all_cases()]
SETTINGS = settings(max_examples=300, deadline=None, database=None,
                    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])


@st.composite
def mutated(draw):
    data = bytearray(draw(st.sampled_from(SEEDS)))
    for _ in range(draw(st.integers(0, 4))):
        op = draw(st.sampled_from(["flip", "cut", "len", "zero16"]))
        if not data:
            break
        i = draw(st.integers(0, len(data) - 1))
        if op == "flip":
            data[i] = draw(st.integers(0, 255))
        elif op == "cut":
            del data[i:]
        elif op == "len" and i + 2 <= len(data):  # hit a length field hard
            struct.pack_into("!H", data, i, draw(st.sampled_from([0, 1, 7, 8, 16, 20, 40, 0xFFFF])))
        elif op == "zero16" and i + 2 <= len(data):
            data[i : i + 2] = b"\0\0"
    return bytes(data)


packets = st.lists(st.one_of(mutated(), st.binary(max_size=200)), min_size=1, max_size=12)


def batch_of(pkts, linktype=1) -> Batch:
    offs, pos = [], 0
    for p in pkts:
        offs.append(pos)
        pos += len(p)
    n = len(pkts)
    return Batch(b"".join(pkts), offs, [len(p) for p in pkts], [len(p) for p in pkts], [0.0] * n, [linktype] * n, 0)


@SETTINGS
@given(packets, st.sampled_from([1, 113, 276]))
def test_batch_verdicts_equal_the_reference_on_any_bytes(pkts, linktype):
    b = batch_of(pkts, linktype)
    cols, slow = verify_batch(b.buf, b.offsets, b.lengths, b.linktypes, 0, DEFAULT_PORTS)
    fast_rows = {int(i): j for j, i in enumerate(cols.index)}
    assert not set(fast_rows) & set(slow)  # each packet is judged once
    for i, p in enumerate(pkts):
        ref = verify(p, linktype)
        if i in slow:
            continue  # judged by the reference itself
        if i not in fast_rows:
            assert not ref.vxlan, i
            continue
        j = fast_rows[i]
        assert ref.vxlan
        got = {k: (int(f[j]), int(e[j])) for k, (m, f, e) in cols.flags.items() if m[j]}
        assert got == {f.kind: (f.field, f.expected) for f in ref.flags}, i
        assert {k for k, m in cols.notes.items() if m[j]} == set(ref.notes), i


@SETTINGS
@given(packets)
def test_tally_never_raises_and_counts_every_packet(pkts):
    t = ChecksumTally(DEFAULT_PORTS)
    t.add_batch(batch_of(pkts))
    assert t.packets == len(pkts)
    assert t.vxlan_packets == sum(verify(p, 1).vxlan for p in pkts)
