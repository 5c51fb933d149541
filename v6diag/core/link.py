"""The one link-layer table: where the network layer starts in any frame v6diag
reads, and who sent it. Every decoder goes through here (discover, trace,
tunnel, checksum's reference path), and checksum's numpy path through
`columns()`, which applies the same rules to a whole batch; a unit test holds
the two equal.

Link types: Ethernet, Linux cooked SLL and SLL2 (`tcpdump -i any`), raw IP.
VLAN tags (802.1Q, 802.1ad, 0x9100) are looked through, at most MAX_VLAN_TAGS.
Never raises on garbage: a frame too short for its own header gives None.
"""

from __future__ import annotations

from typing import NamedTuple

from v6diag.core.constants import (
    ETH_IPV4, ETH_IPV6, LINKTYPE_ETHERNET, LINKTYPE_LINUX_SLL, LINKTYPE_LINUX_SLL2, LINKTYPE_RAW,
    MAX_VLAN_TAGS, PACKET_OUTGOING, VLAN_TPIDS,
)

ETHERNET_HEADER, SLL_HEADER, SLL2_HEADER, VLAN_TAG = 14, 16, 20, 4


class LinkHeader(NamedTuple):
    etype: int  # EtherType of the network layer (after any VLAN tags)
    l3: int  # its offset in the frame
    src_mac: bytes | None  # None when the link layer carries no 6-byte address
    dst_mac: bytes | None
    outgoing: bool  # cooked captures: sent by the capturing host


def _be16(d: bytes, i: int) -> int:
    return (d[i] << 8) | d[i + 1]


def parse(linktype: int, d: bytes) -> LinkHeader | None:
    if linktype == LINKTYPE_ETHERNET:
        if len(d) < ETHERNET_HEADER:
            return None
        etype, l3, src, dst, out = _be16(d, 12), ETHERNET_HEADER, d[6:12], d[0:6], False
    elif linktype == LINKTYPE_LINUX_SLL:
        if len(d) < SLL_HEADER:
            return None
        # packet type, ARPHRD, address length, address (8), protocol
        src = d[6:12] if _be16(d, 4) == 6 else None
        etype, l3, dst, out = _be16(d, 14), SLL_HEADER, None, _be16(d, 0) == PACKET_OUTGOING
    elif linktype == LINKTYPE_LINUX_SLL2:
        if len(d) < SLL2_HEADER:
            return None
        # protocol, reserved, ifindex, ARPHRD, packet type, address length, address (8)
        src = d[12:18] if d[11] == 6 else None
        etype, l3, dst, out = _be16(d, 0), SLL2_HEADER, None, d[10] == PACKET_OUTGOING
    elif linktype == LINKTYPE_RAW:
        if not d:
            return None
        return LinkHeader(ETH_IPV4 if d[0] >> 4 == 4 else ETH_IPV6, 0, None, None, False)
    else:
        return None
    for _ in range(MAX_VLAN_TAGS):  # the tag's TCI, then the EtherType it carries
        if etype not in VLAN_TPIDS or len(d) < l3 + VLAN_TAG:
            break
        etype, l3 = _be16(d, l3 + 2), l3 + VLAN_TAG
    return LinkHeader(etype, l3, src, dst, out)


def mac_text(raw: bytes) -> str:
    return raw.hex(":")


def columns(u16, off, cap_end, linktype):
    """The same table for a batch (numpy arrays; `u16(i)` reads big-endian words of
    the batch buffer): (etype, l3 offset, known) per packet. Cooked and raw
    captures keep their meaning; VLAN tags are looked through for every link type,
    exactly as parse() does."""
    import numpy as np

    eth, sll, sll2, raw = (linktype == LINKTYPE_ETHERNET, linktype == LINKTYPE_LINUX_SLL,
                           linktype == LINKTYPE_LINUX_SLL2, linktype == LINKTYPE_RAW)
    header = np.select([eth, sll, sll2, raw], [ETHERNET_HEADER, SLL_HEADER, SLL2_HEADER, 0], 0)
    known = (eth | sll | sll2 | raw) & (cap_end >= off + np.maximum(header, 1))
    l3 = off + header
    version = u16(off) >> 12
    etype = np.select([eth, sll, sll2, raw], [u16(off + 12), u16(off + 14), u16(off),
                                              np.where(version == 4, ETH_IPV4, ETH_IPV6)], 0)
    for _ in range(MAX_VLAN_TAGS):
        tagged = known & ~raw & np.isin(etype, VLAN_TPIDS) & (cap_end >= l3 + VLAN_TAG)
        etype = np.where(tagged, u16(l3 + 2), etype)
        l3 = np.where(tagged, l3 + VLAN_TAG, l3)
    return etype, l3, known
