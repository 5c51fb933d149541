"""Link layer: find the sender's MAC and the IPv6 packet inside any frame we read."""

from __future__ import annotations

from dataclasses import dataclass

from scapy.layers.inet6 import IPv6
from scapy.layers.l2 import CookedLinux, CookedLinuxV2, Ether

from v6diag.model import Frame

LINKTYPE_ETHERNET = 1
LINKTYPE_LINUX_SLL = 113
LINKTYPE_LINUX_SLL2 = 276
SLL_OUTGOING = 4  # linux/if_packet.h PACKET_OUTGOING

_DECODERS = {
    LINKTYPE_ETHERNET: Ether,
    LINKTYPE_LINUX_SLL: CookedLinux,
    LINKTYPE_LINUX_SLL2: CookedLinuxV2,
}


@dataclass(frozen=True)
class LinkPacket:
    src_mac: str | None  # None when the link layer carries no 6-byte address
    dst_mac: str | None
    outgoing: bool
    ip6: IPv6 | None


def mac_text(raw: bytes) -> str:
    return ":".join(f"{b:02x}" for b in raw)


def decode_link(frame: Frame) -> LinkPacket:
    """Dissect the link layer with scapy (Ethernet incl. 802.1Q/QinQ, Linux SLL/SLL2)."""
    cls = _DECODERS.get(frame.linktype)
    if cls is None:
        return LinkPacket(None, None, frame.outgoing, None)
    pkt = cls(frame.data)
    if cls is Ether:
        src, dst, outgoing = pkt.src, pkt.dst, frame.outgoing
    else:
        alen = pkt.lladdrlen
        src = mac_text(pkt.src[:6]) if alen == 6 and pkt.src else None
        dst = None
        outgoing = frame.outgoing or pkt.pkttype == SLL_OUTGOING
    ip6 = pkt.getlayer(IPv6)
    return LinkPacket(src.lower() if src else None, dst, outgoing, ip6)
