"""Checksum verdicts: exact, per packet, on generated captures with known faults
(tests/vxlan_gen.py), in every capture format, and on the real captures in pcaps/."""

from __future__ import annotations

import json
import struct
import subprocess
from collections import Counter

import pytest

from tests.conftest import PCAPS, require_tools
from tests.vxlan_gen import Case, all_cases, shuffled, write_pcap, write_pcapng
from v6diag.checksum.tally import ChecksumTally
from v6diag.checksum.verify import DEFAULT_PORTS, KINDS, verify
from v6diag.core.capture import CaptureReader

CASES = shuffled(all_cases())


def expected_counts(cases: list[Case]) -> Counter:
    c = Counter()
    for case in cases:
        for k in case.flags | case.notes:
            c[k] += 1
    return c


def tally_file(path, chunk=1 << 22, ports=DEFAULT_PORTS):
    t = ChecksumTally(tuple(ports))
    rows = []
    t.on_flagged = rows.append
    reader = CaptureReader(str(path), chunk_size=chunk)
    for batch in reader.batches():
        t.add_batch(batch)
    assert reader.problem is None
    return t, rows


def test_reference_verifier_gives_every_case_its_label():
    for case in CASES:
        data = case.data[: case.snaplen] if case.snaplen else case.data
        v = verify(data, 1)
        assert ({f.kind for f in v.flags}, set(v.notes), v.vxlan) == (case.flags, case.notes, case.vxlan), case.label


@pytest.mark.parametrize("fmt", ["pcap-le-us", "pcap-be-ns", "pcapng"])
@pytest.mark.parametrize("chunk", [1 << 22, 3000])
def test_every_packet_gets_its_exact_verdict_in_every_format(tmp_path, fmt, chunk):
    path = tmp_path / "faults.cap"
    if fmt == "pcapng":
        write_pcapng(path, CASES)
    else:
        write_pcap(path, CASES, nanos=fmt.endswith("ns"), endian="<" if "-le-" in fmt else ">")
    t, rows = tally_file(path, chunk)
    assert t.packets == len(CASES)
    assert t.vxlan_packets == sum(c.vxlan for c in CASES)
    assert +t.counts == expected_counts(CASES)
    flagged: dict[int, set] = {}
    for r in rows:
        flagged.setdefault(r.index, set()).add(r.kind)
    assert flagged == {i: c.flags for i, c in enumerate(CASES) if c.flags}
    assert [r.index for r in rows] == sorted(r.index for r in rows)  # capture order


def sll(eth: bytes, v2: bool) -> bytes:
    """Re-wrap an untagged Ethernet frame as Linux cooked capture v1/v2."""
    proto, payload = eth[12:14], eth[14:]
    if v2:
        return proto + b"\0\0" + struct.pack("!IHBB", 3, 1, 0, 6) + eth[6:12] + b"\0\0" + payload
    return struct.pack("!HHH", 0, 1, 6) + eth[6:12] + b"\0\0" + proto + payload


@pytest.mark.parametrize("v2", [False, True], ids=["SLL", "SLL2"])
def test_linux_cooked_captures_give_the_same_verdicts(tmp_path, v2):
    plain = [c for c in CASES if c.data[12:14] in (b"\x08\x00", b"\x86\xdd") and not c.snaplen]
    path = tmp_path / "cooked.pcap"
    with open(path, "wb") as f:
        f.write(struct.pack("<IHHiIII", 0xA1B2C3D4, 2, 4, 0, 0, 262144, 276 if v2 else 113))
        for i, c in enumerate(plain):
            d = sll(c.data, v2)
            f.write(struct.pack("<IIII", 1700000000, i, len(d), len(d)) + d)
    t, _ = tally_file(path)
    assert +t.counts == expected_counts(plain)


def test_inner_ethernet_padding_and_trailers_never_cause_false_alarms():
    padded = [c for c in CASES if c.label in ("inner frame padded to 60", "clean o4 i4 udp 4789")]
    assert padded
    for c in padded:
        assert verify(c.data, 1).notes == ["clean"]


