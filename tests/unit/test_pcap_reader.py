"""CaptureReader / CaptureWriter against capture files built byte by byte here.

The frames of pcaps/discover-lan.pcap are re-encoded with `struct` in every
variant the reader claims to read (pcap both byte orders, µs and ns; pcapng both
byte orders, EPB/SPB/obsolete PB, several sections and interfaces), so a reader
bug cannot hide behind a writer bug: the encoders below follow the format specs
(draft-ietf-opsawg-pcap, draft-ietf-opsawg-pcapng) and nothing in v6diag.
"""

from __future__ import annotations

import struct
import tracemalloc

import pytest

from tests.conftest import PCAPS
from v6diag.core.dissect import ipv6_of
from v6diag.core.link import mac_text
from v6diag.discover.decode import decode_frame
from v6diag.core.errors import EXIT_INPUT, DataError, InputError
from v6diag.core.frames import Frame
from v6diag.core.capture import CHUNK, CaptureReader, CaptureWriter

LAN_PCAP = PCAPS / "discover-lan.pcap"
ETH_IPV6 = 0x86DD


@pytest.fixture(scope="module")
def original() -> list[Frame]:
    reader = CaptureReader(str(LAN_PCAP))
    frames = list(reader)
    assert reader.problem is None
    assert len(frames) == 501 and {f.linktype for f in frames} == {1}
    return frames


def read_all(path) -> tuple[CaptureReader, list[Frame]]:
    reader = CaptureReader(str(path))
    return reader, list(reader)


def usec(ts: float) -> int:
    """The capture's own µs timestamp (the originals are µs-exact)."""
    return round(ts * 1e6)


def assert_same_frames(got: list[Frame], want: list[Frame], ts: bool = True) -> None:
    assert len(got) == len(want)
    for i, (g, w) in enumerate(zip(got, want)):
        assert g.data == w.data, i
        assert g.linktype == w.linktype, i
        assert g.wire_len == w.wire_len, i
        assert g.outgoing is False, i
        if ts:
            assert g.ts == pytest.approx(w.ts, abs=1e-6), i


# -- encoders (independent of v6diag) ------------------------------------------

def pcap_bytes(frames, endian: str = "<", nanos: bool = False, linktype: int = 1,
               snaplen: int = 262144) -> bytes:
    magic = 0xA1B23C4D if nanos else 0xA1B2C3D4
    out = [struct.pack(endian + "IHHiIII", magic, 2, 4, 0, 0, snaplen, linktype)]
    for f in frames:
        sec, sub = divmod(usec(f.ts), 1_000_000)
        if nanos:
            sub *= 1000
        out.append(struct.pack(endian + "IIII", sec, sub, len(f.data), f.wire_len or len(f.data)))
        out.append(f.data)
    return b"".join(out)


def pad4(b: bytes) -> bytes:
    return b + b"\0" * (-len(b) % 4)


def ng_block(e: str, btype: int, body: bytes) -> bytes:
    body = pad4(body)
    blen = 12 + len(body)
    return struct.pack(e + "II", btype, blen) + body + struct.pack(e + "I", blen)


def ng_option(e: str, code: int, value: bytes) -> bytes:
    return struct.pack(e + "HH", code, len(value)) + pad4(value)


def ng_shb(e: str) -> bytes:
    # block type 0x0A0D0D0A is the same in both byte orders; BOM says which one
    return ng_block(e, 0x0A0D0D0A, struct.pack(e + "IHHq", 0x1A2B3C4D, 1, 0, -1))


def ng_idb(e: str, linktype: int = 1, name: str | None = None, tsresol: int | None = None,
           snaplen: int = 0) -> bytes:
    opts = b""
    if name is not None:
        opts += ng_option(e, 2, name.encode())
    if tsresol is not None:
        opts += ng_option(e, 9, bytes([tsresol]))
    if opts:
        opts += ng_option(e, 0, b"")
    return ng_block(e, 1, struct.pack(e + "HHI", linktype, 0, snaplen) + opts)


