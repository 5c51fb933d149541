"""`v6diag discover` on a real bridged LAN built from network namespaces.

Each test builds its lab with tests.lab.LanLab (32 hosts with real vendor OUIs,
EUI-64 / stable-privacy / random / low-byte interface IDs, and hosts that
answer echo, ignore multicast echo, ignore all echo, drop echo in ip6tables, or
drop echo and MLD queries) and deletes every namespace afterwards."""

from __future__ import annotations

import json
import re
import signal
import subprocess
import sys
import threading

import pytest

from tests.conftest import require_root, require_tools
from tests.lab import GLOBAL_PREFIX, HostSpec, LanLab, Namespaces, default_hosts, wait_until
from v6diag.core.capture import CaptureReader

EXPECTED_IID = {"eui64": "eui64", "low-byte": "low-byte", "random": "random", "stable-privacy": "random"}


@pytest.fixture(scope="module")
def lan(build_module_lab):
    """The 32-host LAN, shared by the read-only tests of this module."""
    require_root()
    require_tools("ip", "ip6tables", "ping", "tcpdump")
    return build_module_lab(LanLab())


class Lines:
    """A process's output read as it comes (a thread), so a test can wait for a
    line the program prints instead of sleeping."""

    def __init__(self, stream):
        self.lines: list[str] = []
        self.thread = threading.Thread(target=lambda: self.lines.extend(iter(stream.readline, "")), daemon=True)
        self.thread.start()

    def wait_for(self, text: str, timeout: float = 30) -> str:
        return wait_until(lambda: next((line for line in self.lines if text in line), None),
                          f"{text!r} in the output", timeout=timeout)


def run_discover(lab: LanLab, v6diag_cmd, *args: str) -> subprocess.CompletedProcess:
    return lab.exec_prober(*v6diag_cmd, "discover", "-i", lab.PROBER_IF, *args)


def assert_matches_lab(hosts: list[dict], lab: LanLab) -> None:
    found = {h["mac"]: h for h in hosts}
    assert set(found) == {h.mac for h in lab.hosts}
    for want in lab.hosts:
        got = found[want.mac]
        assert got["link_local"] == want.link_local, want
        assert sorted(got["addresses"]) == sorted(want.addresses), want
        assert got["iid_kind"] == EXPECTED_IID[want.iid], want
        assert got["is_router"] == want.router, want
        if want.vendor is None:
            assert got["vendor"] is None and got["mac_locally_administered"]
        else:
            assert want.vendor.lower() in (got["vendor"] or "").lower(), (want, got["vendor"])


def ping_responders(lab: LanLab) -> set[str]:
    r = lab.exec_prober("ping", "-6", "-n", "-c2", "-I", lab.PROBER_IF, "ff02::1")
    return set(re.findall(r"bytes from ([0-9a-f:]+)(?:%\S+)?: icmp_seq", r.stdout))


def test_discover_finds_every_host_that_ping_misses(lan, v6diag_cmd):
    r = run_discover(lan, v6diag_cmd, "--json")
    assert r.returncode == 0, r.stderr
    report = json.loads(r.stdout)
    assert len(lan.hosts) >= 30
    assert_matches_lab(report["hosts"], lan)
    lab_lls = {h.link_local for h in lan.hosts}
    by_ping = ping_responders(lan) & lab_lls  # ping also lists the prober itself
    answering = {h.link_local for h in lan.hosts if h.behaviour == "answers-echo"}
    assert by_ping == answering  # ping finds exactly the hosts that answer multicast echo
    assert len(by_ping) < len(lan.hosts) / 2
    print(f"\nv6diag discover: {len(report['hosts'])}/{len(lan.hosts)} hosts in "
          f"{report['duration_s']} s; ping -6 -c2 ff02::1: {len(by_ping)}/{len(lan.hosts)}")
    silent = next(f for f in report["findings"] if f["code"] == "echo-silent-hosts")
    assert silent["message"].startswith(f"{len(lan.hosts) - len(answering)} of {len(lan.hosts)}")


def test_human_output_has_a_row_and_an_ssh_line_per_host(lan, v6diag_cmd):
    r = run_discover(lan, v6diag_cmd, "--user", "pi")
    assert r.returncode == 0, r.stderr
    for h in lan.hosts:
        assert f"ssh pi@{h.link_local}%{lan.PROBER_IF}" in r.stdout
        assert h.mac in r.stdout


