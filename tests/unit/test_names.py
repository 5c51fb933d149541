"""Names, services and IPv4 from what devices say (names.py), the queries
discover sends (queries.py), and how they reach a device's row: crafted with
dnspython and scapy as responders write them, and hostile bytes that must only
ever be MalformedPacket. Real responders (avahi-daemon) are in
tests/integration/test_discover_names.py."""

from __future__ import annotations

import struct

import dns.flags
import dns.message
import dns.rdataclass
import dns.rrset
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from scapy.layers.inet import IP, UDP
from scapy.layers.inet6 import IPv6
from scapy.layers.l2 import ARP, Ether

from v6diag.core.frames import Frame
from v6diag.discover import names, queries
from v6diag.discover.analyse import DiscoveryAnalysis
from v6diag.discover.decode import MalformedPacket, decode_frame
from v6diag.discover.render import ssh_hint

MAC, LL = "b8:27:eb:12:34:56", "fe80::ba27:ebff:fe12:3456"
FLUSH_IN = "CLASS32769"  # RFC 6762 10.2: IN with the cache-flush bit


def response(records, flush=True) -> bytes:
    names.dnspython()  # registers the cache-flush class for A/AAAA/SRV
    msg = dns.message.Message(id=0)
    msg.flags = dns.flags.QR | dns.flags.AA
    for owner, rdtype, text in records:
        rdclass = FLUSH_IN if flush and rdtype != "PTR" else "IN"
        msg.answer.append(dns.rrset.from_text(owner, 120, rdclass, rdtype, text))
    return msg.to_wire()  # dnspython compresses names, as responders do


ANNOUNCE = [("raspberrypi.local.", "A", "192.168.1.23"), ("raspberrypi.local.", "AAAA", LL),
            ("_services._dns-sd._udp.local.", "PTR", "_ssh._tcp.local."),
            ("_ssh._tcp.local.", "PTR", "Pi\\ 4._ssh._tcp.local."),
            ("Pi\\ 4._ssh._tcp.local.", "SRV", "0 0 22 raspberrypi.local."),
            ("3.2.1.168.192.in-addr.arpa.", "PTR", "raspberrypi.local.")]


def facts(payload, source="mdns"):
    return {(f.kind, f.value) for f in names.dns_facts(payload, 1.0, MAC, source)}


def test_an_mdns_answer_names_its_sender_with_services_and_ipv4():
    got = facts(response(ANNOUNCE))
    assert got == {("name", "raspberrypi.local"), ("ipv4", "192.168.1.23"), ("service-type", "_ssh._tcp"),
                   ("service", ("_ssh._tcp", 22, "Pi 4"))}


def test_without_the_cache_flush_bit_too_and_queries_say_nothing():
    assert ("ipv4", "192.168.1.23") in facts(response(ANNOUNCE, flush=False))
    query = dns.message.make_query("raspberrypi.local.", "A").to_wire()
    assert facts(query) == set()


def test_llmnr_reverse_answer():
    got = facts(response([("6.5.4.3.2.1.e.f.f.f.b.e.7.2.a.b.0.0.0.0.0.0.0.0.0.0.0.0.0.8.e.f.ip6.arpa.", "PTR",
                           "DESKTOP-7Q2.")], flush=False), "llmnr")
    assert got == {("name", "DESKTOP-7Q2")}


def test_queries_ask_once_per_question_with_the_unicast_bit():
    (one,) = queries.mdns_reverse_queries([LL, "192.168.1.23"])
    msg = dns.message.from_wire(one)
    assert [q.name.to_text() for q in msg.question] == [queries.reverse_name(LL), "23.1.168.192.in-addr.arpa."]
    assert all(q.rdclass == dns.rdataclass.IN | queries.QU and q.rdtype == 12 for q in msg.question)
    many = queries.mdns_reverse_queries([f"fe80::{i:x}" for i in range(40)])
    assert len(many) == 3 and all(len(p) < 1400 for p in many)
    llmnr = dns.message.from_wire(queries.llmnr_reverse_query(LL, 0x1234))
    assert llmnr.id == 0x1234 and len(llmnr.question) == 1 and llmnr.question[0].rdclass == dns.rdataclass.IN
    services = dns.message.from_wire(queries.services_query())
    assert services.question[0].name.to_text() == names.SERVICES_META


def test_nodeinfo_reply_names():
    # RFC 4620: type 140, code 0, qtype 2, flags, nonce, TTL, then names (a single label ends in two zeros)
    data = struct.pack("!I", 60) + b"\x04host\x03lan\x00" + b"\x05short\x00\x00"
    icmp = struct.pack("!BBHHH", 140, 0, 0, 2, 0) + bytes(8) + data
    assert {f.value for f in names.nodeinfo_facts(icmp, 0, MAC)} == {"host.lan", "short"}
    with pytest.raises(MalformedPacket):
        names.nodeinfo_facts(icmp[:-12] + b"\x3fx", 0, MAC)  # a label running past the reply


