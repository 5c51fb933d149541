"""The test oracle for v6diag.discover.decode: the scapy-based decoder discover
used before it decoded raw bytes (kept here, unchanged in its rules, so the raw
decoder can be held to the same sightings on every capture and crafted frame).

Turn IPv6 frames into discovery sightings: who is on the link, at which address.

Only evidence that proves the sender is on this link is attributed to an address:
ND/RS/RA need hop limit 255 (RFC 4861 7.1.1), MLD uses a link-local source with
hop limit 1 (RFC 3810 5), Parameter Problems quote a packet we sent to a link-scope
multicast group, and echo replies must answer a multicast echo request.
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass, field

from scapy.layers.inet6 import (
    ICMPv6EchoReply,
    ICMPv6EchoRequest,
    ICMPv6MLDone,
    ICMPv6MLReport,
    ICMPv6MLReport2,
    ICMPv6ND_NA,
    ICMPv6ND_NS,
    ICMPv6ND_RA,
    ICMPv6ND_RS,
    ICMPv6NDOptDstLLAddr,
    ICMPv6ParamProblem,
    IPv6,
)
from scapy.packet import Raw

from v6diag.core import link
from v6diag.core.constants import ND_HOP_LIMIT, PROTO_ICMPV6
from v6diag.core.dissect import (
    ND_FIXED, MalformedPacket, check_nd_options, ipv6_of, last_next_header, upper_layer, without_padding,
)
from v6diag.core.frames import Frame
from v6diag.discover.report import Sighting

# How a device can be seen; the order is the order shown to users.
TECHNIQUES = (
    "echo",  # answered ICMPv6 echo to ff02::1
    "dest-opt-nh59",  # Parameter Problem for an unknown Destination Option, no upper layer
    "dest-opt-icmp",  # the same with an ICMPv6 echo behind the option
    "mld",  # MLD listener report
    "ns",  # solicited Neighbor Advertisement
    "na",  # unsolicited Neighbor Advertisement
    "dad",  # Duplicate Address Detection probe (NS from ::)
    "rs",  # Router Solicitation
    "ra",  # Router Advertisement
    "neigh-table",  # the kernel's neighbour table
    "traffic",  # any other link-local traffic heard
)
ACTIVE = {"echo", "dest-opt-nh59", "dest-opt-icmp", "mld", "ns"}

NH_DEST_OPTS = 60
NH_NONE = 59


@dataclass
class Decoded:
    sightings: list[Sighting] = field(default_factory=list)
    multicast_echo_id: int | None = None  # an echo request sent to a multicast group
    invalid: str | None = None  # why a packet that parsed is not acceptable as evidence


def _unicast(addr: str) -> str | None:
    try:
        ip = ipaddress.IPv6Address(addr)
    except ValueError:
        return None
    if ip.is_multicast or ip.is_unspecified or ip.is_loopback:
        return None
    return ip.compressed


def _is_link_local(addr: str | None) -> bool:
    return addr is not None and ipaddress.IPv6Address(addr).is_link_local


def _is_mac_unicast(mac: str) -> bool:
    return not int(mac[:2], 16) & 1 and mac != "00:00:00:00:00:00"


def decode_frame(frame: Frame) -> Decoded:
    """Never raises for bad packet bytes except MalformedPacket."""
    out = Decoded()
    got = ipv6_of(frame)
    if got is None:
        return out
    lh, ip6 = got
    if lh.src_mac is None:
        return out
    mac = link.mac_text(lh.src_mac)
    if not _is_mac_unicast(mac):
        out.invalid = f"frame from multicast/zero source MAC {mac}"
        return out
    try:
        _decode_ipv6(frame.ts, mac, frame.outgoing or lh.outgoing, ip6, out)
    except MalformedPacket:
        raise
    except Exception as e:
        raise MalformedPacket(f"{type(e).__name__}: {e}") from e
    return out


def _decode_ipv6(ts: float, mac: str, outgoing: bool, ip6: IPv6, out: Decoded) -> None:
    src = _unicast(ip6.src)
    dst_multicast = ipaddress.IPv6Address(ip6.dst).is_multicast

    def see(address: str | None, technique: str, router: bool = False) -> None:
        out.sightings.append(
            Sighting(ts, mac, address, technique, router, technique in ACTIVE)
        )

    upper = upper_layer(ip6)
    if isinstance(upper, Raw) and last_next_header(ip6) == PROTO_ICMPV6:
        raise MalformedPacket("ICMPv6 message too short to decode")

    if isinstance(upper, ICMPv6EchoRequest) and dst_multicast:
        out.multicast_echo_id = upper.id
    if outgoing:
        return  # our own probes prove nothing about other devices

    if isinstance(upper, _ND_TYPES):
        check_nd_options(without_padding(upper), ND_FIXED[type(upper)])
    if isinstance(upper, _ND_TYPES) and ip6.hlim != ND_HOP_LIMIT:
        # RFC 4861 7.1.1: receivers discard ND with hop limit != 255 (off-link or forged)
        out.invalid = f"{upper.name} from {mac} with hop limit {ip6.hlim}, not 255"
        see(None, "traffic")
        return

    if isinstance(upper, ICMPv6ND_NA):
        tlla = upper.getlayer(ICMPv6NDOptDstLLAddr)
        if tlla is not None and _is_mac_unicast(tlla.lladdr.lower()):
            mac = tlla.lladdr.lower()  # RFC 4861 4.4: the target's link-layer address
        technique = "ns" if upper.S else "na"
        see(_unicast(upper.tgt), technique, bool(upper.R))
        if src and src != _unicast(upper.tgt):
            see(src, technique, bool(upper.R))
    elif isinstance(upper, ICMPv6ND_NS):
        if src is None:  # RFC 4862 5.4.2: DAD probes come from ::
            see(_unicast(upper.tgt), "dad")
        else:
            see(src, "traffic")
    elif isinstance(upper, ICMPv6ND_RA):
        see(src, "ra", router=True)
    elif isinstance(upper, ICMPv6ND_RS):
        see(src, "rs")
    elif isinstance(upper, (ICMPv6MLReport2, ICMPv6MLReport, ICMPv6MLDone)):
        # RFC 3810 5.2.13: reports come from the link-local address (or :: during DAD)
        see(src if _is_link_local(src) else None, "mld")
    elif isinstance(upper, ICMPv6ParamProblem):
        see(src, _dest_opt_technique(upper))
    elif isinstance(upper, ICMPv6EchoReply):
        # attributed to an address only when it answers a multicast request (analyse)
        out.sightings.append(Sighting(ts, mac, src, f"echo-reply:{upper.id}", False, True))
    else:
        see(src if _is_link_local(src) else None, "traffic")


_ND_TYPES = (ICMPv6ND_NA, ICMPv6ND_NS, ICMPv6ND_RA, ICMPv6ND_RS)


def _dest_opt_technique(pp: ICMPv6ParamProblem) -> str:
    """Which probe a Parameter Problem answers, from the packet it quotes
    (RFC 4443 3.4: as much of the invoking packet as fits)."""
    quoted = bytes(pp.payload)
    if len(quoted) < 42 or quoted[0] >> 4 != 6:
        return "traffic"
    if quoted[6] != NH_DEST_OPTS or quoted[24] != 0xFF:  # dst must be multicast
        return "traffic"
    return "dest-opt-nh59" if quoted[40] == NH_NONE else "dest-opt-icmp"