def test_other_ports_need_port():
    case = next(c for c in CASES if c.flags == {"outer_udp_bad"})
    data = bytearray(case.data)
    off = data.find(struct.pack("!H", 4789)) if struct.pack("!H", 4789) in data else data.find(struct.pack("!H", 8472))
    data[off : off + 2] = struct.pack("!H", 9999)
    assert not verify(bytes(data), 1).vxlan
    assert {f.kind for f in verify(bytes(data), 1, (4789, 8472, 9999)).flags} == {"outer_udp_bad"}


# -- the real captures in pcaps/ (see pcaps/README.md) --------------------------

def test_real_sender_capture_with_offload_on_is_all_partial_never_bad():
    t, _ = tally_file(PCAPS / "vxlan-offload-on.pcap")
    assert t.vxlan_packets > 20 and t.bad_total() == 0
    assert t.partial_total() > 0
    assert {k for k in KINDS if t.counts[k]} <= {"outer_udp_partial", "inner_tcp_partial", "inner_udp_partial"}


def test_real_capture_with_offload_off_is_clean():
    t, rows = tally_file(PCAPS / "vxlan-offload-off.pcap")
    assert t.counts["clean"] == t.vxlan_packets > 20 and rows == []


def test_real_receiver_capture_has_exactly_the_injected_bad_packets():
    truth = json.loads((PCAPS / "vxlan.truth.json").read_text())
    t, rows = tally_file(PCAPS / "vxlan-bad-outer-udp.pcap")
    assert t.counts["outer_udp_bad"] == truth["injected_bad_outer_udp"] == truth["receiver_in_csum_errors"]
    assert t.bad_total() == t.counts["outer_udp_bad"] and {r.kind for r in rows} == {"outer_udp_bad"}


# -- cross-check with tshark ------------------------------------------------------

TSHARK_BAD = "0"  # Wireshark's PROTO_CHECKSUM_E_BAD (epan/proto.h)


def test_tshark_agrees_once_partial_is_counted_as_bad(tmp_path):
    """tshark cannot tell partial from bad, and judges the outer UDP checksum on
    the bytes as captured (not as they leave the NIC with LCO). Otherwise every
    verdict must match, packet by packet and layer by layer."""
    require_tools("tshark")
    cases = [c for c in CASES if c.vxlan and "unverifiable" not in c.notes]
    path = tmp_path / "x.pcap"
    write_pcap(path, cases)
    out = subprocess.run(
        ["tshark", "-r", str(path), "-o", "ip.check_checksum:TRUE", "-o", "udp.check_checksum:TRUE",
         "-o", "tcp.check_checksum:TRUE", "-d", "udp.port==8472,vxlan", "-T", "fields", "-E", "separator=|",
         "-e", "ip.checksum.status", "-e", "udp.checksum.status", "-e", "tcp.checksum.status",
         "-e", "icmp.checksum.status", "-e", "icmpv6.checksum.status"],
        capture_output=True, text=True, check=True).stdout.splitlines()
    assert len(out) == len(cases)
    for case, line in zip(cases, out):
        ip, udp, tcp, icmp, icmp6 = (f.split(",") if f else [] for f in line.split("|"))
        o_v4, i_v4 = " o4 " in case.label, " i4 " in case.label  # ip.checksum.status: one per IPv4 header
        f = case.flags
        inner_partial = bool(f & {"inner_tcp_partial", "inner_udp_partial"})
        outer_udp = udp[0] == TSHARK_BAD
        want_outer = bool(f & {"outer_udp_bad", "outer_udp_partial"}) or (
            inner_partial and "outer_udp_zero" not in case.notes and "outer_udp6_zero" not in case.notes)
        assert outer_udp == want_outer, (case.label, line)
        if o_v4:
            assert (ip[0] == TSHARK_BAD) == ("outer_ip_bad" in f), (case.label, line)
        if i_v4 and ip:
            assert (ip[-1] == TSHARK_BAD) == ("inner_ip_bad" in f), (case.label, line)
        if tcp:
            assert (tcp[0] == TSHARK_BAD) == bool(f & {"inner_tcp_bad", "inner_tcp_partial"}), (case.label, line)
        if len(udp) == 2 and "zero" not in case.label:
            inner_bad = udp[1] in (TSHARK_BAD, "4")  # 4: illegal (zero over IPv6)
            assert inner_bad == bool(f & {"inner_udp_bad", "inner_udp_partial"}), (case.label, line)
        if icmp:
            assert (icmp[0] == TSHARK_BAD) == ("inner_icmp_bad" in f), (case.label, line)
        if icmp6:
            assert (icmp6[0] == TSHARK_BAD) == ("inner_icmpv6_bad" in f), (case.label, line)


