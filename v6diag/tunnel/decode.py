"""Underlay frames of IPv6 tunnels, from raw bytes: what a tunnel carried and what
came back.

One function, `underlay()`, turns an Ethernet/SLL frame into an `Underlay` record:
- 6in4 (IPv4 protocol 41, RFC 4213 3.5) and ip6ip6 (IPv6 next header 41, RFC 2473);
- GRE carrying IPv6 (IPv4 protocol 47, RFC 2784, EtherType 0x86dd);
- VXLAN (UDP, RFC 7348: 8-byte header, then an Ethernet frame);
- WireGuard (UDP; message types 1-4 of the protocol paper 5.4; the inside is
  encrypted, so only "data" vs "handshake" is visible);
- ICMP errors about any of these (ICMPv4 type 3/11 quote the packet that failed,
  RFC 792; code 4 is "fragmentation needed" with the next-hop MTU, RFC 1191);
- ARP, so "the remote's address never answered ARP" can be told apart.
Inside a tunnel we look for ICMPv6 echo (to pair requests and replies) and Packet
Too Big (RFC 4443 3.2). Plain bytes instead of scapy: one packet at a time,
bounded by the lengths in the headers, never raising on garbage.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass

from v6diag.core import link
from v6diag.core.constants import (
    ETH_ARP, ETH_IPV4, ETH_IPV6, IPV6_EXT_FRAGMENT, IPV6_MAX_EXT_HEADERS, LINKTYPE_ETHERNET, PROTO_GRE,
    PROTO_ICMP, PROTO_ICMPV6, PROTO_UDP, VXLAN_PORTS, WIREGUARD_PORTS,
)
from v6diag.core.constants import IPV6_EXT_SKIPPABLE as IPV6_SKIP  # ip6tnl's encap limit is a dest option
from v6diag.core.constants import PROTO_IPV6_IN_IP as PROTO_IPV6_IN
from v6diag.core.inet import ipv4_text as _v4
from v6diag.core.inet import ipv6_text as _v6

WG_TYPES = {1: "handshake-initiation", 2: "handshake-response", 3: "cookie-reply", 4: "data"}


@dataclass(frozen=True)
class Inner:
    """What an encapsulated IPv6 packet was (only the parts the checks use)."""

    src: str
    dst: str
    icmp_type: int | None = None  # 128/129 echo, 2 packet too big
    echo_id: int | None = None
    echo_seq: int | None = None
    mtu: int | None = None  # Packet Too Big
    size: int = 0  # IPv6 packet length incl. header


@dataclass(frozen=True)
class Underlay:
    """One underlay frame, classified. kind: '6in4' | 'ip6ip6' | 'gre' | 'vxlan' |
    'wireguard' | 'icmp-error' | 'arp' | None (something else)."""

    kind: str | None
    src: str = ""  # outer addresses (or ARP sender/target)
    dst: str = ""
    port: int | None = None  # UDP destination port (vxlan/wireguard) or quoted one
    inner: Inner | None = None
    wg_type: str | None = None
    # icmp-error: what failed and why
    error: str | None = None  # "port-unreachable", "frag-needed", "ptb", ...
    quoted_kind: str | None = None  # the tunnel kind of the quoted packet
    quoted_src: str = ""
    quoted_dst: str = ""
    mtu: int | None = None
    arp_op: int | None = None  # 1 request, 2 reply
    size: int = 0
    fragmented: bool = False  # the first piece of an IPv4 packet the underlay fragmented (MF set)


_ICMP4_ERRORS = {(3, 0): "net-unreachable", (3, 1): "host-unreachable", (3, 2): "protocol-unreachable",
                 (3, 3): "port-unreachable", (3, 4): "frag-needed", (3, 9): "net-prohibited",
                 (3, 10): "host-prohibited", (3, 13): "admin-prohibited", (11, 0): "ttl-exceeded"}
_ICMP6_ERRORS = {1: "unreachable", 2: "ptb", 3: "time-exceeded", 4: "parameter-problem"}


def link_payload(linktype: int, data: bytes) -> tuple[int, bytes] | None:
    """(EtherType, network-layer bytes) of a frame; None when not understood."""
    lh = link.parse(linktype, data)
    return None if lh is None else (lh.etype, data[lh.l3:])


def _ipv4(b: bytes) -> tuple[int, str, str, bytes] | None:
    """(protocol, src, dst, payload) of an IPv4 packet; None if cut or a later fragment."""
    if len(b) < 20 or b[0] >> 4 != 4:
        return None
    ihl = (b[0] & 15) * 4
    total = struct.unpack_from("!H", b, 2)[0]
    frag = struct.unpack_from("!H", b, 6)[0] & 0x1FFF
    if ihl < 20 or len(b) < ihl or frag:
        return None
    return b[9], _v4(b[12:16]), _v4(b[16:20]), b[ihl:max(ihl, min(total, len(b)))]


def _ipv6(b: bytes) -> tuple[int, str, str, bytes] | None:
    """(upper protocol after skippable extension headers, src, dst, payload)."""
    if len(b) < 40 or b[0] >> 4 != 6:
        return None
    nh, off = b[6], 40
    end = min(len(b), 40 + struct.unpack_from("!H", b, 4)[0])
    for _ in range(IPV6_MAX_EXT_HEADERS):  # bounded: a longer chain is hostile
        if end < off + 8:
            break
        if nh == IPV6_EXT_FRAGMENT:  # RFC 8200 4.5: only the first fragment holds the upper-layer header
            if struct.unpack_from("!H", b, off + 2)[0] & 0xFFF8:
                break
            nh, off = b[off], off + 8
            continue
        if nh not in IPV6_SKIP:
            break
        nh, off = b[off], off + (b[off + 1] + 1) * 8
    return nh, _v6(b[8:24]), _v6(b[24:40]), b[off:end]


def inner_ipv6(b: bytes) -> Inner | None:
    parsed = _ipv6(b)
    if parsed is None:
        return None
    nh, src, dst, payload = parsed
    size = 40 + struct.unpack_from("!H", b, 4)[0]
    if nh != PROTO_ICMPV6 or len(payload) < 8:
        return Inner(src, dst, size=size)
    t = payload[0]
    if t in (128, 129):
        ident, seq = struct.unpack_from("!HH", payload, 4)
        return Inner(src, dst, t, ident, seq, size=size)
    if t == 2:
        return Inner(src, dst, t, mtu=struct.unpack_from("!I", payload, 4)[0], size=size)
    return Inner(src, dst, t, size=size)


def _udp_kind(payload: bytes, vxlan_ports: tuple[int, ...], wg_ports: tuple[int, ...]):
    if len(payload) < 8:
        return None, None, None
    sport, dport = struct.unpack_from("!HH", payload, 0)
    body = payload[8:]
    if dport in vxlan_ports and len(body) >= 8 and body[0] & 0x08:  # I flag: VNI valid
        inner = None
        lp = link_payload(LINKTYPE_ETHERNET, body[8:])
        if lp and lp[0] == ETH_IPV6:
            inner = inner_ipv6(lp[1])
        return "vxlan", dport, inner
    if (dport in wg_ports or sport in wg_ports) and len(body) >= 4 and body[0] in WG_TYPES and body[1:4] == b"\0\0\0":
        return "wireguard", dport, WG_TYPES[body[0]]
    return None, dport, None


def _tunnel_of(proto: int, payload: bytes, vxlan_ports, wg_ports, v6: bool):
    """(kind, port, inner-or-wg-type) for an outer packet's protocol and payload."""
    if proto == PROTO_IPV6_IN:
        return ("ip6ip6" if v6 else "6in4"), None, inner_ipv6(payload)
    if proto == PROTO_GRE and len(payload) >= 4:
        flags, etype = struct.unpack_from("!HH", payload, 0)
        # RFC 2890: checksum (0x8000), key (0x2000), sequence (0x1000) each add 4 bytes
        off = 4 + 4 * sum(1 for bit in (0x8000, 0x2000, 0x1000) if flags & bit)
        return "gre", None, inner_ipv6(payload[off:]) if etype == ETH_IPV6 else None
    if proto == PROTO_UDP:
        return _udp_kind(payload, vxlan_ports, wg_ports)
    return None, None, None


