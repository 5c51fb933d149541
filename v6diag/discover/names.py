"""What devices say about themselves besides their IPv6 addresses: host names,
services and IPv4 addresses, from mDNS (RFC 6762/6763) and LLMNR (RFC 4795)
responses, ICMPv6 Node Information replies (RFC 4620), the DHCPv6 Client FQDN
option (RFC 4704) and ARP (RFC 826).

DNS messages are parsed by dnspython (never by hand: name compression is where
decoders loop or overrun); every failure to parse is MalformedPacket. Facts are
attributed to the link-layer sender: a responder answers for itself."""

from __future__ import annotations

import struct
from dataclasses import dataclass
from functools import lru_cache

from v6diag.core.inet import ipv4_text
from v6diag.core.wire import MalformedPacket

MDNS_PORT, LLMNR_PORT = 5353, 5355
NODEINFO_REPLY = 140  # ICMPv6 type (RFC 4620 4)
NI_QTYPE_NAME = 2  # Node Name (RFC 4620 6.3)
DHCPV6_OPT_CLIENT_FQDN = 39  # RFC 4704 4
SERVICES_META = "_services._dns-sd._udp.local."  # RFC 6763 9: service type enumeration
SOURCES = ("mdns", "llmnr", "nodeinfo", "dhcpv6")  # the order names are shown in


@dataclass(frozen=True)
class Fact:
    """Something a device (by MAC) said about itself."""

    ts: float
    mac: str
    kind: str  # "name" | "service" | "ipv4" | "service-type" (only steers the next query)
    value: str | tuple  # name; (type, port, instance); dotted quad; "_ssh._tcp"
    source: str  # mdns | llmnr | nodeinfo | dhcpv6 | arp


@lru_cache(maxsize=1)
def dnspython():
    """dnspython, with mDNS's cache-flush bit understood: RFC 6762 10.2 sets the top
    bit of an answer's class, which dnspython reads as an unknown class and would
    leave A/AAAA/SRV undecoded (SRV targets may be compressed, so they must be)."""
    import dns.message
    import dns.rdata
    import dns.rdataclass
    import dns.rdatatype
    from dns.rdtypes.IN import AAAA, SRV, A

    flush_in = dns.rdataclass.IN | 0x8000
    for module, name in ((A, "A"), (AAAA, "AAAA"), (SRV, "SRV")):  # a module: what dnspython 2.3 takes
        try:
            dns.rdata.register_type(module, dns.rdatatype.from_text(name), name, rdclass=flush_in)
        except dns.rdata.RdatatypeExists:  # pragma: no cover (registered by an earlier call)
            pass
    return dns


def dns_facts(payload: bytes, ts: float, mac: str, source: str) -> list[Fact]:
    """Facts from one mDNS or LLMNR response (queries say nothing about the sender)."""
    dns = dnspython()
    try:
        msg = dns.message.from_wire(payload, ignore_trailing=True)
    except Exception as e:  # dnspython raises its own errors, and ValueError/struct.error on junk
        raise MalformedPacket(f"{source} message: {type(e).__name__}: {e}") from e
    if not msg.flags & dns.flags.QR:
        return []
    out: list[Fact] = []

    def fact(kind, value):
        out.append(Fact(ts, mac, kind, value, source))

    rdtype = dns.rdatatype
    for rrset in (*msg.answer, *msg.additional):
        owner = rrset.name.to_text()
        for rd in rrset:
            if rrset.rdtype in (rdtype.A, rdtype.AAAA):
                fact("name", _host(owner))
                if rrset.rdtype == rdtype.A:
                    fact("ipv4", rd.address)
            elif rrset.rdtype == rdtype.PTR:
                target = rd.target.to_text()
                if owner.endswith((".in-addr.arpa.", ".ip6.arpa.")):
                    fact("name", _host(target))
                elif owner.lower() == SERVICES_META:
                    fact("service-type", _service_type(target))
            elif rrset.rdtype == rdtype.SRV:
                labels = rrset.name.labels
                if len(labels) >= 4:
                    instance = labels[0].decode(errors="replace")
                    fact("service", (_service_type(owner), int(rd.port), instance))
                fact("name", _host(rd.target.to_text()))
    return [f for f in out if f.value]


def _host(name: str) -> str:
    """A name as people type it: no final dot."""
    return name[:-1] if name.endswith(".") else name


def _service_type(name: str) -> str:
    """'_ssh._tcp' from '_ssh._tcp.local.' or 'My Pi._ssh._tcp.local.'."""
    labels = name.rstrip(".").split(".")
    for i in range(len(labels) - 1):
        if labels[i].startswith("_") and labels[i + 1] in ("_tcp", "_udp"):
            return f"{labels[i]}.{labels[i + 1]}"
    return ""


def nodeinfo_facts(icmp: bytes, ts: float, mac: str) -> list[Fact]:
    """RFC 4620 4, 6.3: a successful Node Name reply carries a TTL, then names in
    DNS wire format (a single-label name ends with two zero octets)."""
    if len(icmp) < 16 or icmp[1] != 0 or struct.unpack_from("!H", icmp, 4)[0] != NI_QTYPE_NAME:
        return []
    data = icmp[16 + 4:]  # header, qtype, flags, nonce (16), then the TTL
    dns = dnspython()
    names, i = [], 0
    while i < len(data):
        if data[i] == 0:
            i += 1
            continue
        try:
            name, used = dns.name.from_wire(data, i)
        except Exception as e:
            raise MalformedPacket(f"Node Information name: {type(e).__name__}: {e}") from e
        names.append(Fact(ts, mac, "name", _host(name.to_text()), "nodeinfo"))
        i += used
    return [f for f in names if f.value]


def dhcpv6_fqdn_facts(udp_payload: bytes, ts: float, mac: str) -> list[Fact]:
    """The Client FQDN option of a client's message (RFC 4704 4): flags, then a
    domain name in DNS wire format, possibly partial (no root label)."""
    if len(udp_payload) < 4 or udp_payload[0] in (12, 13):  # relay messages: not the sender's
        return []
    i = 4
    while i + 4 <= len(udp_payload):
        code, length = struct.unpack_from("!HH", udp_payload, i)
        body = udp_payload[i + 4 : i + 4 + length]
        if len(body) < length:
            raise MalformedPacket(f"DHCPv6 option {code} of length {length} runs past the message")
        if code == DHCPV6_OPT_CLIENT_FQDN and length > 1:
            wire = body[1:] if body.endswith(b"\0") else body[1:] + b"\0"
            try:
                name, _ = dnspython().name.from_wire(wire, 0)
            except Exception as e:
                raise MalformedPacket(f"DHCPv6 Client FQDN: {type(e).__name__}: {e}") from e
            text = _host(name.to_text())
            return [Fact(ts, mac, "name", text, "dhcpv6")] if text else []
        i += 4 + length
    return []


def arp_facts(arp: bytes, ts: float) -> list[Fact]:
    """RFC 826: an Ethernet/IPv4 ARP packet says its sender holds its sender
    address, except an RFC 5227 probe (sender 0.0.0.0), which only asks."""
    if len(arp) < 28 or arp[:4] != b"\x00\x01\x08\x00" or arp[4] != 6 or arp[5] != 4:  # Ethernet, IPv4
        return []
    sender_mac, sender_ip = arp[8:14], arp[14:18]
    if sender_ip == bytes(4) or sender_mac[0] & 1 or sender_mac == bytes(6):
        return []
    return [Fact(ts, sender_mac.hex(":"), "ipv4", ipv4_text(sender_ip), "arp")]
