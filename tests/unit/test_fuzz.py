"""Hostile input: capture files and frames that are random or almost right.

Contracts checked (see v6diag/sources/pcap.py and v6diag/decode/nd.py):
- iterating CaptureReader either completes (maybe with a one-line `problem`) or
  raises InputError (DataError when damaged before the first packet); never any other exception;
- decode_frame returns a Decoded or raises MalformedPacket, nothing else;
- DiscoveryAnalysis.feed never raises and counts exactly the MalformedPacket cases.

Hypothesis keeps no example database here (database=None), so a failure is
reproduced from the printed example, not replayed from .hypothesis/ (Hypothesis
may still cache literal constants there; the directory is gitignored).
"""

from __future__ import annotations

import struct

import pytest
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st
from scapy.layers.inet6 import (
    ICMPv6ND_NA,
    ICMPv6ND_NS,
    ICMPv6ND_RA,
    ICMPv6ND_RS,
    ICMPv6NDOptDstLLAddr,
    ICMPv6NDOptMTU,
    ICMPv6NDOptPrefixInfo,
    ICMPv6NDOptRDNSS,
    ICMPv6NDOptSrcLLAddr,
    ICMPv6Unknown,
    IPv6,
    IPv6ExtHdrHopByHop,
    RouterAlert,
)
from scapy.layers.l2 import Ether

from tests.conftest import PCAPS
from v6diag.discover.analyse import DiscoveryAnalysis
from v6diag.discover.decode import Decoded, MalformedPacket, decode_frame
from v6diag.core.errors import DataError, InputError
from v6diag.core.frames import Batch, Frame
from v6diag.core.report import to_json
from v6diag.trace.command import _report as _trace_report
from v6diag.trace.exchanges import TraceAnalysis
from v6diag.core.capture import MAX_BLOCK, CaptureReader

FUZZ = settings(max_examples=200, deadline=None, database=None,
                suppress_health_check=[HealthCheck.too_slow])

CAPTURES = ["discover-lan.pcap", "discover-lan.pcapng", "link-up-passive.pcapng"]
HEADS = {name: (PCAPS / name).read_bytes()[:3000] for name in CAPTURES}
REAL = [f for name in ("discover-lan.pcap", "link-up-passive.pcapng")
        for f in CaptureReader(str(PCAPS / name))]

ND_FIXED = {133: 8, 134: 16, 135: 24, 136: 24, 137: 40}  # RFC 4861 4.1-4.5


def icmp6_type(data: bytes) -> int | None:
    """ICMPv6 type of an untagged Ethernet/IPv6 frame whose next header is ICMPv6."""
    if len(data) > 54 and data[12:14] == b"\x86\xdd" and data[20] == 58:
        return data[54]
    return None


def nd_option_offsets(data: bytes) -> list[int]:
    """Offsets (in the frame) of the ND options of an ND frame from the captures."""
    t = icmp6_type(data)
    end = 54 + struct.unpack("!H", data[18:20])[0]
    offs, i = [], 54 + ND_FIXED[t]
    while i + 2 <= end:
        offs.append(i)
        i += data[i + 1] * 8
    return offs


IPV6_FRAMES = [i for i, f in enumerate(REAL) if f.data[12:14] == b"\x86\xdd"]
ND_WITH_OPTIONS = [i for i, f in enumerate(REAL)
                   if icmp6_type(f.data) in ND_FIXED and nd_option_offsets(f.data)]


def test_the_captures_give_the_fuzzers_something_to_chew_on():
    assert len(REAL) > 500 and len(IPV6_FRAMES) > 400
    assert {icmp6_type(REAL[i].data) for i in ND_WITH_OPTIONS} >= {135, 136}
    assert len(ND_WITH_OPTIONS) >= 20


# -- mutations ----------------------------------------------------------------

flip = st.tuples(st.just("flip"), st.integers(0, 1 << 16), st.integers(0, 255))
truncate = st.tuples(st.just("truncate"), st.integers(0, 1 << 16))
insert = st.tuples(st.just("insert"), st.integers(0, 1 << 16), st.binary(min_size=1, max_size=24))
mutations = st.lists(st.one_of(flip, truncate, insert), min_size=1, max_size=6)


def mutate(data: bytes, ops) -> bytes:
    b = bytearray(data)
    for op in ops:
        if op[0] == "flip":
            if b:
                b[op[1] % len(b)] = op[2]
        elif op[0] == "truncate":
            del b[op[1] % (len(b) + 1):]
        else:
            at = op[1] % (len(b) + 1)
            b[at:at] = op[2]
    return bytes(b)