def test_dhcpv6_client_fqdn():
    fqdn = b"\x01" + b"\x06laptop\x04home\x00"
    solicit = b"\x01\x12\x34\x56" + struct.pack("!HH", 39, len(fqdn)) + fqdn
    assert [f.value for f in names.dhcpv6_fqdn_facts(solicit, 0, MAC)] == ["laptop.home"]
    partial = b"\x00" + b"\x06laptop"  # RFC 4704 4.2: a partial name has no root label
    solicit = b"\x01\x12\x34\x56" + struct.pack("!HH", 39, len(partial)) + partial
    assert [f.value for f in names.dhcpv6_fqdn_facts(solicit, 0, MAC)] == ["laptop"]
    with pytest.raises(MalformedPacket):
        names.dhcpv6_fqdn_facts(b"\x01\x12\x34\x56" + struct.pack("!HH", 39, 40) + fqdn, 0, MAC)


def test_arp_names_the_sender_but_not_a_probe():
    reply = bytes(ARP(op=2, hwsrc=MAC, psrc="192.168.1.23", hwdst="02:00:00:00:00:01", pdst="192.168.1.1"))
    assert [(f.mac, f.value) for f in names.arp_facts(reply, 0)] == [(MAC, "192.168.1.23")]
    probe = bytes(ARP(op=1, hwsrc=MAC, psrc="0.0.0.0", pdst="192.168.1.23"))  # RFC 5227
    assert names.arp_facts(probe, 0) == []


def frame(pkt, outgoing=False):
    return Frame(1.0, 1, bytes(Ether(src=MAC, dst="33:33:00:00:00:fb") / pkt), outgoing=outgoing)


def test_frames_reach_the_device_row():
    a = DiscoveryAnalysis()
    a.feed(frame(IPv6(src=LL, dst="ff02::fb", hlim=255) / UDP(sport=5353, dport=5353) / response(ANNOUNCE)))
    a.feed(frame(IP(src="192.168.1.23", dst="224.0.0.251") / UDP(sport=5353, dport=5353) / response(ANNOUNCE)))
    a.feed(Frame(2.0, 1, bytes(Ether(src="02:00:00:00:00:09", dst="ff:ff:ff:ff:ff:ff")
                               / ARP(hwsrc="02:00:00:00:00:09", psrc="192.168.1.99", pdst="192.168.1.1"))))
    hosts = {h.mac: h for h in a.report(None, 1.0, "pcap").hosts}
    pi = hosts[MAC]
    assert [(n.name, n.source) for n in pi.names] == [("raspberrypi.local", "mdns")]
    assert pi.ipv4 == ["192.168.1.23"] and pi.link_local == LL and "mdns" in pi.seen_by
    assert [(s.type, s.port, s.name) for s in pi.services] == [("_ssh._tcp", 22, "Pi 4")]
    assert ssh_hint(pi, "eth0", "pi") == "ssh pi@raspberrypi.local"
    ipv4_only = hosts["02:00:00:00:00:09"]
    assert ipv4_only.addresses == [] and ipv4_only.ipv4 == ["192.168.1.99"] and ipv4_only.seen_by == ["arp"]
    assert a.book.service_types == {"_ssh._tcp": None}


def test_our_own_queries_and_answers_to_them_by_others_are_told_apart():
    a = DiscoveryAnalysis()
    a.feed(frame(IPv6(src=LL, dst="ff02::fb") / UDP(sport=5353, dport=5353) / response(ANNOUNCE), outgoing=True))
    assert len(a.book) == 0


def test_a_compression_loop_is_malformed_not_a_hang():
    loop = struct.pack("!HHHHHH", 0, 0x8400, 0, 1, 0, 0) + b"\xc0\x0c" + struct.pack("!HHIH", 1, 1, 60, 4) + bytes(4)
    with pytest.raises(MalformedPacket):
        names.dns_facts(loop, 0, MAC, "mdns")
    huge = struct.pack("!HHHHHH", 0, 0x8400, 0, 65535, 65535, 65535)
    with pytest.raises(MalformedPacket):
        names.dns_facts(huge, 0, MAC, "mdns")


FUZZ = settings(max_examples=300, deadline=None, database=None, suppress_health_check=[HealthCheck.too_slow])


@FUZZ
@given(st.binary(max_size=300))
def test_any_payload_is_facts_or_malformed(payload):
    for source in ("mdns", "llmnr"):
        try:
            for f in names.dns_facts(payload, 0, MAC, source):
                assert f.kind in ("name", "ipv4", "service", "service-type") and f.value
        except MalformedPacket as e:
            assert str(e)


@FUZZ
@given(st.data())
def test_mutated_answers_never_crash_the_decoder(data):
    raw = bytearray(bytes(Ether(src=MAC, dst="33:33:00:00:00:fb") / IPv6(src=LL, dst="ff02::fb")
                          / UDP(sport=5353, dport=5353) / response(ANNOUNCE)))
    for _ in range(data.draw(st.integers(1, 6))):
        i = data.draw(st.integers(62, len(raw) - 1))  # inside the DNS message
        raw[i] = data.draw(st.integers(0, 255))
    cut = data.draw(st.integers(62, len(raw)))
    try:
        decode_frame(Frame(0.0, 1, bytes(raw[:cut])))
    except MalformedPacket:
        pass
    a = DiscoveryAnalysis()
    a.feed(Frame(0.0, 1, bytes(raw[:cut])))
    a.report(None, 0.0, "pcap")
