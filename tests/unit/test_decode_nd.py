"""The sighting decoder, one technique at a time, on frames built with scapy."""

from __future__ import annotations

import pytest
from scapy.layers.inet6 import (
    ICMPv6EchoReply,
    ICMPv6MLReport2,
    ICMPv6ND_NA,
    ICMPv6ND_NS,
    ICMPv6ND_RA,
    ICMPv6ND_RS,
    ICMPv6NDOptDstLLAddr,
    ICMPv6ParamProblem,
    IPv6,
)
from scapy.layers.l2 import Dot1Q, Ether

from v6diag.core.inet import multicast_mac, solicited_node
from v6diag.discover.decode import MalformedPacket, decode_frame
from v6diag.core.frames import Frame
from v6diag.discover import probe
from v6diag.core.netlink import Interface

HOST_MAC = "b8:27:eb:89:bc:51"
HOST_LL = "fe80::ba27:ebff:fe89:bc51"
US_MAC = "02:00:00:00:00:01"
US_LL = "fe80::1"


def frame(pkt, outgoing=False) -> Frame:
    return Frame(100.0, 1, bytes(pkt), outgoing=outgoing)


def eth(src=HOST_MAC, dst=US_MAC):
    return Ether(src=src, dst=dst)


def only(decoded):
    assert len(decoded.sightings) == 1, decoded.sightings
    return decoded.sightings[0]


def test_solicited_na_confirms_target_with_router_flag():
    s = only(decode_frame(frame(eth() / IPv6(src=HOST_LL, dst=US_LL, hlim=255)
                                / ICMPv6ND_NA(tgt=HOST_LL, S=1, R=1) / ICMPv6NDOptDstLLAddr(lladdr=HOST_MAC))))
    assert (s.mac, s.address, s.technique, s.is_router, s.active) == (HOST_MAC, HOST_LL, "ns", True, True)


def test_unsolicited_na_is_passive_na():
    s = only(decode_frame(frame(eth(dst="33:33:00:00:00:01") / IPv6(src=HOST_LL, dst="ff02::1", hlim=255)
                                / ICMPv6ND_NA(tgt=HOST_LL, R=0, S=0, O=1))))
    assert (s.technique, s.active, s.is_router) == ("na", False, False)


def test_dad_probe_gives_the_tentative_address():
    s = only(decode_frame(frame(eth(dst="33:33:ff:89:bc:51") / IPv6(src="::", dst="ff02::1:ff89:bc51", hlim=255)
                                / ICMPv6ND_NS(tgt=HOST_LL))))
    assert (s.address, s.technique) == (HOST_LL, "dad")


def test_ra_marks_a_router_and_rs_does_not():
    ra = only(decode_frame(frame(eth() / IPv6(src=HOST_LL, dst="ff02::1", hlim=255) / ICMPv6ND_RA())))
    rs = only(decode_frame(frame(eth() / IPv6(src=HOST_LL, dst="ff02::2", hlim=255) / ICMPv6ND_RS())))
    assert (ra.technique, ra.is_router) == ("ra", True)
    assert (rs.technique, rs.is_router) == ("rs", False)


def test_nd_with_hop_limit_below_255_is_not_evidence():
    """RFC 4861 7.1.1: a forwarded (or forged) NA must not name an address."""
    d = decode_frame(frame(eth() / IPv6(src="2001:db8::9", dst=US_LL, hlim=64) / ICMPv6ND_NA(tgt="2001:db8::9")))
    assert d.invalid and "hop limit 64" in d.invalid
    assert [s.address for s in d.sightings] == [None]


def test_mld_report_from_link_local():
    s = only(decode_frame(frame(eth(dst="33:33:00:00:00:16") / IPv6(src=HOST_LL, dst="ff02::16", hlim=1)
                                / ICMPv6MLReport2())))
    assert (s.address, s.technique) == (HOST_LL, "mld")


@pytest.mark.parametrize("builder, technique", [
    (lambda: probe.dest_opt_probe_nh59(US_MAC, US_LL), "dest-opt-nh59"),
    (lambda: probe.dest_opt_probe_icmp(US_MAC, US_LL, 7, 1), "dest-opt-icmp"),
])
def test_parameter_problem_is_attributed_to_the_probe_it_quotes(builder, technique):
    quoted = bytes(builder())[14:]  # the IPv6 packet we sent, as the host quotes it
    pp = eth() / IPv6(src=HOST_LL, dst=US_LL) / ICMPv6ParamProblem(code=2, ptr=42) / quoted
    s = only(decode_frame(frame(pp)))
    assert (s.address, s.technique) == (HOST_LL, technique)


def test_echo_reply_carries_its_id_for_matching():
    s = only(decode_frame(frame(eth() / IPv6(src=HOST_LL, dst=US_LL) / ICMPv6EchoReply(id=4242))))
    assert s.technique == "echo-reply:4242"


def test_our_multicast_echo_registers_its_id_but_is_no_sighting():
    d = decode_frame(frame(probe.echo_probe(US_MAC, US_LL, 99, 1), outgoing=True))
    assert d.multicast_echo_id == 99 and d.sightings == []