def underlay(linktype: int, data: bytes, vxlan_ports: tuple[int, ...] = VXLAN_PORTS,
             wg_ports: tuple[int, ...] = WIREGUARD_PORTS) -> Underlay:
    """Classify one captured underlay frame. Never raises on malformed input."""
    lp = link_payload(linktype, data)
    if lp is None:
        return Underlay(None)
    etype, net = lp
    if etype == ETH_ARP and len(net) >= 28 and net[:6] == b"\x00\x01\x08\x00\x06\x04":
        op = struct.unpack_from("!H", net, 6)[0]
        return Underlay("arp", _v4(net[14:18]), _v4(net[24:28]), arp_op=op)
    parsed = _ipv4(net) if etype == ETH_IPV4 else _ipv6(net) if etype == ETH_IPV6 else None
    if parsed is None:
        return Underlay(None)
    proto, src, dst, payload = parsed
    v6 = etype == ETH_IPV6
    if (proto == PROTO_ICMP and not v6) or (proto == PROTO_ICMPV6 and v6):
        return _icmp_error(proto, src, dst, payload, vxlan_ports, wg_ports, len(net)) or Underlay(None, src, dst)
    kind, port, extra = _tunnel_of(proto, payload, vxlan_ports, wg_ports, v6)
    more_fragments = not v6 and bool(net[6] & 0x20)  # RFC 791 flags: MF
    if kind == "wireguard":
        return Underlay(kind, src, dst, port, wg_type=extra, size=len(net), fragmented=more_fragments)
    return Underlay(kind, src, dst, port, inner=extra, size=len(net), fragmented=more_fragments)


def _icmp_error(proto, src, dst, payload, vxlan_ports, wg_ports, size) -> Underlay | None:
    if len(payload) < 8:
        return None
    t, code = payload[0], payload[1]
    if proto == PROTO_ICMP:
        error = _ICMP4_ERRORS.get((t, code))
        mtu = struct.unpack_from("!H", payload, 6)[0] if (t, code) == (3, 4) else None
        quoted = _ipv4(payload[8:])
    else:
        error = _ICMP6_ERRORS.get(t)
        mtu = struct.unpack_from("!I", payload, 4)[0] if t == 2 else None
        quoted = _ipv6(payload[8:])
    if error is None or quoted is None:
        return None
    qproto, qsrc, qdst, qpayload = quoted
    qkind, qport, _ = _tunnel_of(qproto, qpayload, vxlan_ports, wg_ports, proto == PROTO_ICMPV6)
    if qkind is None and qproto == PROTO_UDP and len(qpayload) >= 4:
        qkind = "udp"  # a quoted UDP header only: the port says whose it was
        qport = struct.unpack_from("!H", qpayload, 2)[0]
    return Underlay("icmp-error", src, dst, qport, error=error, quoted_kind=qkind, quoted_src=qsrc,
                    quoted_dst=qdst, mtu=mtu, size=size)
