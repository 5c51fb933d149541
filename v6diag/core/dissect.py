"""scapy dissection of the IPv6 packets a human reads (discover's sightings,
trace's ND and DHCPv6 messages), behind raw-byte checks that scapy does not make.

Packets from the network are hostile: a packet that claims a protocol and does
not hold together raises MalformedPacket, which callers count; nothing else escapes.
"""

from __future__ import annotations

from scapy.layers.inet6 import (
    ICMPv6ND_NA, ICMPv6ND_NS, ICMPv6ND_RA, ICMPv6ND_Redirect, ICMPv6ND_RS, IPv6, IPv6ExtHdrDestOpt,
    IPv6ExtHdrHopByHop, IPv6ExtHdrRouting,
)
from scapy.packet import Padding

from v6diag.core import link
from v6diag.core.constants import ETH_IPV6
from v6diag.core.frames import Frame
from v6diag.core.wire import MalformedPacket, check_nd_options  # noqa: F401  (the decoders' errors and checks)

# RFC 4861 4.1-4.5: octets of each ND message before its options
ND_FIXED = {ICMPv6ND_RS: 8, ICMPv6ND_RA: 16, ICMPv6ND_NS: 24, ICMPv6ND_NA: 24, ICMPv6ND_Redirect: 40}
# A Fragment header ends the walk: what follows is not decodable on its own.
EXT_HEADERS = (IPv6ExtHdrHopByHop, IPv6ExtHdrDestOpt, IPv6ExtHdrRouting)


def ipv6_of(frame: Frame) -> tuple[link.LinkHeader, IPv6] | None:
    """The frame's link header and its IPv6 packet dissected by scapy; None for
    frames that carry no IPv6."""
    lh = link.parse(frame.linktype, frame.data)
    if lh is None or lh.etype != ETH_IPV6:
        return None
    try:
        return lh, IPv6(frame.data[lh.l3:])
    except Exception as e:  # scapy's dissectors are not hardened against every byte string
        raise MalformedPacket(f"IPv6 header: {type(e).__name__}: {e}") from e


def without_padding(layer) -> bytes:
    """The layer's own bytes: Ethernet pads short frames, IPv6 plen says where
    the packet ends and scapy hangs the rest on as Padding."""
    raw = bytes(layer)
    pad = layer.getlayer(Padding)
    return raw[: len(raw) - len(pad.load)] if pad is not None else raw


def upper_layer(ip6: IPv6):
    """The first header after the IPv6 extension headers (RFC 8200 4.1 order)."""
    layer = ip6.payload
    while isinstance(layer, EXT_HEADERS):
        layer = layer.payload
    return layer


def last_next_header(ip6: IPv6) -> int:
    """The Next Header value that names the upper layer."""
    layer, nh = ip6.payload, ip6.nh
    while isinstance(layer, EXT_HEADERS):
        nh, layer = layer.nh, layer.payload
    return nh
