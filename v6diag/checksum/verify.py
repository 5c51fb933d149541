"""Checksum verdicts for VXLAN-encapsulated packets, from raw bytes.

This is the reference verifier: one packet at a time, plain Python, every rule
spelled out. verify_fast computes the same verdicts for whole batches
with numpy and hands it the packets whose shape it does not handle; the tests
hold the two to identical answers.

Rules (RFC 1071 sum; RFC 768/8200 8.1 pseudo-headers; RFC 7348 VXLAN):
- lengths come from the IP headers, never the frame (Ethernet pads short frames);
- a packet cut by the snap length, or an IP fragment, is `unverifiable`, never bad;
- a failing TCP/UDP checksum whose field holds the folded pseudo-header sum (with
  the length, or with length 0 as GSO leaves it) is `partial`: the kernel left it
  for the NIC (CHECKSUM_PARTIAL, include/linux/skbuff.h) and captured it first;
- outer UDP over IPv4 with checksum 0 was not computed (RFC 768); over IPv6 it is
  allowed for tunnels (RFC 6935/6936, info); inner UDP over IPv6 with 0 is illegal;
- with local checksum offload (Documentation/networking/checksum-offloads.rst, LCO)
  the outer UDP checksum is computed as if the inner partial checksum were already
  filled in: it is judged against the packet as it will leave the NIC.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from v6diag.core import link
from v6diag.core.constants import (
    ETH_IPV4, ETH_IPV6, IPV6_EXT_FRAGMENT, IPV6_EXT_SKIPPABLE, LINKTYPE_ETHERNET, VXLAN_PORTS,
)
from v6diag.core.inet import fold, ones_sum, same16

# Flagged kinds (README "checksum" JSON); order is the display order.
KINDS = (
    "outer_ip_bad", "outer_udp_bad", "outer_udp_partial", "inner_ip_bad",
    "inner_tcp_bad", "inner_tcp_partial", "inner_udp_bad", "inner_udp_partial",
    "inner_icmp_bad", "inner_icmpv6_bad",
)
# Packet classes counted beside the flagged kinds.
CLEAN = "clean"  # every checksum that could be checked is right
UNVERIFIABLE = "unverifiable"  # cut by the snap length, fragmented or unparseable inside
OUTER_UDP_ZERO = "outer_udp_zero"  # IPv4 outer UDP checksum not computed (0)
OUTER_UDP6_ZERO = "outer_udp6_zero"  # IPv6 outer UDP checksum 0: RFC 6935 tunnel exception

DEFAULT_PORTS = VXLAN_PORTS
CHECKED_PROTOS = {6: "tcp", 17: "udp", 1: "icmp", 58: "icmpv6"}  # upper layers whose checksum is judged


@dataclass
class Flag:
    kind: str
    field: int  # the checksum as found
    expected: int  # the checksum the bytes call for


@dataclass
class Verdict:
    vxlan: bool = False
    flags: list[Flag] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)  # CLEAN/UNVERIFIABLE/OUTER_UDP_ZERO/...
    outer_src: bytes = b""
    outer_dst: bytes = b""
    dport: int = 0
    vni: int = 0
    why: str = ""  # for unverifiable packets: what stopped the check


def _be16(d: bytes, i: int) -> int:
    return (d[i] << 8) | d[i + 1]


@dataclass
class _IP:
    version: int
    hdr_ok: bool | None  # IPv4 header checksum (None for IPv6)
    hdr_field: int
    hdr_expected: int
    proto: int
    l4: int  # offset of the upper layer
    end: int  # end of the IP packet (from its length field)
    fragment: bool
    addrs: bytes  # source + destination, as they enter the pseudo-header


def _ip(d: bytes, etype: int, off: int) -> _IP | str | None:
    """Parse an IP header; a str says why the packet cannot be verified."""
    if etype == ETH_IPV4:
        if len(d) < off + 20 or d[off] >> 4 != 4:
            return "truncated IPv4 header" if len(d) < off + 20 else None
        ihl = (d[off] & 0x0F) * 4
        total = _be16(d, off + 2)
        if ihl < 20 or total < ihl:
            return "malformed IPv4 header"
        if len(d) < off + ihl:
            return "truncated IPv4 header"
        hdr = d[off : off + ihl]
        fld = _be16(d, off + 10)
        expected = ~fold(ones_sum(hdr) - fld) & 0xFFFF
        frag = _be16(d, off + 6) & 0x3FFF != 0  # MF or a fragment offset
        return _IP(4, fold(ones_sum(hdr)) == 0xFFFF, fld, expected, d[off + 9], off + ihl,
                   off + total, frag, d[off + 12 : off + 20])
    if etype == ETH_IPV6:
        if len(d) < off + 40 or d[off] >> 4 != 6:
            return "truncated IPv6 header" if len(d) < off + 40 else None
        nh, l4, end = d[off + 6], off + 40, off + 40 + _be16(d, off + 4)
        frag = False
        while nh in IPV6_EXT_SKIPPABLE or nh == IPV6_EXT_FRAGMENT:
            if nh == IPV6_EXT_FRAGMENT:
                frag = True
                break
            if len(d) < l4 + 2:
                return "truncated IPv6 extension header"
            nh, l4 = d[l4], l4 + (d[l4 + 1] + 1) * 8
        return _IP(6, None, 0, 0, nh, l4, end, frag, d[off + 8 : off + 40])
    return None


def _pseudo(ip: _IP, length: int, proto: int) -> int:
    """Unfolded pseudo-header sum (RFC 768; RFC 8200 8.1)."""
    return ones_sum(ip.addrs) + length + proto


def _l4_check(d: bytes, ip: _IP, proto: int, end: int) -> tuple[bool, int, int, bool] | None:
    """(ok, field, expected, partial) for the TCP/UDP/ICMP/ICMPv6 at ip.l4..end."""
    offset = {6: 16, 17: 6, 1: 2, 58: 2}.get(proto)
    if offset is None or end - ip.l4 < offset + 2:
        return None
    seg = d[ip.l4 : end]
    fld = _be16(seg, offset)
    length = end - ip.l4
    pseudo = 0 if proto == 1 else _pseudo(ip, length, proto)
    total = fold(pseudo + ones_sum(seg))
    expected = ~fold(pseudo + ones_sum(seg) - fld) & 0xFFFF
    if proto == 17 and expected == 0:
        expected = 0xFFFF  # RFC 768: a computed 0 is sent as all ones
    partial = proto in (6, 17) and (same16(fld, fold(pseudo)) or same16(fld, fold(pseudo - length)))
    return total == 0xFFFF, fld, expected, partial


def verify(d: bytes, linktype: int, ports=DEFAULT_PORTS) -> Verdict:
    v = Verdict()
    lh = link.parse(linktype, d)
    if lh is None:
        return v
    outer = _ip(d, lh.etype, lh.l3)
    if not isinstance(outer, _IP) or outer.proto != 17:
        return v
    u = outer.l4
    if len(d) < u + 16 or _be16(d, u + 2) not in ports or not d[u + 8] & 0x08:
        return v  # not VXLAN (RFC 7348 5: the I flag must be set)
    v.vxlan, v.outer_src, v.outer_dst = True, outer.addrs[: len(outer.addrs) // 2], outer.addrs[len(outer.addrs) // 2 :]
    v.dport, v.vni = _be16(d, u + 2), int.from_bytes(d[u + 12 : u + 15], "big")
    if outer.hdr_ok is False:
        v.flags.append(Flag("outer_ip_bad", outer.hdr_field, outer.hdr_expected))
    if outer.fragment:
        return _unverifiable(v, "outer IP fragment")
    udp_len = _be16(d, u + 4)
    end = u + udp_len
    if udp_len < 16 or end > outer.end:
        return _unverifiable(v, "outer UDP length disagrees with the IP length")
    if end > len(d):
        return _unverifiable(v, "cut by the capture's snap length")
    inner = _inner(d, u + 16, end, v)
    _outer_udp(d, outer, u, end, inner, v)
    if not v.flags and UNVERIFIABLE not in v.notes:
        v.notes.append(CLEAN)
    return v


def _unverifiable(v: Verdict, why: str) -> Verdict:
    v.notes.append(UNVERIFIABLE)
    v.why = why
    return v


def _inner(d: bytes, eth: int, end: int, v: Verdict) -> tuple[int, int] | None:
    """Check the inner packet; return (field, expected) of an inner L4 checksum
    left partial, which the outer UDP check must assume filled in (LCO)."""
    inner_frame = d[:end]
    lh = link.parse(LINKTYPE_ETHERNET, inner_frame[eth:])
    if lh is None:
        _unverifiable(v, "inner frame too short")
        return None
    ip = _ip(inner_frame, lh.etype, eth + lh.l3)
    if ip is None:
        return None  # not IP inside (ARP...): nothing to check
    if isinstance(ip, str):
        _unverifiable(v, f"inner: {ip}")
        return None
    if ip.hdr_ok is False:
        v.flags.append(Flag("inner_ip_bad", ip.hdr_field, ip.hdr_expected))
    if ip.fragment:
        _unverifiable(v, "inner IP fragment")
        return None
    if ip.end > end:
        _unverifiable(v, "inner IP length runs past the VXLAN payload")
        return None
    name = CHECKED_PROTOS.get(ip.proto)
    if name is None or (name == "icmp" and ip.version != 4) or (name == "icmpv6" and ip.version != 6):
        return None
    r = _l4_check(inner_frame, ip, ip.proto, ip.end)
    if r is None:
        _unverifiable(v, "inner header cut short")
        return None
    ok, fld, expected, partial = r
    if name == "udp" and fld == 0:
        if ip.version == 6:  # RFC 8200 8.1: a zero UDP checksum over IPv6 must be dropped
            v.flags.append(Flag("inner_udp_bad", fld, expected))
        return None
    if ok:
        return None
    if partial:
        v.flags.append(Flag(f"inner_{name}_partial", fld, expected))
        return fld, expected
    v.flags.append(Flag(f"inner_{name}_bad", fld, expected))
    return None


def _outer_udp(d: bytes, outer: _IP, u: int, end: int, inner_partial, v: Verdict) -> None:
    r = _l4_check(d, outer, 17, end)
    ok, fld, expected, partial = r
    if fld == 0:
        v.notes.append(OUTER_UDP_ZERO if outer.version == 4 else OUTER_UDP6_ZERO)
        return
    if not ok and inner_partial is not None:
        # LCO: the outer sum already counts the inner checksum the NIC will write
        i_field, i_expected = inner_partial
        seg_sum = _pseudo(outer, end - u, 17) + ones_sum(d[u:end]) - i_field + i_expected
        if fold(seg_sum) == 0xFFFF:
            return
        expected = ~fold(seg_sum - fld) & 0xFFFF or 0xFFFF
    if ok:
        return
    v.flags.append(Flag("outer_udp_partial" if partial else "outer_udp_bad", fld, expected))