def ticks(f: Frame, tsresol: int | None) -> int:
    if tsresol is None or tsresol == 6:
        return usec(f.ts)
    if tsresol == 9:
        return usec(f.ts) * 1000
    assert tsresol & 0x80
    return round(f.ts * 2 ** (tsresol & 0x7F))


def ng_epb(e: str, f: Frame, ifid: int = 0, tsresol: int | None = None) -> bytes:
    t = ticks(f, tsresol)
    head = struct.pack(e + "IIIII", ifid, t >> 32, t & 0xFFFFFFFF, len(f.data), f.wire_len or len(f.data))
    # an epb_flags option after the data: the reader must not take it as data
    return ng_block(e, 6, head + pad4(f.data) + ng_option(e, 2, struct.pack(e + "I", 1)) + ng_option(e, 0, b""))


def ng_spb(e: str, f: Frame) -> bytes:
    return ng_block(e, 3, struct.pack(e + "I", f.wire_len or len(f.data)) + f.data)


def ng_pb(e: str, f: Frame, ifid: int = 0) -> bytes:
    t = usec(f.ts)
    head = struct.pack(e + "HHIIII", ifid, 0, t >> 32, t & 0xFFFFFFFF, len(f.data), f.wire_len or len(f.data))
    return ng_block(e, 2, head + f.data)


def write(tmp_path, name: str, data: bytes):
    p = tmp_path / name
    p.write_bytes(data)
    return p


# -- classic pcap ------------------------------------------------------------

@pytest.mark.parametrize("endian,nanos", [(">", False), ("<", True), (">", True), ("<", False)],
                         ids=["be-us", "le-ns", "be-ns", "le-us"])
def test_pcap_byte_orders_and_resolutions(tmp_path, original, endian, nanos):
    data = pcap_bytes(original, endian, nanos)
    magic = struct.unpack(endian + "I", data[:4])[0]
    assert magic == (0xA1B23C4D if nanos else 0xA1B2C3D4)
    reader, frames = read_all(write(tmp_path, "x.pcap", data))
    assert reader.problem is None
    assert reader.count == len(original)
    assert_same_frames(frames, original)


def test_pcap_nanosecond_fraction_is_kept(tmp_path, original):
    f = original[0]
    sec = int(f.ts)
    data = struct.pack("<IHHiIII", 0xA1B23C4D, 2, 4, 0, 0, 65535, 1)
    data += struct.pack("<IIII", sec, 999_999_999, len(f.data), len(f.data)) + f.data
    _, frames = read_all(write(tmp_path, "ns.pcap", data))
    assert frames[0].ts == pytest.approx(sec + 0.999999999, abs=1e-6)
    assert frames[0].ts > sec + 0.999999  # the last 3 digits are not dropped


def test_pcap_linktype_fcs_bits_are_not_part_of_the_linktype(tmp_path, original):
    # LinkType field: FCS len in the top 4 bits, P ("FCS length present") at 0x04000000,
    # link-layer type in the low 16 bits (libpcap LT_LINKTYPE)
    lt = (4 << 28) | 0x04000000 | 1
    reader, frames = read_all(write(tmp_path, "fcs.pcap", pcap_bytes(original[:3], linktype=lt)))
    assert [f.linktype for f in frames] == [1, 1, 1]


# -- pcapng -------------------------------------------------------------------

@pytest.mark.parametrize("e", ["<", ">"], ids=["le", "be"])
@pytest.mark.parametrize("tsresol", [9, 6, None, 0x80 | 20], ids=["ns", "us", "default", "2^-20"])
def test_pcapng_epb(tmp_path, original, e, tsresol):
    data = ng_shb(e) + ng_idb(e, name="lan0", tsresol=tsresol)
    data += b"".join(ng_epb(e, f, tsresol=tsresol) for f in original)
    reader, frames = read_all(write(tmp_path, "x.pcapng", data))
    assert reader.problem is None
    assert reader.interface_names == ["lan0"]
    assert_same_frames(frames, original)


def test_pcapng_big_endian_header_really_is_big_endian(original):
    data = ng_shb(">") + ng_idb(">", name="lan0", tsresol=9)
    assert data[8:12] == bytes.fromhex("1a2b3c4d")  # BOM as written by a big-endian host
    assert data[4:8] == struct.pack(">I", 28)


