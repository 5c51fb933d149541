"""Frames -> ND and DHCPv6 Message records (the decode stage of `trace`).

The IPv6 header, its extension headers and ND are read from the raw bytes
(nd.py); scapy dissects only DHCPv6, rare on any link, whose nested options it
knows. Everything else a link carries returns None before any per-packet object
is made."""

from __future__ import annotations

from v6diag.core import link
from v6diag.core.constants import DHCPV6_CLIENT_PORT, DHCPV6_SERVER_PORT, ETH_IPV6, PROTO_ICMPV6, PROTO_UDP
from v6diag.core.frames import Frame
from v6diag.core.wire import MalformedPacket, ipv6_upper
from v6diag.trace.nd import ND_KINDS, nd_message
from v6diag.trace.report import Message

DHCPV6_PORTS = (DHCPV6_CLIENT_PORT, DHCPV6_SERVER_PORT)


def decode_message(frame: Frame, index: int) -> Message | None:
    """None for traffic `trace` does not follow; MalformedPacket for a message
    that claims to be ND or DHCPv6 and does not hold together."""
    d = frame.data
    lh = link.parse(frame.linktype, d)
    if lh is None or lh.etype != ETH_IPV6 or len(d) < lh.l3 + 40 or d[lh.l3] >> 4 != 6:
        return None
    nh, off, end = ipv6_upper(d, lh.l3)
    mac = link.mac_text(lh.src_mac) if lh.src_mac is not None else None
    if nh == PROTO_ICMPV6 and off < end and d[off] in ND_KINDS:
        return nd_message(index, frame.ts, mac, d[lh.l3 : lh.l3 + 40], d[off:end])
    if nh == PROTO_UDP and off + 4 <= end:
        ports = ((d[off] << 8) | d[off + 1], (d[off + 2] << 8) | d[off + 3])
        if ports[0] in DHCPV6_PORTS or ports[1] in DHCPV6_PORTS:
            return _dhcpv6(frame, index, mac)
    return None


def _dhcpv6(frame: Frame, index: int, mac: str | None) -> Message | None:
    from scapy.layers.inet import UDP

    from v6diag.core.dissect import ipv6_of, upper_layer
    from v6diag.trace.dhcp6 import dhcp6_message

    try:
        _, ip6 = ipv6_of(frame)
        upper = upper_layer(ip6)
        return dhcp6_message(index, frame.ts, mac, ip6, upper) if isinstance(upper, UDP) else None
    except MalformedPacket:
        raise
    except Exception as e:  # scapy's dissectors are not hardened against every byte string
        raise MalformedPacket(f"{type(e).__name__}: {e}") from e
