"""The raw-byte discover decoder gives the sightings the scapy decoder it
replaced gave (tests/reference_discover.py), on every bundled capture and on
crafted frames; malformed packets are counted by both."""

from __future__ import annotations

import dataclasses

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scapy.layers.inet6 import (
    HBHOptUnknown, ICMPv6EchoReply, ICMPv6EchoRequest, ICMPv6MLDone, ICMPv6MLQuery2, ICMPv6MLReport, ICMPv6MLReport2,
    ICMPv6ND_NA, ICMPv6ND_NS, ICMPv6ND_RA, ICMPv6ND_RS, ICMPv6NDOptDstLLAddr, ICMPv6NDOptSrcLLAddr, ICMPv6ParamProblem,
    IPv6, IPv6ExtHdrDestOpt, IPv6ExtHdrHopByHop, RouterAlert,
)
from scapy.layers.inet import UDP
from scapy.layers.l2 import Dot1Q, Ether

from tests import reference_discover as ref
from tests.conftest import PCAPS
from v6diag.core.capture import CaptureReader
from v6diag.core.frames import Frame
from v6diag.discover import decode as raw


NAMING = {"mdns", "llmnr", "nodeinfo"}  # techniques added since the oracle: it called them traffic


def outcome(module, frame):
    try:
        d = module.decode_frame(frame)
    except module.MalformedPacket:
        return "malformed"
    sightings = [dataclasses.replace(s, technique="traffic") if s.technique in NAMING else s for s in d.sightings]
    return sightings, d.multicast_echo_id, d.invalid is not None


@pytest.mark.parametrize("capture", ["discover-lan.pcap", "discover-lan.pcapng", "link-up-passive.pcapng",
                                     "trace-pd-delegated.pcap", "trace-tunnel-no-proxy.pcap"])
def test_bundled_captures_decode_the_same(capture):
    n = 0
    for frame in CaptureReader(str(PCAPS / capture)):
        assert outcome(raw, frame) == outcome(ref, frame), frame.data.hex()
        n += 1
    assert n >= 5


MAC, LL, LL2 = "b8:27:eb:00:00:01", "fe80::ba27:ebff:fe00:1", "fe80::1"
PACKETS = [
    IPv6(src=LL, dst=LL2, hlim=255) / ICMPv6ND_NA(tgt=LL, R=1, S=1) / ICMPv6NDOptDstLLAddr(lladdr="00:11:32:00:00:09"),
    IPv6(src=LL, dst="ff02::1", hlim=255) / ICMPv6ND_NA(tgt="2001:db8::5", S=0),
    IPv6(src="::", dst="ff02::1:ff00:5", hlim=255) / ICMPv6ND_NS(tgt="2001:db8::5"),
    IPv6(src=LL, dst="ff02::1:ff00:5", hlim=255) / ICMPv6ND_NS(tgt="2001:db8::5") / ICMPv6NDOptSrcLLAddr(lladdr=MAC),
    IPv6(src=LL, dst="ff02::1", hlim=255) / ICMPv6ND_RA(),
    IPv6(src=LL, dst="ff02::1", hlim=64) / ICMPv6ND_RA(),
    IPv6(src=LL, dst="ff02::2", hlim=255) / ICMPv6ND_RS(),
    IPv6(src=LL, dst="ff02::16", hlim=1) / IPv6ExtHdrHopByHop(options=[RouterAlert()]) / ICMPv6MLReport2(),
    IPv6(src="::", dst="ff02::16", hlim=1) / IPv6ExtHdrHopByHop(options=[RouterAlert()]) / ICMPv6MLReport2(),
    IPv6(src=LL, dst="ff02::2", hlim=1) / ICMPv6MLDone(),
    IPv6(src=LL, dst="ff02::1", hlim=1) / ICMPv6MLReport(),
    IPv6(src=LL, dst="ff02::1", hlim=1) / IPv6ExtHdrHopByHop(options=[RouterAlert()]) / ICMPv6MLQuery2(),
    IPv6(src=LL, dst=LL2) / ICMPv6EchoReply(id=7, seq=1),
    IPv6(src="2001:db8::9", dst=LL2) / ICMPv6EchoReply(id=7, seq=1),
    IPv6(src=LL2, dst="ff02::1") / ICMPv6EchoRequest(id=9),
    IPv6(src=LL, dst=LL2) / ICMPv6ParamProblem(code=2, ptr=42) / bytes(
        IPv6(src=LL2, dst="ff02::1") / IPv6ExtHdrDestOpt(nh=59, options=[HBHOptUnknown(otype=0x80, optdata=b"\0" * 4)])),
    IPv6(src=LL, dst=LL2) / ICMPv6ParamProblem(code=2) / bytes(
        IPv6(src=LL2, dst="ff02::1") / IPv6ExtHdrDestOpt(options=[HBHOptUnknown(otype=0x80, optdata=b"\0" * 4)])
        / ICMPv6EchoRequest()),
    IPv6(src=LL, dst=LL2) / UDP(sport=5353, dport=5353) / bytes(12),  # an mDNS query: nothing to name
    IPv6(src="2001:db8::1", dst="2001:db8::2") / UDP(),
]


@pytest.mark.parametrize("pkt", PACKETS, ids=[p.lastlayer().name for p in PACKETS])
def test_crafted_frames_decode_the_same(pkt):
    for eth in (Ether(src=MAC, dst="33:33:00:00:00:01"), Ether(src=MAC) / Dot1Q(vlan=5)):
        frame = Frame(1.0, 1, bytes(eth / pkt))
        assert outcome(raw, frame) == outcome(ref, frame)
        assert outcome(raw, Frame(1.0, 1, bytes(eth / pkt), outgoing=True)) == \
            outcome(ref, Frame(1.0, 1, bytes(eth / pkt), outgoing=True))


@settings(max_examples=300, deadline=None)
@given(st.sampled_from(PACKETS), st.data())
def test_mutated_frames_never_crash_and_agree_when_both_decode(pkt, data):
    raw_bytes = bytearray(bytes(Ether(src=MAC, dst="33:33:00:00:00:01") / pkt))
    for _ in range(data.draw(st.integers(0, 4))):
        i = data.draw(st.integers(0, len(raw_bytes) - 1))
        raw_bytes[i] = data.draw(st.integers(0, 255))
    cut = data.draw(st.integers(14, len(raw_bytes)))
    frame = Frame(1.0, 1, bytes(raw_bytes[:cut]))
    got = outcome(raw, frame)  # never anything but a result or MalformedPacket
    want = outcome(ref, frame)
    if got != "malformed" and want != "malformed" and cut == len(raw_bytes) and raw_bytes[14] >> 4 == 6:
        assert got[0] == want[0] or not want[0], (got, want, bytes(raw_bytes).hex())
