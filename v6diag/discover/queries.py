"""Name queries `discover` sends (builders only): mDNS one-shot queries (RFC 6762
5.1, asking for unicast answers, 5.4), LLMNR reverse queries (RFC 4795), ICMPv6
Node Information name queries (RFC 4620) and ARP requests (RFC 826). Every one
is a question: nothing here announces or claims a name, so no host is ever made
to rename itself. DNS messages are built by dnspython."""

from __future__ import annotations

import ipaddress
import struct

from v6diag.core.ndp import icmpv6_frame
from v6diag.discover.names import SERVICES_META, dnspython

MDNS_V6, MDNS_V4 = "ff02::fb", "224.0.0.251"  # RFC 6762 3
LLMNR_V6, LLMNR_V4 = "ff02::1:3", "224.0.0.252"  # RFC 4795 2
MDNS_QUESTIONS_PER_PACKET = 16  # well inside one 1500-byte frame
NODEINFO_QUERY, NI_QTYPE_NAME, NI_SUBJECT_IPV6 = 139, 2, 0  # RFC 4620 4, 6.3
QU = 0x8000  # RFC 6762 5.4: the top bit of a question's class asks for a unicast answer
LLMNR_HOPS, MDNS_HOPS = 1, 255  # RFC 4795 2.5 (IPv6 hop limit 1), RFC 6762 11


def _message(questions: list[tuple[str, str]], ident: int = 0, qu: bool = True) -> bytes:
    dns = dnspython()
    msg = dns.message.Message(id=ident)
    msg.flags = 0
    rdclass = dns.rdataclass.RdataClass.make(dns.rdataclass.IN | (QU if qu else 0))
    for name, rdtype in questions:
        msg.find_rrset(msg.question, dns.name.from_text(name), rdclass, dns.rdatatype.from_text(rdtype),
                       create=True)
    return msg.to_wire()


def services_query() -> bytes:
    """Which service types are on the link (RFC 6763 9)."""
    return _message([(SERVICES_META, "PTR")])


def instances_query(service_types: list[str]) -> list[bytes]:
    """The instances of each type (PTR), whose answers carry SRV, TXT and addresses."""
    names = [f"{t}.local." for t in service_types]
    return [_message([(n, "PTR") for n in names[i : i + MDNS_QUESTIONS_PER_PACKET]])
            for i in range(0, len(names), MDNS_QUESTIONS_PER_PACKET)]


def reverse_name(address: str) -> str:
    return ipaddress.ip_address(address).reverse_pointer + "."


def mdns_reverse_queries(addresses: list[str]) -> list[bytes]:
    """Who has these addresses: reverse PTR questions, several per packet."""
    names = [reverse_name(a) for a in addresses]
    return [_message([(n, "PTR") for n in names[i : i + MDNS_QUESTIONS_PER_PACKET]])
            for i in range(0, len(names), MDNS_QUESTIONS_PER_PACKET)]


def llmnr_reverse_query(address: str, ident: int) -> bytes:
    """RFC 4795 2.1.1: one question per message, class IN, a random ID."""
    return _message([(reverse_name(address), "PTR")], ident=ident, qu=False)


def nodeinfo_name_query(src_mac: str, dst_mac: str, src: str, dst: str, nonce: bytes) -> bytes:
    """RFC 4620 4, 5: a Node Name query about the destination address itself."""
    icmp = (struct.pack("!BBHHH", NODEINFO_QUERY, NI_SUBJECT_IPV6, 0, NI_QTYPE_NAME, 0) + nonce[:8]
            + ipaddress.IPv6Address(dst).packed)
    return icmpv6_frame(src_mac, dst_mac, src, dst, 64, icmp)


def arp_request(src_mac: str, src_ip: str, target: str) -> bytes:
    """RFC 826 request for `target`, broadcast, from our own address."""
    mac = bytes.fromhex(src_mac.replace(":", ""))
    return (b"\xff" * 6 + mac + b"\x08\x06"
            + struct.pack("!HHBBH6s4s6s4s", 1, 0x0800, 6, 4, 1, mac, ipaddress.IPv4Address(src_ip).packed,
                          bytes(6), ipaddress.IPv4Address(target).packed))