@pytest.mark.parametrize("e", ["<", ">"], ids=["le", "be"])
def test_pcapng_simple_packet_blocks(tmp_path, original, e):
    data = ng_shb(e) + ng_idb(e, name="lan0")
    data += b"".join(ng_spb(e, f) for f in original)
    reader, frames = read_all(write(tmp_path, "spb.pcapng", data))
    assert reader.problem is None
    assert reader.interface_names == ["lan0"]
    assert_same_frames(frames, original, ts=False)
    assert {f.ts for f in frames} == {0.0}  # an SPB carries no timestamp


def test_pcapng_simple_packet_block_cut_by_snaplen_excludes_padding(tmp_path, original):
    # SPB data is min(original length, IDB snaplen), padded to 32 bits: the padding
    # after a 61-byte packet is not packet data
    f = original[0]
    assert len(f.data) > 61
    e = "<"
    spb = ng_block(e, 3, struct.pack(e + "I", len(f.data)) + f.data[:61])
    data = ng_shb(e) + ng_idb(e, snaplen=61) + spb
    reader, frames = read_all(write(tmp_path, "snap.pcapng", data))
    assert reader.problem is None
    assert len(frames) == 1
    assert frames[0].data == f.data[:61]
    assert frames[0].wire_len == len(f.data)


def test_pcapng_obsolete_packet_block(tmp_path, original):
    e = "<"
    data = ng_shb(e) + ng_idb(e, name="eth0") + b"".join(ng_pb(e, f) for f in original[:20])
    reader, frames = read_all(write(tmp_path, "pb.pcapng", data))
    assert reader.problem is None
    assert_same_frames(frames, original[:20])


def test_pcapng_two_sections_two_byte_orders_interfaces_renumbered(tmp_path, original):
    first, second = original[:200], original[200:]
    # section 1, little-endian: two interfaces (µs and ns), packets alternate between them
    s1 = ng_shb("<") + ng_idb("<", name="lan0") + ng_idb("<", name="lan1", tsresol=9)
    for i, f in enumerate(first):
        s1 += ng_epb("<", f, ifid=i % 2, tsresol=9 if i % 2 else None)
    # a statistics block and a name resolution block are not packets
    s1 += ng_block("<", 5, struct.pack("<III", 0, 0, 0)) + ng_block("<", 4, struct.pack("<HH", 0, 0))
    # section 2, big-endian: interface ids start again at 0
    s2 = ng_shb(">") + ng_idb(">", name="wan0", tsresol=0x80 | 30)
    s2 += b"".join(ng_epb(">", f, ifid=0, tsresol=0x80 | 30) for f in second)
    reader, frames = read_all(write(tmp_path, "two.pcapng", s1 + s2))
    assert reader.problem is None
    assert reader.interface_names == ["lan0", "lan1", "wan0"]
    assert reader.count == len(original)
    assert_same_frames(frames, original)


def test_pcapng_interface_ids_do_not_leak_into_the_next_section(tmp_path, original):
    e = "<"
    data = ng_shb(e) + ng_idb(e, name="lan0") + ng_idb(e, name="lan1") + ng_epb(e, original[0], ifid=1)
    data += ng_shb(e) + ng_idb(e, name="wan0") + ng_epb(e, original[1], ifid=1)  # no interface 1 here
    reader, frames = read_all(write(tmp_path, "leak.pcapng", data))
    assert [f.data for f in frames] == [original[0].data]
    assert reader.problem and "missing interface" in reader.problem


@pytest.mark.parametrize("name", ["discover-lan.pcapng", "link-up-passive.pcapng"])
def test_bundled_pcapng_from_dumpcap(name):
    reader, frames = read_all(PCAPS / name)
    assert reader.problem is None
    assert reader.interface_names == ["lan0"]
    assert frames and {f.linktype for f in frames} == {1}
    assert reader.count == len(frames)


# -- Linux cooked captures, 802.1Q --------------------------------------------

