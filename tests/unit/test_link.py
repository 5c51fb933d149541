"""The one link-layer table (v6diag.core.link): parse() for one frame and
columns() for a numpy batch must agree on every frame, hostile ones included;
VLAN tags (802.1Q, 802.1ad, 0x9100) are looked through up to the same limit."""

from __future__ import annotations

import struct

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from v6diag.core import link
from v6diag.core.constants import (
    ETH_IPV6, LINKTYPE_ETHERNET, LINKTYPE_LINUX_SLL, LINKTYPE_LINUX_SLL2, LINKTYPE_RAW, MAX_VLAN_TAGS, VLAN_TPIDS,
)

LINKTYPES = (LINKTYPE_ETHERNET, LINKTYPE_LINUX_SLL, LINKTYPE_LINUX_SLL2, LINKTYPE_RAW, 228)
MAC_A, MAC_B = bytes.fromhex("020000000001"), bytes.fromhex("b827eb000002")


def batch_columns(frames: list[tuple[int, bytes]]):
    buf = b"".join(d for _, d in frames) or b"\0"
    b = np.frombuffer(buf, np.uint8)
    last = len(b) - 1

    def u16(i):
        i = np.asarray(i, np.int64)
        return (b[np.clip(i, 0, last)].astype(np.int64) << 8) | b[np.clip(i + 1, 0, last)]

    offs, pos = [], 0
    for _, d in frames:
        offs.append(pos)
        pos += len(d)
    off = np.asarray(offs, np.int64)
    cap_end = off + np.asarray([len(d) for _, d in frames], np.int64)
    lt = np.asarray([t for t, _ in frames], np.int64)
    etype, l3, known = link.columns(u16, off, cap_end, lt)
    return [(bool(k), int(e), int(x - o)) for k, e, x, o in zip(known, etype, l3, off)]


def tagged(tags: list[int]) -> st.SearchStrategy[bytes]:
    return st.just(MAC_A + MAC_B + b"".join(struct.pack("!HH", t, 7) for t in tags) + struct.pack("!H", ETH_IPV6))


frame = st.one_of(
    st.binary(max_size=64),
    st.lists(st.sampled_from(VLAN_TPIDS), max_size=4).flatmap(tagged).flatmap(
        lambda head: st.binary(max_size=48).map(lambda tail: head + tail)),
)


@settings(max_examples=500, deadline=None)
@given(st.lists(st.tuples(st.sampled_from(LINKTYPES), frame), min_size=1, max_size=12))
def test_batch_and_single_frame_tables_agree(frames):
    for (lt, data), (known, etype, l3) in zip(frames, batch_columns(frames)):
        lh = link.parse(lt, data)
        assert (lh is not None) == known, (lt, data.hex())
        if lh is not None:
            assert (lh.etype, lh.l3) == (etype, l3), (lt, data.hex())


def test_vlan_tags_are_looked_through_up_to_the_limit():
    for n in range(MAX_VLAN_TAGS + 2):
        for tpid in VLAN_TPIDS:
            data = MAC_A + MAC_B + struct.pack("!HH", tpid, 7) * n + struct.pack("!H", ETH_IPV6) + bytes(40)
            lh = link.parse(LINKTYPE_ETHERNET, data)
            if n <= MAX_VLAN_TAGS:
                assert (lh.etype, lh.l3) == (ETH_IPV6, 14 + 4 * n)
            else:  # a third tag is not looked through: not IPv6 to anyone
                assert lh.etype == tpid


def test_cooked_headers_give_the_sender_and_direction():
    sll = struct.pack("!HHH8sH", 4, 1, 6, MAC_B + b"\0\0", ETH_IPV6)
    lh = link.parse(LINKTYPE_LINUX_SLL, sll + bytes(40))
    assert (lh.etype, lh.l3, lh.src_mac, lh.outgoing) == (ETH_IPV6, 16, MAC_B, True)
    sll2 = struct.pack("!HHIHBB8s", ETH_IPV6, 0, 3, 1, 0, 6, MAC_B + b"\0\0")
    lh = link.parse(LINKTYPE_LINUX_SLL2, sll2 + bytes(40))
    assert (lh.etype, lh.l3, lh.src_mac, lh.outgoing) == (ETH_IPV6, 20, MAC_B, False)
    assert link.parse(LINKTYPE_LINUX_SLL, sll[:15]) is None
