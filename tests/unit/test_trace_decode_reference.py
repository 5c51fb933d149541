"""trace's raw-byte ND decoder gives the messages the scapy decoder it replaced
gave (tests/reference_trace.py): on every bundled capture, on crafted RAs with
every option trace reads, and on generated option lists."""

from __future__ import annotations

import dataclasses

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scapy.layers.inet6 import (
    ICMPv6ND_NA, ICMPv6ND_NS, ICMPv6ND_RA, ICMPv6ND_Redirect, ICMPv6ND_RS, ICMPv6NDOptDNSSL, ICMPv6NDOptDstLLAddr,
    ICMPv6NDOptMTU, ICMPv6NDOptPrefixInfo, ICMPv6NDOptRDNSS, ICMPv6NDOptRouteInfo, ICMPv6NDOptSrcLLAddr, IPv6,
    IPv6ExtHdrHopByHop,
)
from scapy.layers.l2 import Dot1Q, Ether

from tests import reference_trace as ref
from tests.conftest import PCAPS
from v6diag.core.capture import CaptureReader
from v6diag.core.frames import Frame
from v6diag.trace import decode as raw

# RFC 8781 4: type 38, length 2, scaled lifetime 225 (x 8 s) and PLC 1 (/64), then 96 prefix bits
PREF64 = bytes([38, 2, 0x07, 0x08 | 1]) + bytes.fromhex("0064ff9b0000000000000000")


def outcome(module, frame):
    try:
        m = module.decode_message(frame, 0)
    except module.MalformedPacket as e:
        return "malformed", str(e)
    return m and dataclasses.asdict(m)


@pytest.mark.parametrize("capture", sorted(p.name for p in PCAPS.glob("*.pcap*")))
def test_bundled_captures_decode_the_same(capture):
    messages = 0
    for frame in CaptureReader(str(PCAPS / capture)):
        got = outcome(raw, frame)
        assert got == outcome(ref, frame), frame.data.hex()
        messages += isinstance(got, dict)
    if capture.startswith("trace-"):
        assert messages >= 2


def eth(p, vlan=False):
    e = Ether(src="02:00:00:00:00:01", dst="33:33:00:00:00:01")
    return e / Dot1Q(vlan=7) / p if vlan else e / p


RA = (IPv6(src="fe80::1", dst="ff02::1", hlim=255)
      / ICMPv6ND_RA(M=1, O=0, H=1, prf=3, chlim=64, routerlifetime=1800, reachabletime=30000, retranstimer=1000)
      / ICMPv6NDOptSrcLLAddr(lladdr="02:00:00:00:00:01") / ICMPv6NDOptMTU(mtu=1480)
      / ICMPv6NDOptPrefixInfo(prefix="2001:db8:1::", prefixlen=64, L=1, A=0, validlifetime=7200, preferredlifetime=3600)
      / ICMPv6NDOptRDNSS(dns=["2001:db8::53", "2001:db8::54"], lifetime=600)
      / ICMPv6NDOptDNSSL(searchlist=["example.com", "lan"], lifetime=60)
      / ICMPv6NDOptRouteInfo(prefix="2001:db8:2::", plen=48, prf=1, rtlifetime=900)
      / ICMPv6NDOptRouteInfo(prefix="::", plen=0, prf=0, rtlifetime=100))
CRAFTED = [bytes(p) for p in (
    eth(RA), eth(RA, vlan=True),
    eth(IPv6(src="fe80::1", dst="ff02::1", hlim=255) / ICMPv6ND_RA() / PREF64),
    eth(IPv6(src="fe80::1", dst="ff02::1", hlim=64) / ICMPv6ND_RA()),
    eth(IPv6(src="fe80::2", dst="ff02::2", hlim=255) / ICMPv6ND_RS() / ICMPv6NDOptSrcLLAddr(lladdr="02:00:00:00:00:02")),
    eth(IPv6(src="::", dst="ff02::1:ff00:5", hlim=255) / ICMPv6ND_NS(tgt="2001:db8::5")),
    eth(IPv6(src="fe80::2", dst="ff02::1:ff00:5", hlim=255) / IPv6ExtHdrHopByHop() / ICMPv6ND_NS(tgt="2001:db8::5")),
    eth(IPv6(src="fe80::5", dst="fe80::2", hlim=255) / ICMPv6ND_NA(tgt="2001:db8::5", R=1, S=1, O=0)
        / ICMPv6NDOptDstLLAddr(lladdr="02:00:00:00:00:05")),
    eth(IPv6(src="fe80::1", dst="fe80::2", hlim=255) / ICMPv6ND_Redirect(tgt="fe80::9", dst="2001:db8:9::1")),
)] + [bytes(eth(RA)) + b"\0" * 20]  # link padding past the payload length


@pytest.mark.parametrize("i", range(len(CRAFTED)))
def test_crafted_nd_decodes_the_same(i):
    frame = Frame(1.0, 1, CRAFTED[i])
    got = outcome(raw, frame)
    assert isinstance(got, dict)
    assert got == outcome(ref, frame)


def test_every_ra_field_is_read():
    m = raw.decode_message(Frame(1.0, 1, CRAFTED[0]), 0)
    assert m.details["routes"] == [{"prefix": "2001:db8:2::/48", "preference": "high", "lifetime": 900},
                                   {"prefix": "::/0", "preference": "medium", "lifetime": 100}]
    assert m.details["dnssl"] == [{"domains": ["example.com.", "lan."], "lifetime": 60}]
    m = raw.decode_message(Frame(1.0, 1, CRAFTED[2]), 0)
    assert m.details["pref64"] == [{"prefix": "64:ff9b::/64", "lifetime": 1800}]  # PLC 1, 225 x 8 s


OPTIONS = st.lists(st.sampled_from([
    ICMPv6NDOptSrcLLAddr(lladdr="02:00:00:00:12:34"), ICMPv6NDOptDstLLAddr(lladdr="02:00:00:00:99:99"),
    ICMPv6NDOptPrefixInfo(prefix="2001:db8:1::", prefixlen=56), ICMPv6NDOptMTU(mtu=9000),
    ICMPv6NDOptRDNSS(dns=["2001:db8::53"]), ICMPv6NDOptRDNSS(dns=[]),
    ICMPv6NDOptDNSSL(searchlist=["a.example"]), ICMPv6NDOptRouteInfo(prefix="2001:db8::", plen=32),
    ICMPv6NDOptRouteInfo(prefix="2001:db8:1:2::", plen=64),
]), max_size=5)
MESSAGES = st.sampled_from([ICMPv6ND_RS(), ICMPv6ND_RA(prf=2), ICMPv6ND_NS(tgt="fe80::1234"),
                            ICMPv6ND_NA(tgt="fe80::1234", O=1), ICMPv6ND_Redirect(tgt="fe80::1", dst="2001:db8::1")])


@settings(max_examples=300, deadline=None)
@given(msg=MESSAGES, opts=OPTIONS, hlim=st.sampled_from([255, 1]), pad=st.binary(max_size=16))
def test_generated_nd_decodes_the_same(msg, opts, hlim, pad):
    p = IPv6(src="fe80::1234", dst="ff02::1", hlim=hlim) / msg
    for o in opts:
        p = p / o
    frame = Frame(0.0, 1, bytes(eth(p)) + pad)
    assert outcome(raw, frame) == outcome(ref, frame)