# -- the command line --------------------------------------------------------------

def test_cli_json_lists_every_flagged_packet_and_exits_1_on_bad(tmp_path, v6diag_cmd):
    path = tmp_path / "faults.pcap"
    write_pcap(path, CASES)
    r = subprocess.run([*v6diag_cmd, "checksum", str(path), "--json"], capture_output=True, text=True)
    assert r.returncode == 1, r.stderr
    report = json.loads(r.stdout)
    assert {"flagged", "packets", "vxlan_packets", "counts", "flows", "findings"} <= set(report)
    assert set(KINDS) <= set(report["counts"])
    assert sum(1 for row in report["flagged"]) == sum(len(c.flags) for c in CASES)
    assert {row["kind"] for row in report["flagged"]} == set(KINDS)
    row = report["flagged"][0]
    assert set(row) == {"index", "kind", "time", "outer_src", "outer_dst", "dport", "vni", "field", "expected"}


def test_cli_clean_capture_exits_0_and_stdin_works(v6diag_cmd):
    data = (PCAPS / "vxlan-offload-off.pcap").read_bytes()
    r = subprocess.run([*v6diag_cmd, "--json", "checksum", "-"], input=data, capture_output=True)
    assert r.returncode == 0, r.stderr
    assert json.loads(r.stdout)["flagged"] == []


def test_cli_human_output_dissects_flagged_packets(v6diag_cmd):
    r = subprocess.run([*v6diag_cmd, "checksum", str(PCAPS / "vxlan-bad-outer-udp.pcap"), "--detail", "2"],
                       capture_output=True, text=True)
    assert r.returncode == 1
    assert "outer_udp_bad" in r.stdout and "###[ VXLAN ]###" in r.stdout and "should be 0x" in r.stdout
    assert r.stdout.count("###[ Ethernet ]###") >= 2  # outer and inner of the first flagged packet


@pytest.mark.parametrize("args, code, words", [
    (("checksum",), 2, "give a capture FILE"),
    (("checksum", "a.pcap", "--pcap", "b.pcap"), 2, "give the capture once"),
    (("checksum", "x.pcap", "-i", "lo"), 2, "not both"),
    (("checksum", "/nonexistent.pcap"), 66, "cannot open capture"),
    (("checksum", "-i", "no-such-if0"), 2, "no such interface"),
    (("checksum", str(PCAPS / "discover-lan.pcap"), "--port", "0"), 2, "--port"),
])
def test_cli_bad_input(v6diag_cmd, args, code, words):
    r = subprocess.run([*v6diag_cmd, *args], capture_output=True, text=True)
    assert r.returncode == code, r.stderr
    assert words in r.stderr and "Traceback" not in r.stderr


def test_no_vxlan_is_a_warning_naming_the_ports(v6diag_cmd):
    r = subprocess.run([*v6diag_cmd, "--json", "checksum", str(PCAPS / "discover-lan.pcap")],
                       capture_output=True, text=True)
    assert r.returncode == 0
    f = json.loads(r.stdout)["findings"]
    assert [x["code"] for x in f] == ["no-vxlan"] and "4789, 8472" in f[0]["message"]


def test_cut_off_capture_reports_what_it_read_and_warns(tmp_path, v6diag_cmd):
    data = (PCAPS / "vxlan-bad-outer-udp.pcap").read_bytes()
    cut = tmp_path / "cut.pcap"
    cut.write_bytes(data[: len(data) - 100])
    r = subprocess.run([*v6diag_cmd, "--json", "checksum", str(cut)], capture_output=True, text=True)
    assert "Traceback" not in r.stderr
    report = json.loads(r.stdout)
    assert 0 < report["packets"] < 33
    assert "capture-truncated" in {f["code"] for f in report["findings"]}