# -- reader -------------------------------------------------------------------

@pytest.fixture(scope="module")
def capfile(tmp_path_factory):
    return tmp_path_factory.mktemp("fuzz") / "capture"


def read_capture(path, data: bytes) -> str:
    """Write `data` and read it back; the only exceptions allowed are InputError (not a
    capture) and DataError (a capture damaged before its first packet)."""
    outcome = _read_capture(path, data)
    event(f"reader: {outcome}")  # shown by --hypothesis-show-statistics
    return outcome


def _read_capture(path, data: bytes) -> str:
    path.write_bytes(data)
    reader = CaptureReader(str(path))
    frames = []
    try:
        for frame in reader:
            frames.append(frame)
    except InputError as e:
        assert e.exit_code == 66
        assert isinstance(e.message, str) and e.message
        return "input-error"
    except DataError as e:
        assert e.exit_code == 65 and reader.count == 0 and frames == []
        assert isinstance(e.message, str) and e.message
        return "damaged-at-start"
    assert reader.count == len(frames)
    for f in frames:
        assert isinstance(f, Frame) and isinstance(f.data, bytes) and isinstance(f.ts, float)
        assert len(f.data) <= MAX_BLOCK
    if reader.problem is not None:
        assert isinstance(reader.problem, str) and "\n" not in reader.problem
        return "problem"
    return "ok"


PCAP_MAGICS = [struct.pack(e + "I", m) for e in "<>" for m in (0xA1B2C3D4, 0xA1B23C4D)]
PCAPNG_STARTS = [b"\n\r\r\n", b"\n\r\r\n\x1c\x00\x00\x00M<+\x1a", b"\n\r\r\n\x00\x00\x00\x1c\x1a+<M"]


@FUZZ
@given(data=st.binary(max_size=4096))
def test_reader_random_bytes(capfile, data):
    read_capture(capfile, data)


@FUZZ
@given(start=st.sampled_from(PCAP_MAGICS + PCAPNG_STARTS), rest=st.binary(max_size=2048))
def test_reader_random_bytes_after_a_valid_magic(capfile, start, rest):
    read_capture(capfile, start + rest)


@FUZZ
@given(name=st.sampled_from(CAPTURES), ops=mutations)
def test_reader_mutated_real_capture_heads(capfile, name, ops):
    read_capture(capfile, mutate(HEADS[name], ops))


@FUZZ
@given(name=st.sampled_from(CAPTURES), ops=st.lists(flip, min_size=1, max_size=8))
def test_reader_byte_flips_in_the_first_blocks(capfile, name, ops):
    # aim at the file header, SHB/IDB and the first records, where lengths live
    ops = [("flip", pos % 300, val) for _, pos, val in ops]
    read_capture(capfile, mutate(HEADS[name], ops))


def test_reader_every_cut_point_in_the_first_700_bytes(capfile):
    """Deterministic sweep: every cut point in the first 700 bytes of each capture."""
    seen = set()
    for name in CAPTURES:
        for cut in range(0, 700):
            seen.add(_read_capture(capfile, HEADS[name][:cut]))
    assert seen == {"input-error", "damaged-at-start", "problem", "ok"}


# -- decoder ------------------------------------------------------------------

def check_decode(frames: list[Frame]) -> int:
    """decode_frame/feed contracts on `frames`; returns how many were malformed."""
    bad = 0
    for f in frames:
        try:
            decoded = decode_frame(f)
        except MalformedPacket as e:
            assert str(e)
            bad += 1
        else:
            assert isinstance(decoded, Decoded)
    analysis = DiscoveryAnalysis()
    for f in frames:
        analysis.feed(f)
    assert analysis.packets == len(frames)
    assert analysis.malformed == bad
    report = to_json(analysis.report(None, 0.0, "pcap"))  # the report is built from what feed kept
    # the batch paths (capture reading) give the same reports as frame by frame
    batched = DiscoveryAnalysis()
    batched.feed_batch(Batch.of(frames, 0))
    assert to_json(batched.report(None, 0.0, "pcap")) == report
    one, many = TraceAnalysis(), TraceAnalysis()
    for f in frames:
        one.feed(f)
    many.feed_batch(Batch.of(frames, 0))
    assert to_json(_trace_report(one, "pcap", 0.0)) == to_json(_trace_report(many, "pcap", 0.0))
    event(f"malformed: {bad}/{len(frames)}")
    return bad