def test_written_capture_reads_back_the_same_and_tcpdump_agrees(lan, v6diag_cmd, tmp_path):
    path = tmp_path / "burst.pcap"
    live = run_discover(lan, v6diag_cmd, "--json", "--write", str(path))
    assert live.returncode == 0, live.stderr
    frames = list(CaptureReader(str(path)))
    dump = subprocess.run(["tcpdump", "-nn", "-r", str(path)], capture_output=True, text=True)
    assert dump.returncode == 0, dump.stderr
    assert len(dump.stdout.splitlines()) == len(frames) > len(lan.hosts)
    replay = subprocess.run([*v6diag_cmd, "discover", "--pcap", str(path), "--json"],
                            capture_output=True, text=True)
    assert replay.returncode == 0, replay.stderr
    replayed = json.loads(replay.stdout)["hosts"]
    # the capture also shows the prober itself; otherwise the same devices and addresses
    assert {h["mac"] for h in replayed} == {h.mac for h in lan.hosts} | {lan.PROBER_MAC}
    assert_matches_lab([h for h in replayed if h["mac"] != lan.PROBER_MAC], lan)
    # reply times: live (kernel timestamps against the first probe's send) and from the
    # capture of the same run agree within a millisecond
    live_reply = {h["mac"]: h["first_reply_s"] for h in json.loads(live.stdout)["hosts"]}
    replay_reply = {h["mac"]: h["first_reply_s"] for h in replayed}
    assert all(live_reply[m] is not None for m in live_reply)
    assert max(abs(live_reply[m] - replay_reply[m]) for m in live_reply) <= 0.001, (live_reply, replay_reply)


def test_without_root_exits_77_naming_cap_net_raw(lan, v6diag_cmd):
    require_tools("setpriv")
    r = lan.exec_prober("setpriv", "--reuid=65534", "--regid=65534", "--clear-groups",
                        "--inh-caps=-all", *v6diag_cmd, "discover", "-i", lan.PROBER_IF)
    assert r.returncode == 77, (r.stdout, r.stderr)
    assert "CAP_NET_RAW" in r.stderr and "Traceback" not in r.stderr
    assert len(r.stderr.strip().splitlines()) == 1


@pytest.mark.parametrize("setup, ifname, code, words", [
    ("true", "missing0", 2, "no such interface"),
    ("ip link set lo up", "lo", 2, "loopback"),
    ("true", "a0", 69, "is down"),
    ("ip link set a0 up", "a0", 69, "no carrier"),
    ("sysctl -qw net.ipv6.conf.a0.disable_ipv6=1; ip link set a0 up; ip link set b0 up",
     "a0", 69, "no IPv6 link-local"),
])
def test_unusable_interfaces_get_one_line_and_exit_code(setup, ifname, code, words, v6diag_cmd, build_lab):
    """A namespace holding one veth end in a chosen bad state."""
    require_root()
    bad = build_lab(Namespaces(f"v6d{id(setup) % 10000}", ["bad"], [
        ("bad", "ip link add a0 type veth peer name b0"), ("bad", setup)]))
    r = bad.run("bad", *v6diag_cmd, "discover", "-i", ifname)
    assert r.returncode == code, r.stderr
    assert words in r.stderr and "Traceback" not in r.stderr
    assert len(r.stderr.strip().splitlines()) == 1


MALFORMED_SENDER = r"""
import socket, sys, time
from scapy.layers.l2 import Ether
from scapy.layers.inet6 import *
dst_mac, dst_ll, src_ll, mac = sys.argv[1:5]
eth = Ether(src=mac, dst=dst_mac)
na = bytes(eth / IPv6(src=src_ll, dst=dst_ll, hlim=255) / ICMPv6ND_NA(tgt=src_ll, S=1)
           / ICMPv6NDOptDstLLAddr(lladdr=mac))
frames = [
    na[:-8] + bytes([2, 0]) + na[-6:],  # target link-layer option of length 0
    na[:14 + 40 + 6],  # NA cut after 6 octets
    bytes(eth / IPv6(src=src_ll, dst=dst_ll, plen=1000) / ICMPv6ND_RS()),  # payload length lies
    bytes(eth)[:12] + b"\x86\xdd" + bytes(range(7, 80)),  # garbage that claims to be IPv6
    bytes(eth / IPv6(src=src_ll, dst="ff02::16", hlim=1) / ICMPv6MLReport2())[:58],  # short MLDv2 report
    bytes(eth / IPv6(src=src_ll, dst=dst_ll) / ICMPv6ParamProblem(code=2) / b"\x60garbage"),
]
s = socket.socket(socket.AF_PACKET, socket.SOCK_RAW)
s.bind(("eth0", 0))
end = time.time() + float(sys.argv[5])
print("sending", flush=True)
while time.time() < end:
    for f in frames:
        s.send(f)
    time.sleep(0.02)
"""


def test_malformed_packets_on_the_wire_are_counted_not_fatal(v6diag_cmd, build_lab):
    require_root()
    lab = build_lab(LanLab(hosts=None))
    attacker = lab.hosts[0]
    sender = lab.spawn(lab.ns(attacker), sys.executable, "-c", MALFORMED_SENDER, lab.PROBER_MAC, prober_ll(lab),
                       attacker.link_local, attacker.mac, "4", stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                       text=True)
    assert sender.stdout.readline().strip() == "sending", sender.stderr.read()
    r = run_discover(lab, v6diag_cmd, "--json")
    sender.wait(timeout=20)
    assert sender.returncode == 0, sender.stderr.read()
    assert r.returncode == 0, r.stderr
    assert "Traceback" not in r.stderr
    report = json.loads(r.stdout)
    assert_matches_lab(report["hosts"], lab)
    assert report["malformed_packets"] > 0
    codes = {f["code"] for f in report["findings"]}
    assert "malformed-packets" in codes