def ipv6_frames(original, n=40):
    out = [f for f in original if struct.unpack("!H", f.data[12:14])[0] == ETH_IPV6]
    assert len(out) >= n
    return out[:n]


def mac_of(raw: bytes) -> str:
    return ":".join(f"{b:02x}" for b in raw)


def sll(f: Frame, pkttype: int) -> bytes:
    # LINKTYPE_LINUX_SLL: pkttype, ARPHRD_ETHER, addr len, 8-byte addr, protocol
    return struct.pack("!HHH8sH", pkttype, 1, 6, f.data[6:12], ETH_IPV6) + f.data[14:]


def sll2(f: Frame, pkttype: int) -> bytes:
    # LINKTYPE_LINUX_SLL2: protocol, reserved, ifindex, ARPHRD_ETHER, pkttype, addr len, addr
    return struct.pack("!HHIHBB8s", ETH_IPV6, 0, 7, 1, pkttype, 6, f.data[6:12]) + f.data[14:]


@pytest.mark.parametrize("linktype,wrap", [(113, sll), (276, sll2)], ids=["sll", "sll2"])
def test_linux_cooked_captures(tmp_path, original, linktype, wrap):
    src = ipv6_frames(original)
    pkttypes = [(0, 2, 4)[i % 3] for i in range(len(src))]  # unicast-to-us, multicast, outgoing
    cooked = [Frame(f.ts, linktype, wrap(f, t)) for f, t in zip(src, pkttypes)]
    reader, frames = read_all(write(tmp_path, "cooked.pcap", pcap_bytes(cooked, linktype=linktype)))
    assert reader.problem is None
    assert [f.linktype for f in frames] == [linktype] * len(src)
    for f, eth, t in zip(frames, src, pkttypes):
        lh, ip6 = ipv6_of(f)
        assert mac_text(lh.src_mac) == mac_of(eth.data[6:12])
        assert bytes(ip6) == eth.data[14:]
        assert lh.outgoing is (t == 4)


@pytest.mark.parametrize("linktype,wrap", [(113, sll), (276, sll2)], ids=["sll", "sll2"])
def test_cooked_frames_give_the_ethernet_sightings_unless_outgoing(original, linktype, wrap):
    checked = 0
    for eth in ipv6_frames(original, 40):
        want = decode_frame(eth)
        assert decode_frame(Frame(eth.ts, linktype, wrap(eth, 0))).sightings == want.sightings
        if want.sightings:
            checked += 1
            # our own packets (PACKET_OUTGOING) prove nothing about other devices
            assert decode_frame(Frame(eth.ts, linktype, wrap(eth, 4))).sightings == []
    assert checked >= 10


@pytest.mark.parametrize("tags", [[(0x8100, 42)], [(0x88A8, 100), (0x8100, 42)], [(0x9100, 7), (0x8100, 42)]],
                         ids=["dot1q", "qinq", "qinq-9100"])
def test_vlan_tagged_ethernet_still_finds_ipv6(original, tags):
    checked = 0
    for eth in ipv6_frames(original, 40):
        tag_bytes = b"".join(struct.pack("!HH", tpid, vid) for tpid, vid in tags)
        tagged = Frame(eth.ts, 1, eth.data[:12] + tag_bytes + eth.data[12:])
        lh, ip6 = ipv6_of(tagged)
        assert mac_text(lh.src_mac) == mac_of(eth.data[6:12])
        assert bytes(ip6) == eth.data[14:]
        assert decode_frame(tagged).sightings == decode_frame(eth).sightings
        checked += bool(decode_frame(eth).sightings)
    assert checked >= 10


# -- errors -------------------------------------------------------------------

@pytest.mark.parametrize("content", [
    b"",
    b"hello, this is not a capture\nat all\n",
    struct.pack("<IHHi", 0xA1B2C3D4, 2, 4, 0)[:10],  # 10 bytes of a 24-byte pcap header
    struct.pack(">IHHi", 0xA1B23C4D, 2, 4, 0)[:10],
    b"\xd4\xc3",
], ids=["empty", "text", "pcap-head-10", "pcap-be-ns-head-10", "2-bytes"])
def test_not_a_capture_is_an_input_error(tmp_path, content):
    reader = CaptureReader(str(write(tmp_path, "bad.pcap", content)))
    with pytest.raises(InputError) as ei:
        list(reader)
    assert ei.value.exit_code == EXIT_INPUT == 66