linktypes = st.sampled_from([1, 113, 276, 0, 228])


@FUZZ
@given(data=st.binary(max_size=200), linktype=linktypes)
def test_decode_random_bytes(data, linktype):
    check_decode([Frame(0.0, linktype, data)])


ETH_IPV6_HEAD = bytes.fromhex("333300000001" "020000000007" "86dd")


@FUZZ
@given(ip=st.binary(max_size=160), nh=st.sampled_from([58, 0, 60, 43, 44, 59, 17]),
       hlim=st.sampled_from([1, 255]))
def test_decode_random_ipv6_packets(ip, nh, hlim):
    # a plausible IPv6 header (version 6, random plen) over random bytes
    head = bytearray(ip[:40].ljust(40, b"\0"))
    head[0] = 0x60 | (head[0] & 0x0F)
    head[6], head[7] = nh, hlim
    check_decode([Frame(0.0, 1, ETH_IPV6_HEAD + bytes(head) + ip[40:])])


@FUZZ
@given(idx=st.sampled_from(range(len(REAL))), ops=mutations)
def test_decode_mutated_real_frames(idx, ops):
    check_decode([REAL[idx], Frame(1.0, 1, mutate(REAL[idx].data, ops)), REAL[idx]])


@FUZZ
@given(idx=st.sampled_from(IPV6_FRAMES), cut=st.integers(0, 200))
def test_decode_real_frames_truncated(idx, cut):
    data = REAL[idx].data
    check_decode([Frame(0.0, 1, data[: cut % (len(data) + 1)])])


@FUZZ
@given(idx=st.sampled_from(ND_WITH_OPTIONS), which=st.integers(0, 10), ops=st.lists(flip, max_size=3))
def test_decode_nd_option_length_zero_is_malformed(idx, which, ops):
    data = bytearray(REAL[idx].data)
    offs = nd_option_offsets(bytes(data))
    data[offs[which % len(offs)] + 1] = 0
    frame = Frame(0.0, 1, bytes(data))
    with pytest.raises(MalformedPacket):
        decode_frame(frame)
    assert check_decode([frame]) == 1
    if ops:  # more damage on top: the contract still holds
        check_decode([Frame(0.0, 1, mutate(bytes(data), ops))])


@FUZZ
@given(idx=st.sampled_from(IPV6_FRAMES), extra=st.integers(1, 65535))
def test_decode_ipv6_payload_length_enlarged(idx, extra):
    data = bytearray(REAL[idx].data)
    plen = struct.unpack("!H", data[18:20])[0]
    struct.pack_into("!H", data, 18, min(plen + extra, 0xFFFF))
    check_decode([Frame(0.0, 1, bytes(data))])


SOURCES = ["fe80::1234", "::", "2001:db8::5", "ff02::1", "::1"]
DESTS = ["ff02::1", "ff02::2", "ff02::16", "ff02::1:ff00:1234", "fe80::1"]


@FUZZ
@given(t=st.integers(128, 143), code=st.integers(0, 255), body=st.binary(max_size=120),
       src=st.sampled_from(SOURCES), dst=st.sampled_from(DESTS), hlim=st.sampled_from([1, 64, 255]),
       hbh=st.booleans(), pad=st.integers(0, 30))
def test_decode_icmpv6_128_to_143_with_random_bodies(t, code, body, src, dst, hlim, hbh, pad):
    ip = IPv6(src=src, dst=dst, hlim=hlim)
    if hbh:  # MLD goes behind a Hop-by-Hop Router Alert (RFC 3810 5)
        ip = ip / IPv6ExtHdrHopByHop(options=[RouterAlert()])
    pkt = Ether(src="02:00:00:00:12:34", dst="33:33:00:00:00:01") / ip / ICMPv6Unknown(
        type=t, code=code, msgbody=body)
    raw = bytes(pkt) + b"\0" * pad
    assert raw[14 + 40 + (8 if hbh else 0)] == t
    check_decode([Frame(0.0, 1, raw)])