def prober_ll(lab: LanLab) -> str:
    out = lab.exec_prober("ip", "-j", "-6", "addr", "show", "dev", lab.PROBER_IF, check=True).stdout
    return next(a["local"] for a in json.loads(out)[0]["addr_info"] if a["local"].startswith("fe80"))


def test_watch_prints_a_device_that_boots_later_then_sigterm_exits_0(v6diag_cmd, build_lab):
    require_root()
    lab = build_lab(LanLab(hosts=default_hosts(6)))
    proc = lab.spawn(lab.prober, *v6diag_cmd, "discover", "-i", lab.PROBER_IF, "--watch", "--json",
                     stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    out = Lines(proc.stdout)  # read by a thread: a line that never comes fails the wait, never hangs
    try:
        first = json.loads(out.wait_for('"hosts"'))  # the report after the probe window
        assert {h["mac"] for h in first["hosts"]} == {h.mac for h in lab.hosts}
        newcomer = lab.add_host(HostSpec("h50", "b8:27:eb:50:50:50", "Raspberry Pi", "eui64",
                                         "ignores-all-echo", global_address=True), dad=True)
        lab.wait_addresses(newcomer)

        def complete(event: dict) -> bool:
            host = event["host"]
            return host["mac"] == newcomer.mac and newcomer.link_local in host["addresses"] \
                and any(a.startswith(GLOBAL_PREFIX[:9]) for a in host["addresses"])

        wait_until(lambda: any(complete(json.loads(line)) for line in out.lines[1:]),
                   "an event with the newcomer's link-local and global addresses", timeout=30)
        events = [json.loads(line) for line in out.lines[1:]]
        events = events[:next(i for i, e in enumerate(events) if complete(e)) + 1]
        assert events[0]["event"] == "host" and events[0]["host"]["mac"] == newcomer.mac
        assert "dad" in events[-1]["host"]["seen_by"]
    finally:
        proc.send_signal(signal.SIGTERM)  # what systemd sends: ends --watch as Ctrl-C does
        proc.wait(timeout=20)
        out.thread.join(timeout=20)
        err = proc.stderr.read()
    assert proc.returncode == 0, err
    assert "Traceback" not in err


def test_ctrl_c_during_the_probe_window_reports_what_was_heard(lan, v6diag_cmd):
    proc = subprocess.Popen(["ip", "netns", "exec", lan.prober, *v6diag_cmd, "-v", "--json", "discover", "-i",
                             lan.PROBER_IF, "--timeout", "20"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    err, stdout = Lines(proc.stderr), Lines(proc.stdout)
    err.wait_for("devices heard")  # -v: the (20 s) window is open and answers are coming in
    proc.send_signal(signal.SIGINT)
    proc.wait(timeout=20)
    err.thread.join(timeout=20)
    stdout.thread.join(timeout=20)
    out = "".join(stdout.lines)
    assert proc.returncode == 0 and out, (proc.returncode, "".join(err.lines))
    report = json.loads(out)
    assert report["hosts"] and {h["mac"] for h in report["hosts"]} <= {h.mac for h in lan.hosts}
    assert "window-interrupted" in {f["code"] for f in report["findings"]}
    assert report["duration_s"] < 20


def test_watch_human_output_prints_the_table_then_each_newcomer_with_ssh(v6diag_cmd, build_lab):
    require_root()
    lab = build_lab(LanLab(hosts=default_hosts(4)))
    proc = lab.spawn(lab.prober, *v6diag_cmd, "discover", "-i", lab.PROBER_IF, "--watch", "--user", "pi",
                     stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    out = Lines(proc.stdout)
    try:
        assert "watching lan0" in proc.stderr.readline()  # printed after the first table
        newcomer = lab.add_host(HostSpec("h51", "dc:a6:32:51:51:51", "Raspberry Pi", "eui64",
                                         "answers-echo"), dad=True)
        lab.wait_addresses(newcomer)
        out.wait_for(f"ssh pi@{newcomer.link_local}%lan0")
    finally:
        proc.send_signal(signal.SIGINT)
        proc.wait(timeout=20)
        out.thread.join(timeout=20)
        err = proc.stderr.read()
    assert proc.returncode == 0, err
    table, _, tail = "".join(out.lines).partition("Reach them:")
    assert all(h.mac in table for h in lab.hosts[:4])
    # first seen with or without its address (MLD reports during DAD come from ::)
    assert re.search(rf"new device \S+  {newcomer.mac}  Raspberry Pi Trading Ltd", tail), tail
    assert f"    ssh pi@{newcomer.link_local}%lan0" in tail
