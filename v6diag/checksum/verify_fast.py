"""Batch checksum verification with numpy: the same verdicts as
verify.verify, for all packets of a capture batch at once.

Ones' complement sums of any byte range come from two prefix sums per chunk (bytes
at even and at odd positions), so each range costs O(1) however long the packet:
sum16(a, b) = 256 * hi + lo, where hi/lo are the bytes landing in the high/low half
of each 16-bit word counted from a (RFC 1071: the sum is byte-order independent).
Packets of a shape this module does not handle (IPv6 extension headers, inner VLAN
tags, outer IPv6 fragments...) are returned as `slow` for the reference verifier.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from v6diag.checksum.verify import CLEAN, OUTER_UDP6_ZERO, OUTER_UDP_ZERO, UNVERIFIABLE
from v6diag.core import link
from v6diag.core.constants import (
    ETH_IPV4, ETH_IPV6, IPV6_EXT_FRAGMENT, IPV6_EXT_SKIPPABLE, PROTO_UDP, VLAN_TPIDS,
)

SLOW_NEXT_HEADERS = (*IPV6_EXT_SKIPPABLE, IPV6_EXT_FRAGMENT)  # the reference walks these

KEY_BYTES = 40  # flow key: version, src[16], dst[16], dport[2], vni[3], pad


@dataclass
class Columns:
    """Verdicts for a set of packets, as arrays (one row per VXLAN packet)."""

    index: np.ndarray  # capture index (int64)
    key: np.ndarray  # flow key rows, uint8 [n, KEY_BYTES]
    flags: dict[str, tuple[np.ndarray, np.ndarray, np.ndarray]] = field(default_factory=dict)  # kind -> (mask, field, expected)
    notes: dict[str, np.ndarray] = field(default_factory=dict)  # note -> mask
    why: dict[str, np.ndarray] = field(default_factory=dict)  # unverifiable reason -> mask


def _fold(s: np.ndarray) -> np.ndarray:
    for _ in range(3):
        s = (s & 0xFFFF) + (s >> 16)
    return s


def _same16(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    return (a % 0xFFFF) == (b % 0xFFFF)


class _Buf:
    def __init__(self, raw: bytes):
        b = np.frombuffer(raw, dtype=np.uint8)
        self.b, self.last = b, len(b) - 1
        # prefix sums of the bytes at even / odd positions; int32 holds them for any
        # chunk under 16 MiB (8 Mi bytes * 255 < 2**31) at half the memory of int64
        assert len(b) < 16 << 20
        self.ev = np.zeros(len(b) // 2 + 2, np.int32)
        self.od = np.zeros(len(b) // 2 + 2, np.int32)
        np.cumsum(b[0::2], dtype=np.int32, out=self.ev[1 : 1 + len(b[0::2])])
        np.cumsum(b[1::2], dtype=np.int32, out=self.od[1 : 1 + len(b[1::2])])

    def u8(self, i: np.ndarray) -> np.ndarray:
        return self.b[np.clip(i, 0, self.last)].astype(np.int64)

    def u16(self, i: np.ndarray) -> np.ndarray:
        return (self.u8(i) << 8) | self.u8(i + 1)

    def sum16(self, a: np.ndarray, e: np.ndarray) -> np.ndarray:
        """Unfolded RFC 1071 sum of bytes [a, e) for each row (odd tail zero-padded)."""
        a = np.clip(a, 0, self.last + 1)
        e = np.clip(np.maximum(e, a), 0, self.last + 1)
        ev = self.ev[(e + 1) // 2].astype(np.int64) - self.ev[(a + 1) // 2]  # even positions in [a, e)
        od = self.od[e // 2].astype(np.int64) - self.od[a // 2]  # odd positions in [a, e)
        return np.where(a % 2 == 0, 256 * ev + od, 256 * od + ev)


def verify_batch(raw: bytes, offsets, lengths, linktypes, first_index: int, ports) -> tuple[Columns, list[int]]:
    """Returns (columns for the VXLAN packets handled here, positions in the batch
    of packets to verify one by one)."""
    buf = _Buf(raw or b"\0")  # a batch of empty packets still needs one byte to index
    off = np.asarray(offsets, dtype=np.int64)
    cap_end = off + np.asarray(lengths, dtype=np.int64)
    lt = np.asarray(linktypes, dtype=np.int64)
    u8, u16, sum16 = buf.u8, buf.u16, buf.sum16

    # -- link layer: the one table (core.link), batch form --------------------
    etype, l3, known = link.columns(u16, off, cap_end, lt)

    # -- outer IP + UDP + VXLAN ---------------------------------------------
    ver = u8(l3) >> 4
    v4 = known & (etype == ETH_IPV4) & (cap_end >= l3 + 20) & (ver == 4)
    v6 = known & (etype == ETH_IPV6) & (cap_end >= l3 + 40) & (ver == 6)
    ihl = (u8(l3) & 0x0F) * 4
    tot = u16(l3 + 2)
    proto = np.where(v4, u8(l3 + 9), u8(l3 + 6))
    v4 &= (ihl >= 20) & (tot >= ihl)  # else: reference says why (malformed)
    l4 = np.where(v4, l3 + ihl, l3 + 40)
    ip_end = np.where(v4, l3 + tot, l3 + 40 + u16(l3 + 4))
    # truncated IPv4 options, IPv6 extension headers: the reference decides
    slow = (v4 & (cap_end < l3 + ihl)) | (v6 & np.isin(proto, SLOW_NEXT_HEADERS))
    udp = (v4 | v6) & (proto == PROTO_UDP) & ~slow
    vx = udp & (cap_end >= l4 + 16) & np.isin(u16(l4 + 2), ports) & ((u8(l4 + 8) & 0x08) != 0)
    slow_pos = np.nonzero(slow & known)[0]

    sel = np.nonzero(vx)[0]
    if len(sel) == 0:
        return Columns(np.zeros(0, np.int64), np.zeros((0, KEY_BYTES), np.uint8)), slow_pos.tolist()
    # from here on every array has one row per VXLAN packet
    off, cap_end, l3, l4, ip_end, ihl = off[sel], cap_end[sel], l3[sel], l4[sel], ip_end[sel], ihl[sel]
    v4, v6 = v4[sel], v6[sel]
    key = _flow_keys(buf, l3, l4, v4)
    cols = Columns(first_index + sel.astype(np.int64), key)
    n = len(sel)

    def flag(kind, mask, fld, expected):
        old = cols.flags.get(kind)
        if old is not None:
            mask, fld, expected = old[0] | mask, np.where(mask, fld, old[1]), np.where(mask, expected, old[2])
        cols.flags[kind] = (mask, fld, expected)

    # outer IPv4 header checksum (checked first, whatever else happens)
    hdr_sum = sum16(l3, l3 + ihl)
    hdr_fld = u16(l3 + 10)
    flag("outer_ip_bad", v4 & (_fold(hdr_sum) != 0xFFFF), hdr_fld, ~_fold(hdr_sum - hdr_fld) & 0xFFFF)

    udp_len = u16(l4 + 4)
    end = l4 + udp_len
    frag = v4 & ((u16(l3 + 6) & 0x3FFF) != 0)
    bad_len = ~frag & ((udp_len < 16) | (end > ip_end))
    cut = ~frag & ~bad_len & (end > cap_end)
    unverifiable = frag | bad_len | cut
    live = ~unverifiable

    # -- inner Ethernet + IP ----------------------------------------------
    ie = l4 + 16
    i_short = live & (end < ie + 14)
    i_etype = u16(ie + 12)
    i_l3 = ie + 14
    i_ver = u8(i_l3) >> 4
    is4, is6 = i_etype == ETH_IPV4, i_etype == ETH_IPV6
    i_ihl = (u8(i_l3) & 0x0F) * 4
    i_tot = u16(i_l3 + 2)
    i4 = live & ~i_short & is4 & (end >= i_l3 + 20) & (i_ver == 4) & (i_ihl >= 20) & (i_tot >= i_ihl) \
        & (end >= i_l3 + i_ihl)
    i6 = live & ~i_short & is6 & (end >= i_l3 + 40) & (i_ver == 6)
    # inner VLAN tags or IP that is not what its ethertype says: reference
    odd_inner = live & ~i_short & ((np.isin(i_etype, VLAN_TPIDS)) | (is4 & ~i4) | (is6 & ~i6))
    i_proto = np.where(i4, u8(i_l3 + 9), u8(i_l3 + 6))
    odd_inner |= i6 & np.isin(i_proto, SLOW_NEXT_HEADERS)
    i_frag = i4 & ((u16(i_l3 + 6) & 0x3FFF) != 0)
    i_l4 = np.where(i4, i_l3 + i_ihl, i_l3 + 40)
    i_end = np.where(i4, i_l3 + i_tot, i_l3 + 40 + u16(i_l3 + 4))
    i_hdr_sum = sum16(i_l3, i_l3 + i_ihl)
    i_hdr_fld = u16(i_l3 + 10)
    flag("inner_ip_bad", i4 & (_fold(i_hdr_sum) != 0xFFFF), i_hdr_fld, ~_fold(i_hdr_sum - i_hdr_fld) & 0xFFFF)
    i_over = (i4 | i6) & ~i_frag & (i_end > end)
    # which upper layers are checked (ICMP only over IPv4, ICMPv6 only over IPv6)
    tcp, udpi = i_proto == 6, i_proto == 17
    icmp4, icmp6 = i4 & (i_proto == 1), i6 & (i_proto == 58)
    checked = (i4 | i6) & ~i_frag & ~i_over & (tcp | udpi | icmp4 | icmp6)
    fld_off = np.where(tcp, 16, np.where(udpi, 6, 2))
    i_cut = checked & (i_end - i_l4 < fld_off + 2)
    checked &= ~i_cut
    unverifiable |= i_short | i_frag | i_over | i_cut

    # -- inner L4 checksum ---------------------------------------------------
    length = i_end - i_l4
    addrs = np.where(i4, sum16(i_l3 + 12, i_l3 + 20), sum16(i_l3 + 8, i_l3 + 40))
    pseudo = np.where(icmp4, 0, addrs + length + i_proto)
    seg = sum16(i_l4, i_end)
    i_fld = u16(i_l4 + fld_off)
    total = _fold(pseudo + seg)
    i_exp = ~_fold(pseudo + seg - i_fld) & 0xFFFF
    i_exp = np.where(udpi & (i_exp == 0), 0xFFFF, i_exp)
    i_partial_shape = (tcp | udpi) & (_same16(i_fld, _fold(pseudo)) | _same16(i_fld, _fold(pseudo - length)))
    udp_zero = checked & udpi & (i_fld == 0)
    flag("inner_udp_bad", udp_zero & i6, i_fld, i_exp)  # RFC 8200 8.1
    wrong = checked & ~udp_zero & (total != 0xFFFF)
    i_partial = wrong & i_partial_shape
    for name, m in (("tcp", tcp), ("udp", udpi), ("icmp", icmp4), ("icmpv6", icmp6)):
        if name in ("tcp", "udp"):
            flag(f"inner_{name}_partial", i_partial & m, i_fld, i_exp)
        flag(f"inner_{name}_bad", wrong & ~i_partial & m, i_fld, i_exp)

    # -- outer UDP checksum (after the inner: LCO) ---------------------------
    o_live = live & ~odd_inner
    o_addrs = np.where(v4, sum16(l3 + 12, l3 + 20), sum16(l3 + 8, l3 + 40))
    o_pseudo = o_addrs + udp_len + 17
    o_seg = sum16(l4, end)
    o_fld = u16(l4 + 6)
    o_zero = o_live & (o_fld == 0)
    o_total = o_pseudo + o_seg
    o_ok = _fold(o_total) == 0xFFFF
    adjusted = o_total - np.where(i_partial, i_fld, 0) + np.where(i_partial, i_exp, 0)
    o_ok_lco = i_partial & (_fold(adjusted) == 0xFFFF)
    o_wrong = o_live & ~o_zero & ~o_ok & ~o_ok_lco
    base = np.where(i_partial, adjusted, o_total)
    o_exp = ~_fold(base - o_fld) & 0xFFFF
    o_exp = np.where(o_exp == 0, 0xFFFF, o_exp)
    o_partial = _same16(o_fld, _fold(o_pseudo)) | _same16(o_fld, _fold(o_pseudo - udp_len))
    flag("outer_udp_partial", o_wrong & o_partial, o_fld, o_exp)
    flag("outer_udp_bad", o_wrong & ~o_partial, o_fld, o_exp)

    # rows handed to the reference: drop them here so nothing is counted twice
    handled = ~odd_inner
    slow_pos = np.concatenate((slow_pos, sel[odd_inner])).tolist()
    cols.notes[OUTER_UDP_ZERO] = o_zero & v4
    cols.notes[OUTER_UDP6_ZERO] = o_zero & v6
    cols.notes[UNVERIFIABLE] = unverifiable & handled
    any_flag = np.zeros(n, bool)
    for m, _, _ in cols.flags.values():
        any_flag |= m
    cols.notes[CLEAN] = ~any_flag & ~unverifiable
    # the reference verifier's words, so both paths explain the same way
    cols.why = {
        "outer IP fragment": frag,
        "outer UDP length disagrees with the IP length": bad_len,
        "cut by the capture's snap length": cut,
        "inner frame too short": i_short,
        "inner IP fragment": i_frag,
        "inner IP length runs past the VXLAN payload": i_over,
        "inner header cut short": i_cut,
    }
    return _take(cols, handled), sorted(slow_pos)


def _take(cols: Columns, keep: np.ndarray) -> Columns:
    return Columns(
        cols.index[keep], cols.key[keep],
        {k: (m[keep], f[keep], e[keep]) for k, (m, f, e) in cols.flags.items()},
        {k: m[keep] for k, m in cols.notes.items()},
        {k: m[keep] for k, m in cols.why.items()},
    )


def _flow_keys(buf: _Buf, l3, l4, v4) -> np.ndarray:
    """[n, KEY_BYTES] rows: version, src(16), dst(16), dport(2), vni(3), pad."""
    n = len(l3)
    key = np.zeros((n, KEY_BYTES), np.uint8)
    key[:, 0] = np.where(v4, 4, 6)
    cols16 = np.arange(16)
    src = np.where(v4[:, None], l3[:, None] + 12 + np.minimum(cols16, 3), l3[:, None] + 8 + cols16)
    dst = np.where(v4[:, None], l3[:, None] + 16 + np.minimum(cols16, 3), l3[:, None] + 24 + cols16)
    short = v4[:, None] & (cols16 >= 4)[None, :]
    key[:, 1:17] = np.where(short, 0, buf.b[np.clip(src, 0, buf.last)])
    key[:, 17:33] = np.where(short, 0, buf.b[np.clip(dst, 0, buf.last)])
    for j, k in enumerate((2, 3)):
        key[:, 33 + j] = buf.b[np.clip(l4 + k, 0, buf.last)]
    for j in range(3):
        key[:, 35 + j] = buf.b[np.clip(l4 + 12 + j, 0, buf.last)]
    return key


def key_of(version: int, src: bytes, dst: bytes, dport: int, vni: int) -> bytes:
    """The same flow key for a packet from the reference verifier."""
    return (bytes([version]) + src.ljust(16, b"\0") + dst.ljust(16, b"\0")
            + dport.to_bytes(2, "big") + vni.to_bytes(3, "big") + b"\0\0")