def test_pcapng_with_bad_byte_order_magic_is_an_input_error(tmp_path):
    data = struct.pack("<IIIHHq", 0x0A0D0D0A, 28, 0xDEADBEEF, 1, 0, -1) + struct.pack("<I", 28)
    with pytest.raises(InputError) as ei:
        list(CaptureReader(str(write(tmp_path, "bom.pcapng", data))))
    assert ei.value.exit_code == 66


def test_missing_file_and_directory_are_input_errors(tmp_path):
    for path in (tmp_path / "does-not-exist.pcap", tmp_path):
        with pytest.raises(InputError) as ei:
            list(CaptureReader(str(path)))
        assert ei.value.exit_code == 66
        assert str(path) in ei.value.message


def record_offsets(frames) -> list[int]:
    """Byte offset of each record header in pcap_bytes(frames)."""
    offs, pos = [], 24
    for f in frames:
        offs.append(pos)
        pos += 16 + len(f.data)
    return offs


@pytest.mark.parametrize("where", ["mid-data", "mid-header", "after-header"])
def test_pcap_cut_mid_record(tmp_path, original, where):
    frames = original[:50]
    data = pcap_bytes(frames)
    k = 37
    start = record_offsets(frames)[k]
    cut = {"mid-data": start + 16 + 10, "mid-header": start + 7, "after-header": start + 16}[where]
    reader, got = read_all(write(tmp_path, "cut.pcap", data[:cut]))
    assert_same_frames(got, frames[:k])
    assert reader.count == k
    assert reader.problem is not None and "\n" not in reader.problem
    assert "truncated" in reader.problem and f"after {k} packets" in reader.problem


def test_pcap_cut_exactly_between_records_is_not_a_problem(tmp_path, original):
    frames = original[:50]
    data = pcap_bytes(frames)
    reader, got = read_all(write(tmp_path, "even.pcap", data[: record_offsets(frames)[20]]))
    assert_same_frames(got, frames[:20])
    assert reader.problem is None


@pytest.mark.parametrize("endian", ["<", ">"])
def test_pcap_huge_caplen_stops_without_allocating(tmp_path, original, endian):
    frames = original[:3]
    bogus = struct.pack(endian + "IIII", 1, 0, 0xFFFFFFF0, 0xFFFFFFF0) + b"\x00" * 64
    path = write(tmp_path, "huge.pcap", pcap_bytes(frames, endian) + bogus + pcap_bytes(original[3:6], endian)[24:])
    tracemalloc.start()
    try:
        reader, got = read_all(path)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert_same_frames(got, frames)
    assert reader.problem is not None and "corrupt record 3" in reader.problem
    assert str(0xFFFFFFF0) in reader.problem
    assert peak < CHUNK + 1024 * 1024  # one read chunk, not the 4 GiB the record claims


@pytest.mark.parametrize("blen", [0xFFFFFFF0, 17 * 1024 * 1024 + 4, 8])
def test_pcapng_huge_or_tiny_block_length_stops_without_allocating(tmp_path, original, blen):
    e = "<"
    good = ng_shb(e) + ng_idb(e) + b"".join(ng_epb(e, f) for f in original[:3])
    path = write(tmp_path, "huge.pcapng", good + struct.pack(e + "II", 6, blen) + b"\0" * 64)
    tracemalloc.start()
    try:
        reader, got = read_all(path)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert_same_frames(got, original[:3])
    assert reader.problem is not None and f"length {blen}" in reader.problem
    assert peak < CHUNK + 1024 * 1024  # one read chunk, not the 4 GiB the record claims