def test_vlan_tagged_frames_decode():
    pkt = Ether(src=HOST_MAC, dst=US_MAC) / Dot1Q(vlan=10) / IPv6(src=HOST_LL, dst="ff02::2", hlim=255) / ICMPv6ND_RS()
    assert only(decode_frame(frame(pkt))).technique == "rs"


def test_frames_from_multicast_source_mac_are_rejected():
    d = decode_frame(frame(eth(src="33:33:00:00:00:01") / IPv6(src=HOST_LL, dst="ff02::2", hlim=255) / ICMPv6ND_RS()))
    assert d.sightings == [] and "multicast" in d.invalid


def test_zero_length_nd_option_is_malformed():
    raw = bytearray(bytes(eth() / IPv6(src=HOST_LL, dst=US_LL, hlim=255) / ICMPv6ND_NA(tgt=HOST_LL)
                          / ICMPv6NDOptDstLLAddr(lladdr=HOST_MAC)))
    raw[-7] = 0  # the option's length octet
    with pytest.raises(MalformedPacket, match="length 0"):
        decode_frame(Frame(1.0, 1, bytes(raw)))


def test_probe_frames_are_what_the_rfcs_ask():
    iface = Interface("x", 1, US_MAC, US_LL, False, ["2001:db8::1"], ["2001:db8::"])
    frames = [Ether(f) for f in probe.burst(iface, 5, 1, with_mld=True, mldv1=False)]
    # echo + both option probes from each of the two sources, and one MLDv2 query
    assert len(frames) == 7
    mld = frames[-1]
    assert mld[IPv6].hlim == 1 and mld[IPv6].nh == 0 and mld[IPv6].dst == "ff02::1"  # RFC 3810 5
    assert mld.lastlayer().name.startswith("MLDv2") or "Query" in mld.summary()
    nh59 = Ether(probe.dest_opt_probe_nh59(US_MAC, US_LL))
    raw = bytes(nh59[IPv6].payload)
    assert nh59[IPv6].nh == 60 and raw[0] == 59 and raw[2] == 0x80  # RFC 8200 4.2: type 10xxxxxx
    ns = Ether(probe.neighbor_solicitation(US_MAC, US_LL, HOST_LL))
    assert ns.dst == "33:33:ff:89:bc:51" and ns[IPv6].dst == "ff02::1:ff89:bc51" and ns[IPv6].hlim == 255


@pytest.mark.parametrize("target", [HOST_LL, "2001:db8::1:2:3", "fd00::ff:fe00:1"])
def test_hand_packed_ns_is_byte_for_byte_what_scapy_builds(target):
    from scapy.layers.inet6 import ICMPv6ND_NS, ICMPv6NDOptSrcLLAddr

    group = solicited_node(target)
    ref = bytes(Ether(src=US_MAC, dst=multicast_mac(group)) / IPv6(src=US_LL, dst=group, hlim=255)
                / ICMPv6ND_NS(tgt=target) / ICMPv6NDOptSrcLLAddr(lladdr=US_MAC))
    assert probe.neighbor_solicitation(US_MAC, US_LL, target) == ref


def test_every_hand_packed_probe_is_byte_for_byte_what_scapy_builds():
    """What discover sent when it built probes with scapy, now packed by hand."""
    from scapy.layers.inet6 import (
        HBHOptUnknown, ICMPv6EchoRequest, ICMPv6MLQuery, ICMPv6MLQuery2, IPv6ExtHdrDestOpt, IPv6ExtHdrHopByHop,
        RouterAlert,
    )

    l2 = Ether(src=US_MAC, dst="33:33:00:00:00:01")
    ip = IPv6(src=US_LL, dst="ff02::1", hlim=255)
    opt = HBHOptUnknown(otype=0x80, optdata=b"\x00" * 4)
    echo = ICMPv6EchoRequest(id=7, seq=2, data=probe.PAYLOAD)
    assert probe.echo_probe(US_MAC, US_LL, 7, 2) == bytes(l2 / ip / echo)
    assert probe.dest_opt_probe_nh59(US_MAC, US_LL) == bytes(l2 / ip / IPv6ExtHdrDestOpt(nh=59, options=[opt]))
    assert probe.dest_opt_probe_icmp(US_MAC, US_LL, 7, 2) == bytes(l2 / ip / IPv6ExtHdrDestOpt(options=[opt]) / echo)
    mld = IPv6(src=US_LL, dst="ff02::1", hlim=1) / IPv6ExtHdrHopByHop(options=[RouterAlert(value=0)])
    assert probe.mld_query(US_MAC, US_LL, 2) == bytes(l2 / mld / ICMPv6MLQuery2(mrd=probe.MLD_MAX_RESPONSE_MS,
                                                                                   QRV=2, QQIC=125))
    assert probe.mld_query(US_MAC, US_LL, 1) == bytes(l2 / mld / ICMPv6MLQuery(mrd=probe.MLD_MAX_RESPONSE_MS))
