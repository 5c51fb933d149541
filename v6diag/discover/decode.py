"""Turn IPv6 frames into discovery sightings: who is on the link, at which address.

Only evidence that proves the sender is on this link is attributed to an address:
ND/RS/RA need hop limit 255 (RFC 4861 7.1.1), MLD uses a link-local source with
hop limit 1 (RFC 3810 5), Parameter Problems quote a packet we sent to a link-scope
multicast group, and echo replies must answer a multicast echo request.

Decoded from the raw bytes, every length checked against what the headers claim:
a packet from the network is hostile input. A packet that claims ICMPv6 and does
not hold together raises MalformedPacket (counted by the caller); nothing else
escapes. scapy is not used here: it costs ~50 us a frame and ~0.3 s to import,
and discovery reads every frame of a live link or a capture.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from v6diag.core import link
from v6diag.core.constants import (
    DHCPV6_CLIENT_PORT, DHCPV6_SERVER_PORT, ETH_ARP, ETH_IPV4, ETH_IPV6, ND_HOP_LIMIT, PROTO_ICMPV6, PROTO_UDP,
)
from v6diag.core.frames import Frame
from v6diag.core.inet import ipv6_text
from v6diag.core.wire import MalformedPacket, check_nd_options, ipv6_upper  # noqa: F401  (MalformedPacket: callers catch it)
from v6diag.discover.names import (
    LLMNR_PORT, MDNS_PORT, NODEINFO_REPLY, Fact, arp_facts, dhcpv6_fqdn_facts, dns_facts, nodeinfo_facts,
)
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
    "mdns",  # answered (or announced) over multicast DNS
    "llmnr",  # answered an LLMNR query
    "nodeinfo",  # answered an ICMPv6 Node Information query
    "arp",  # IPv4 ARP (passive, or the --ipv4 sweep)
    "traffic",  # any other link-local traffic heard
)
ACTIVE = {"echo", "dest-opt-nh59", "dest-opt-icmp", "mld", "ns"}

NH_DEST_OPTS = 60
NH_NONE = 59
# ICMPv6 types (RFC 4443, 4861, 2710, 3810) and the octets each needs before its options
PARAM_PROBLEM, ECHO_REQUEST, ECHO_REPLY = 4, 128, 129
MLD_QUERY, MLD_REPORT, MLD_DONE, MLD2_REPORT = 130, 131, 132, 143
RS, RA, NS, NA = 133, 134, 135, 136
FIXED = {PARAM_PROBLEM: 8, ECHO_REQUEST: 8, ECHO_REPLY: 8, MLD_REPORT: 24, MLD_DONE: 24, MLD2_REPORT: 8,
         RS: 8, RA: 16, NS: 24, NA: 24}
ND_NAMES = {RS: "Router Solicitation", RA: "Router Advertisement", NS: "Neighbor Solicitation",
            NA: "Neighbor Advertisement"}
OPT_TARGET_LLADDR = 2  # RFC 4861 4.6.1
ZERO_MAC = b"\0" * 6


@dataclass
class Decoded:
    sightings: list[Sighting] = field(default_factory=list)
    multicast_echo_id: int | None = None  # an echo request sent to a multicast group
    invalid: str | None = None  # why a packet that parsed is not acceptable as evidence
    facts: list[Fact] = field(default_factory=list)  # names, services, IPv4 (names.py)


def _unicast(a: bytes) -> bool:
    """Not multicast (ff00::/8), unspecified (::) or loopback (::1)."""
    return a[0] != 0xFF and a != bytes(16) and a != bytes(15) + b"\1"


def _link_local(a: bytes) -> bool:
    return a[0] == 0xFE and a[1] & 0xC0 == 0x80  # fe80::/10


def _mac_unicast(mac: bytes) -> bool:
    return not mac[0] & 1 and mac != ZERO_MAC


def decode_frame(frame: Frame) -> Decoded:
    """Never raises for bad packet bytes except MalformedPacket."""
    out = Decoded()
    lh = link.parse(frame.linktype, frame.data)
    if lh is None:
        return out
    if lh.etype in (ETH_ARP, ETH_IPV4):
        if not (frame.outgoing or lh.outgoing):
            _ipv4_link(frame, lh, out)
        return out
    if lh.etype != ETH_IPV6:
        return out
    d = frame.data
    ip = lh.l3
    if len(d) < ip + 40:
        raise MalformedPacket(f"IPv6 header cut short ({len(d) - ip} octets)")
    if d[ip] >> 4 != 6:
        raise MalformedPacket(f"IPv6 EtherType but version {d[ip] >> 4}")
    if lh.src_mac is None:
        return out
    mac_raw = lh.src_mac
    if not _mac_unicast(mac_raw):
        out.invalid = f"frame from multicast/zero source MAC {link.mac_text(mac_raw)}"
        return out
    src, dst = d[ip + 8 : ip + 24], d[ip + 24 : ip + 40]
    nh, off, end = ipv6_upper(d, ip)
    _sightings(frame, link.mac_text(mac_raw), frame.outgoing or lh.outgoing, d, off, end, nh, src, dst,
               d[ip + 7], out)
    return out


def _sightings(frame: Frame, mac: str, outgoing: bool, d: bytes, off: int, end: int, nh, src: bytes,
               dst: bytes, hlim: int, out: Decoded) -> None:
    ts = frame.ts
    src_text = ipv6_text(src) if _unicast(src) else None

    def see(address: str | None, technique: str, router: bool = False, who: str = mac, active=None) -> None:
        out.sightings.append(Sighting(ts, who, address, technique, router,
                                      technique in ACTIVE if active is None else active))

    if nh != PROTO_ICMPV6:
        if not outgoing:
            technique = _udp_names(frame, mac, d, off, end, out) if nh == PROTO_UDP else "traffic"
            see(src_text if src_text and _link_local(src) else None, technique)
        return
    icmp = d[off:end]
    if len(icmp) < 4:
        raise MalformedPacket("ICMPv6 message too short to decode")
    kind = icmp[0]
    if kind in FIXED and len(icmp) < FIXED[kind] and kind not in ND_NAMES:
        raise MalformedPacket(f"ICMPv6 type {kind} of {len(icmp)} octets, needs {FIXED[kind]}")
    if kind == ECHO_REQUEST and dst[0] == 0xFF:
        out.multicast_echo_id = (icmp[4] << 8) | icmp[5]
    if outgoing:
        return  # our own probes prove nothing about other devices
    if kind in ND_NAMES:
        check_nd_options(icmp, FIXED[kind])  # RFC 4861 4.6, 6.1: too short, zero-length or overlong options
        if hlim != ND_HOP_LIMIT:
            # RFC 4861 7.1.1: receivers discard ND with hop limit != 255 (off-link or forged)
            out.invalid = f"{ND_NAMES[kind]} from {mac} with hop limit {hlim}, not 255"
            see(None, "traffic")
            return
    if kind == NA:
        target = icmp[8:24]
        tlla = _option(icmp, 24, OPT_TARGET_LLADDR)
        who = link.mac_text(tlla) if tlla and _mac_unicast(tlla) else mac  # RFC 4861 4.4: the target's MAC
        technique, router = ("ns" if icmp[4] & 0x40 else "na"), bool(icmp[4] & 0x80)  # S and R flags
        see(ipv6_text(target) if _unicast(target) else None, technique, router, who)
        if src_text and src != target:
            see(src_text, technique, router, who)
    elif kind == NS:
        if src == bytes(16):  # RFC 4862 5.4.2: DAD probes come from ::
            target = icmp[8:24]
            see(ipv6_text(target) if _unicast(target) else None, "dad")
        else:
            see(src_text, "traffic")
    elif kind == RA:
        see(src_text, "ra", router=True)
    elif kind == RS:
        see(src_text, "rs")
    elif kind in (MLD_REPORT, MLD2_REPORT, MLD_DONE):
        # RFC 3810 5.2.13: reports come from the link-local address (or :: during DAD)
        see(src_text if src_text and _link_local(src) else None, "mld")
    elif kind == PARAM_PROBLEM:
        see(src_text, _dest_opt_technique(icmp[8:]))
    elif kind == NODEINFO_REPLY:
        out.facts += nodeinfo_facts(icmp, ts, mac)
        see(src_text if src_text and _link_local(src) else None, "nodeinfo", active=False)
    elif kind == ECHO_REPLY:
        # attributed to an address only when it answers a multicast request (analyse)
        out.sightings.append(Sighting(ts, mac, src_text, f"echo-reply:{(icmp[4] << 8) | icmp[5]}", False, True))
    else:
        see(src_text if src_text and _link_local(src) else None, "traffic")


def _udp_names(frame: Frame, mac: str, d: bytes, off: int, end: int, out: Decoded) -> str:
    """mDNS/LLMNR responses (by source port) and DHCPv6 client messages (to the
    server port) name their sender; the technique the frame counts as."""
    if off + 8 > end:
        return "traffic"
    sport, dport = (d[off] << 8) | d[off + 1], (d[off + 2] << 8) | d[off + 3]
    payload = d[off + 8 : end]
    if sport in (MDNS_PORT, LLMNR_PORT):
        source = "mdns" if sport == MDNS_PORT else "llmnr"
        facts = dns_facts(payload, frame.ts, mac, source)
        out.facts += facts
        return source if facts else "traffic"
    if dport == DHCPV6_SERVER_PORT and sport == DHCPV6_CLIENT_PORT:
        out.facts += dhcpv6_fqdn_facts(payload, frame.ts, mac)
    return "traffic"


def _ipv4_link(frame: Frame, lh, out: Decoded) -> None:
    """IPv4 on the same link: ARP (RFC 826), and mDNS/LLMNR responses over IPv4
    (RFC 791 header, unfragmented UDP only)."""
    d, ip = frame.data, lh.l3
    if lh.etype == ETH_ARP:
        out.facts += arp_facts(d[ip:], frame.ts)
        return
    if lh.src_mac is None or not _mac_unicast(lh.src_mac) or len(d) < ip + 20 or d[ip] >> 4 != 4:
        return
    ihl = (d[ip] & 0x0F) * 4
    end = min(len(d), ip + ((d[ip + 2] << 8) | d[ip + 3]))
    fragment = ((d[ip + 6] << 8) | d[ip + 7]) & 0x3FFF  # MF or an offset
    if d[ip + 9] != PROTO_UDP or fragment or ihl < 20 or ip + ihl + 8 > end:
        return
    u = ip + ihl
    sport = (d[u] << 8) | d[u + 1]
    if sport in (MDNS_PORT, LLMNR_PORT):
        out.facts += dns_facts(d[u + 8 : end], frame.ts, link.mac_text(lh.src_mac),
                               "mdns" if sport == MDNS_PORT else "llmnr")


def _option(icmp: bytes, start: int, wanted: int) -> bytes | None:
    """The 6-byte link-layer address in the first ND option of type `wanted`
    (lengths were checked by check_nd_options)."""
    i = start
    while i + 8 <= len(icmp):
        if icmp[i] == wanted and icmp[i + 1] == 1:
            return icmp[i + 2 : i + 8]
        i += icmp[i + 1] * 8 or len(icmp)
    return None


def _dest_opt_technique(quoted: bytes) -> str:
    """Which probe a Parameter Problem answers, from the packet it quotes
    (RFC 4443 3.4: as much of the invoking packet as fits)."""
    if len(quoted) < 42 or quoted[0] >> 4 != 6:
        return "traffic"
    if quoted[6] != NH_DEST_OPTS or quoted[24] != 0xFF:  # dst must be multicast
        return "traffic"
    return "dest-opt-nh59" if quoted[40] == NH_NONE else "dest-opt-icmp"
