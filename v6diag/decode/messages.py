"""Frames -> ND and DHCPv6 Message records (the decode stage of `trace`)."""

from __future__ import annotations

from scapy.layers.inet import UDP

from v6diag.decode.dhcp6 import CLIENT_PORT, SERVER_PORT, dhcp6_message
from v6diag.decode.link import LINKTYPE_ETHERNET, decode_link
from v6diag.decode.nd import MalformedPacket, upper_layer
from v6diag.decode.ndmsg import ND_TYPES, Message, nd_message
from v6diag.model import Frame


_IPV6_OR_TAGGED = (b"\x86\xdd", b"\x81\x00", b"\x88\xa8")


def decode_message(frame: Frame, index: int) -> Message | None:
    """None for traffic `trace` does not follow; MalformedPacket for a message
    that claims to be ND or DHCPv6 and does not hold together."""
    if frame.linktype == LINKTYPE_ETHERNET and frame.data[12:14] not in _IPV6_OR_TAGGED:
        return None  # IPv4, ARP...: skipped before scapy, which costs ~50 us a frame
    try:
        link = decode_link(frame)
        ip6 = link.ip6
        if ip6 is None:
            return None
        upper = upper_layer(ip6)
        if type(upper) in ND_TYPES:
            return nd_message(index, frame.ts, link.src_mac, ip6, upper)
        if isinstance(upper, UDP) and {upper.sport, upper.dport} & {CLIENT_PORT, SERVER_PORT}:
            return dhcp6_message(index, frame.ts, link.src_mac, ip6, upper)
        return None
    except MalformedPacket:
        raise
    except Exception as e:  # scapy's dissectors are not hardened against every byte string
        raise MalformedPacket(f"{type(e).__name__}: {e}") from e
