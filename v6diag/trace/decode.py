"""Frames -> ND and DHCPv6 Message records (the decode stage of `trace`)."""

from __future__ import annotations

from scapy.layers.inet import UDP

from v6diag.core import link
from v6diag.core.dissect import MalformedPacket, ipv6_of, upper_layer
from v6diag.core.frames import Frame
from v6diag.trace.dhcp6 import CLIENT_PORT, SERVER_PORT, dhcp6_message
from v6diag.trace.nd import ND_TYPES, nd_message
from v6diag.trace.report import Message


def decode_message(frame: Frame, index: int) -> Message | None:
    """None for traffic `trace` does not follow; MalformedPacket for a message
    that claims to be ND or DHCPv6 and does not hold together."""
    got = ipv6_of(frame)  # IPv4, ARP...: skipped before scapy, which costs ~50 us a frame
    if got is None:
        return None
    lh, ip6 = got
    mac = link.mac_text(lh.src_mac) if lh.src_mac is not None else None
    try:
        upper = upper_layer(ip6)
        if type(upper) in ND_TYPES:
            return nd_message(index, frame.ts, mac, ip6, upper)
        if isinstance(upper, UDP) and {upper.sport, upper.dport} & {CLIENT_PORT, SERVER_PORT}:
            return dhcp6_message(index, frame.ts, mac, ip6, upper)
        return None
    except MalformedPacket:
        raise
    except Exception as e:  # scapy's dissectors are not hardened against every byte string
        raise MalformedPacket(f"{type(e).__name__}: {e}") from e
