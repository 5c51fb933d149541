"""`v6diag checksum` on a real VXLAN tunnel between two network namespaces
(tests/vxlan_lab.py): what TX checksum offload looks like from the sender, what
it looks like with offload off, and what a really wrong checksum does to the
receiver (its UDP InCsumErrors must agree)."""

from __future__ import annotations

import json
import re
import signal
import subprocess
import threading

import pytest

from tests.conftest import require_root, require_tools
from tests.lab import v6diag_command, wait_until
from tests.vxlan_lab import VxlanLab, run_live_checksum
from v6diag.core.capture import CaptureReader

PARTIAL = ("outer_udp_partial", "inner_tcp_partial", "inner_udp_partial")


def bad(counts: dict) -> int:
    return sum(v for k, v in counts.items() if k.endswith("_bad"))


@pytest.fixture(params=[(8472, 4), (4789, 6)], ids=["8472-ipv4-underlay", "4789-ipv6-underlay"])
def lab(request, build_lab):
    """A fresh tunnel per test: offload settings and counters start clean."""
    require_root()
    require_tools("ip", "ethtool", "tcpdump", "ping")
    return build_lab(VxlanLab(*request.param))


def injected_frames(path) -> int:
    """Frames in a capture that lab.inject_bad_outer_udp sent, known by their inner
    payload ("bad outer checksum N"): once all are there, tcpdump has written
    everything before. (Not by outer source port: the tunnel's own packets take
    hash-chosen source ports that can fall on the injected ones.)"""
    return sum(b"bad outer checksum " in f.data for f in CaptureReader(str(path)))


def test_offload_on_shows_partial_confirmed_by_the_kernel_never_bad(lab):
    report = run_live_checksum(lab, "a", lab.traffic)
    counts = report["counts"]
    partial = sum(counts[k] for k in PARTIAL)
    assert partial > 0 and bad(counts) == 0, counts
    assert report["vxlan_packets"] > 20
    # PACKET_AUXDATA: the kernel says these skbs are CHECKSUM_PARTIAL
    assert report["live"]["kernel_csum_not_ready"] == partial
    assert all(row["kernel_csum_not_ready"] for row in report["flagged"])
    codes = {f["code"] for f in report["findings"]}
    assert "checksum-offload-pending" in codes and "checksum-bad" not in codes
    assert "offload-partial-dominates" in codes
    # both layers offload here: inner checksums are vx0's, the outer UDP one u0's (the underlay)
    fix = next(f["fix"] for f in report["findings"] if f["code"] == "offload-partial-dominates")
    assert fix == "ethtool -K vx0 tx-checksum-ip-generic off; ethtool -K u0 tx-checksum-ip-generic off"
    assert report["live"]["offload"]["tx-checksum-ip-generic"] is True
    # what this host sent, apart from what it received (the peer's answers)
    assert report["live"]["sent"]["partial_packets"] > 0 and report["live"]["received"]["vxlan_packets"] > 0


def test_the_fix_follows_the_layer_whose_offload_is_on(lab):
    """vx0's offload off, the underlay u0's on: the inner checksums are complete,
    the outer UDP one is left partial by u0; the fix names u0 alone, and turning
    it off makes everything clean (measured, not assumed). The peer b offloads
    nothing, so what comes back is clean too."""
    lab.set_offload("b", False)
    lab.set_offload("a", False, ("vx0",))
    report = run_live_checksum(lab, "a", lab.traffic)
    counts = report["counts"]
    assert counts["inner_tcp_partial"] == counts["inner_udp_partial"] == 0 and counts["outer_udp_partial"] > 0
    fix = next(f["fix"] for f in report["findings"] if f["code"] == "offload-partial-dominates")
    assert fix == "ethtool -K u0 tx-checksum-ip-generic off"
    lab.set_offload("a", False, ("u0",))
    after = run_live_checksum(lab, "a", lab.traffic)
    assert sum(after["counts"][k] for k in PARTIAL) == 0 and after["counts"]["clean"] == after["vxlan_packets"]


def test_the_vxlan_device_itself_is_refused_naming_the_underlay(lab, v6diag_cmd):
    r = subprocess.run(["ip", "netns", "exec", lab.a, *v6diag_cmd, "checksum", "-i", "vx0", "-d", "1"],
                       capture_output=True, text=True)
    assert r.returncode == 2 and "VXLAN device itself" in r.stderr and "-i u0" in r.stderr, r.stderr


def test_offload_off_is_clean(lab):
    lab.set_offload("a", False)
    lab.set_offload("b", False)
    report = run_live_checksum(lab, "a", lab.traffic)
    counts = report["counts"]
    assert counts["clean"] == report["vxlan_packets"] > 20, counts
    assert report["flagged"] == []
    assert report["live"]["offload"]["tx-checksum-ip-generic"] is False


def test_wrong_outer_checksum_is_bad_and_the_receiver_dropped_as_many(lab):
    before = lab.in_csum_errors("b")
    report = run_live_checksum(lab, "b", lambda: lab.inject_bad_outer_udp(7))
    after = lab.in_csum_errors("b")
    family = "ipv4" if lab.underlay == 4 else "ipv6"
    assert report["counts"]["outer_udp_bad"] == 7
    assert bad(report["counts"]) == 7
    assert after[family] - before[family] == 7  # the kernel agrees: 7 dropped
    assert report["live"]["udp_in_csum_errors"][family] == 7
    codes = {f["code"] for f in report["findings"]}
    assert {"checksum-bad", "udp-incsumerrors"} <= codes
    # the kernel's own drop reason (skb:kfree_skb through tracefs) says the same, host-wide
    assert report["live"]["kernel_drops"] is not None, "tracefs with drop reasons is on this kernel"
    assert report["live"]["kernel_drops"].get("UDP_CSUM", 0) >= 7
    assert "kernel-dropped-bad-checksums" in codes