# Well-formed ND: must never be called malformed, with or without Ethernet padding
MAC = "02:00:00:00:12:34"
nd_options = st.lists(st.sampled_from([
    ICMPv6NDOptSrcLLAddr(lladdr=MAC),
    ICMPv6NDOptDstLLAddr(lladdr="02:00:00:00:99:99"),
    ICMPv6NDOptPrefixInfo(prefix="2001:db8:1::"),
    ICMPv6NDOptMTU(mtu=1500),
    ICMPv6NDOptRDNSS(dns=["2001:db8::53", "2001:db8::54"]),
]), max_size=4)
nd_messages = st.sampled_from([
    (ICMPv6ND_RS(), "rs"),
    (ICMPv6ND_RA(), "ra"),
    (ICMPv6ND_NS(tgt="fe80::1234"), "traffic"),
    (ICMPv6ND_NA(tgt="fe80::1234", S=1, R=0), "ns"),
    (ICMPv6ND_NA(tgt="fe80::1234", S=0, R=1), "na"),
])


@FUZZ
@given(msg=nd_messages, opts=nd_options, pad=st.binary(max_size=40))
def test_decode_well_formed_nd_is_never_malformed(msg, opts, pad):
    layer, technique = msg
    pkt = Ether(src=MAC, dst="33:33:00:00:00:01") / IPv6(src="fe80::1234", dst="ff02::1", hlim=255) / layer
    for o in opts:
        pkt = pkt / o
    frame = Frame(0.0, 1, bytes(pkt) + pad)  # trailing bytes past the IPv6 payload: link padding
    decoded = decode_frame(frame)
    assert decoded.invalid is None
    assert [s.technique for s in decoded.sightings] == [technique]
    assert decoded.sightings[0].address == "fe80::1234"
    assert check_decode([frame]) == 0


# -- explicit regressions -----------------------------------------------------

def _na(**kw) -> bytes:
    return bytes(Ether(src=MAC, dst="33:33:00:00:00:01")
                 / IPv6(src="fe80::1234", dst="ff02::1", hlim=255)
                 / ICMPv6ND_NA(tgt="fe80::1234", R=0, S=0, O=1, **kw)
                 / ICMPv6NDOptDstLLAddr(lladdr=MAC))


def test_na_with_option_of_length_zero_is_malformed():
    raw = bytearray(_na())
    opt = 14 + 40 + 24
    assert raw[opt] == 2 and raw[opt + 1] == 1
    raw[opt + 1] = 0
    with pytest.raises(MalformedPacket, match="length 0"):
        decode_frame(Frame(0.0, 1, bytes(raw)))
    analysis = DiscoveryAnalysis()
    assert analysis.feed(Frame(0.0, 1, bytes(raw))) == []
    assert analysis.malformed == 1 and len(analysis.book) == 0


@pytest.mark.parametrize("fix_plen", [False, True], ids=["frame-cut", "plen-6"])
def test_na_cut_to_6_bytes_of_icmpv6_is_malformed(fix_plen):
    raw = bytearray(_na()[: 14 + 40 + 6])
    if fix_plen:
        struct.pack_into("!H", raw, 18, 6)
    with pytest.raises(MalformedPacket):
        decode_frame(Frame(0.0, 1, bytes(raw)))
    analysis = DiscoveryAnalysis()
    analysis.feed(Frame(0.0, 1, bytes(raw)))
    assert analysis.malformed == 1 and len(analysis.book) == 0


@pytest.mark.parametrize("with_slla", [False, True])
@pytest.mark.parametrize("padding", [b"\0" * 10, b"\0" * 46, b"\xaa" * 4])
def test_rs_followed_by_ethernet_padding_is_not_malformed(with_slla, padding):
    pkt = Ether(src=MAC, dst="33:33:00:00:00:02") / IPv6(src="fe80::1234", dst="ff02::2", hlim=255) / ICMPv6ND_RS()
    if with_slla:
        pkt = pkt / ICMPv6NDOptSrcLLAddr(lladdr=MAC)
    raw = bytes(pkt)
    plen = struct.unpack("!H", raw[18:20])[0]
    assert len(raw) == 14 + 40 + plen  # so everything appended is beyond the payload length
    frame = Frame(5.0, 1, raw + padding)
    decoded = decode_frame(frame)
    assert decoded.invalid is None
    assert [(s.technique, s.mac, s.address) for s in decoded.sightings] == [("rs", MAC, "fe80::1234")]
    analysis = DiscoveryAnalysis()
    analysis.feed(frame)
    assert analysis.malformed == 0
    (host,) = analysis.book.hosts()
    assert host.mac == MAC and "rs" in host.seen_by and host.link_local == "fe80::1234"