def test_pcapng_block_length_not_a_multiple_of_4(tmp_path, original):
    e = "<"
    good = ng_shb(e) + ng_idb(e) + b"".join(ng_epb(e, f) for f in original[:5])
    bad = bytearray(ng_epb(e, original[5]))
    struct.pack_into(e + "I", bad, 4, len(bad) - 2)  # 2 short of the real length: not /4
    reader, got = read_all(write(tmp_path, "odd.pcapng", good + bytes(bad) + ng_epb(e, original[6])))
    assert_same_frames(got, original[:5])
    assert reader.problem is not None and "corrupt pcapng block" in reader.problem
    assert f"length {len(bad) - 2}" in reader.problem


@pytest.mark.parametrize("cut", [3, 6, 30], ids=["in-type", "in-length", "in-body"])
def test_pcapng_cut_mid_block(tmp_path, original, cut):
    e = "<"
    good = ng_shb(e) + ng_idb(e, name="lan0") + b"".join(ng_epb(e, f) for f in original[:5])
    reader, got = read_all(write(tmp_path, "cut.pcapng", good + ng_epb(e, original[5])[:cut]))
    assert_same_frames(got, original[:5])
    assert reader.problem is not None and "truncated" in reader.problem
    assert "after 5 packets" in reader.problem


def test_pcapng_epb_caplen_past_its_block(tmp_path, original):
    e = "<"
    f = original[0]
    epb = bytearray(ng_epb(e, f))
    struct.pack_into(e + "I", epb, 8 + 12, 4000)  # caplen 4000 in a ~100-byte block
    path = write(tmp_path, "cap.pcapng", ng_shb(e) + ng_idb(e) + bytes(epb))
    with pytest.raises(DataError) as ei:  # damaged at its first packet: nothing to analyse (exit 65)
        read_all(path)
    assert "cut short" in ei.value.message and ei.value.exit_code == 65
    # one good packet first: analysed, the damage after it reported
    reader, got = read_all(write(tmp_path, "cap2.pcapng", ng_shb(e) + ng_idb(e) + ng_epb(e, f) + bytes(epb)))
    assert len(got) == 1 and reader.problem is not None and "cut short" in reader.problem


# -- writer -------------------------------------------------------------------

def test_writer_round_trip_is_exact(tmp_path, original):
    path = tmp_path / "out.pcap"
    with CaptureWriter(str(path)) as w:
        for f in original:
            w.write(f)
    reader, got = read_all(path)
    assert reader.problem is None
    assert got == original  # same bytes, linktype, wire length and µs timestamp
    # little-endian µs records, as in the original file: the records are byte-identical
    assert path.read_bytes()[24:] == LAN_PCAP.read_bytes()[24:]


def test_writer_round_trip_other_linktype_and_fractions(tmp_path, original):
    src = ipv6_frames(original, 10)
    frames = [Frame(1700000000 + i + 0.9999996, 113, sll(f, 0)) for i, f in enumerate(src)]
    frames.append(Frame(1700000100.123456789, 113, sll(src[0], 4), wire_len=500))
    path = tmp_path / "sll.pcap"
    with CaptureWriter(str(path), linktype=113) as w:
        for f in frames:
            w.write(f)
    reader, got = read_all(path)
    assert reader.problem is None
    assert [g.data for g in got] == [f.data for f in frames]
    assert {g.linktype for g in got} == {113}
    assert [g.wire_len for g in got] == [len(f.data) for f in frames[:-1]] + [500]
    for g, f in zip(got, frames):
        assert g.ts == pytest.approx(f.ts, abs=1e-6)
        assert int(g.ts) == int(f.ts)  # µs rounding never carries into the next second


@pytest.mark.parametrize("name", ["discover-lan.pcap", "discover-lan.pcapng", "link-up-passive.pcapng"])
@pytest.mark.parametrize("chunk", [1, 37, 4096])
def test_records_split_across_read_chunks_come_out_whole(name, chunk):
    """Records and blocks straddling the reader's chunk boundary are reassembled."""
    whole = list(CaptureReader(str(PCAPS / name)))
    reader = CaptureReader(str(PCAPS / name), chunk_size=chunk)
    pieces = list(reader)
    assert reader.problem is None
    assert [(f.data, f.ts, f.linktype) for f in pieces] == [(f.data, f.ts, f.linktype) for f in whole]