def test_tcpdump_capture_of_the_same_traffic_gets_the_same_verdicts(lab, tmp_path, v6diag_cmd):
    """Capture with tcpdump on the receiver while 7 bad frames arrive among real
    traffic; read the file back. With offload off on both ends there is nothing
    partial, so tcpdump (which calls partial checksums bad too) must count the
    same 7."""
    path = tmp_path / "rx.pcap"
    dump = subprocess.Popen(["ip", "netns", "exec", lab.b, "tcpdump", "-i", "u0", "--immediate-mode", "-U", "-s", "0", "-w", str(path),
                             "udp"], stderr=subprocess.PIPE, text=True)
    assert "listening" in dump.stderr.readline()
    lab.set_offload("a", False)
    lab.set_offload("b", False)
    lab.traffic(datagrams=5, tcp_bytes=5000)
    lab.inject_bad_outer_udp(7)
    try:  # the injected frames come last: once all 7 are written, so is the traffic
        wait_until(lambda: path.exists() and injected_frames(path) == 7, "tcpdump to write the 7 injected frames")
    finally:
        dump.terminate()
        dump.wait(timeout=10)
    r = subprocess.run([*v6diag_cmd, "checksum", str(path), "--json"], capture_output=True, text=True)
    assert r.returncode == 1, r.stderr  # bad checksums found
    report = json.loads(r.stdout)
    assert report["counts"]["outer_udp_bad"] == 7 and bad(report["counts"]) == 7
    assert report["counts"]["clean"] > 10 and sum(report["counts"][k] for k in PARTIAL) == 0
    verbose = subprocess.run(["tcpdump", "-r", str(path), "-nn", "-vv", "udp"], capture_output=True, text=True).stdout
    assert verbose.count("bad udp cksum") == 7


def test_live_capture_without_root_exits_77_naming_cap_net_raw(lab, v6diag_cmd):
    require_tools("setpriv")
    r = subprocess.run(["ip", "netns", "exec", lab.a, "setpriv", "--reuid=65534", "--regid=65534",
                        "--clear-groups", "--inh-caps=-all", *v6diag_cmd, "checksum", "-i", "u0", "-d", "1"],
                       capture_output=True, text=True, timeout=60)
    assert r.returncode == 77, r.stderr
    assert "CAP_NET_RAW" in r.stderr and "Traceback" not in r.stderr


def test_ctrl_c_ends_a_live_capture_with_its_report(lab, v6diag_cmd):
    proc = subprocess.Popen(["ip", "netns", "exec", lab.a, *v6diag_cmd, "-v", "--json", "checksum", "-i", "u0"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    assert "capturing" in proc.stderr.readline()
    progress = []  # -v: "N packets, M VXLAN, ..." as each batch is counted
    threading.Thread(target=lambda: progress.extend(iter(lambda: proc.stderr.read(1), "")), daemon=True).start()
    lab.traffic(datagrams=3, tcp_bytes=1000)
    wait_until(lambda: any(int(n) > 0 for n in re.findall(r"(\d+) VXLAN", "".join(progress))),
               "the capture to count VXLAN packets")
    proc.send_signal(signal.SIGINT)
    out = proc.stdout.read()
    proc.wait(timeout=30)
    assert proc.returncode == 0, "".join(progress)
    assert json.loads(out)["vxlan_packets"] > 0


def test_streaming_from_tcpdump_through_stdin(lab, v6diag_cmd):
    """`tcpdump -U -w - | v6diag checksum -` on the receiver: the verdicts arrive
    as tcpdump writes, and the report follows when it exits (-c 7)."""
    proc = subprocess.Popen(
        ["ip", "netns", "exec", lab.b, "sh", "-c",
         f"tcpdump -i u0 --immediate-mode -U -c 7 -w - 'udp dst port {lab.port} and src portrange 50000-50006'"
         f" | {' '.join(v6diag_cmd)} --json checksum -"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    assert "listening on u0" in proc.stderr.readline()  # tcpdump's; v6diag is silent on stderr here
    lab.inject_bad_outer_udp(7)
    out, err = proc.communicate(timeout=60)
    report = json.loads(out)
    assert report["packets"] == 7 and report["counts"]["outer_udp_bad"] == 7, err
    assert proc.returncode == 1  # bad checksums found


def test_any_interface_sees_the_vxlan_underlay_as_cooked_frames(lab):
    """-i any: a cooked socket on every interface (SLL2 frames, as tcpdump -i any):
    the underlay's VXLAN packets are found among the tunnel's own inner frames."""
    report = run_live_checksum_any(lab)
    counts = report["counts"]
    assert report["input"] == "any" and report["vxlan_packets"] > 20, counts
    assert sum(counts[k] for k in PARTIAL) > 0 and bad(counts) == 0
    assert report["live"]["kernel_csum_not_ready"] > 0  # PACKET_AUXDATA works on the cooked socket too


def run_live_checksum_any(lab):
    proc = subprocess.Popen(["ip", "netns", "exec", lab.a, *v6diag_command(), "checksum", "-i", "any", "-d", "4",
                             "--json"], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    assert "capturing on any" in proc.stderr.readline()
    lab.traffic()
    out, err = proc.communicate(timeout=60)
    assert proc.returncode in (0, 1), err
    return json.loads(out)
