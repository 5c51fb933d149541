"""`v6diag drops` on this machine's kernel, which has the skb:kfree_skb
tracepoint with drop reasons but no kernel headers (so no bcc): the tracefs and
counters sources, against real drops made in two namespaces (tests/drops_lab.py):
UDP with wrong checksums to a listening port (IPv4 and IPv6), UDP to a closed
port, TCP SYNs into an nftables drop rule. The BPF source, with flows, runs in the
kernel tier (tests/kernel/test_drops.py)."""

from __future__ import annotations

import json
import os
import signal
import subprocess

import pytest

from tests.conftest import require_root, require_tools
from tests.drops_lab import DropsLab, two_hosts
from tests.lab import wait_until


@pytest.fixture(scope="module")
def lab(build_module_lab):
    require_root()
    require_tools("ip", "nft", "ss")
    built = build_module_lab(two_hosts(f"dr{os.getpid() % 10000}"))
    d = DropsLab(built)
    d.start_listener()
    return d


def watch(v6diag_cmd, tmp_path, *args):
    ready = tmp_path / f"ready-{len(args)}"
    proc = subprocess.Popen([*v6diag_cmd, "drops", "--json", "--ready-file", str(ready), *args],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    wait_until(lambda: ready.exists() or proc.poll() is not None, "drops --ready-file", timeout=30)
    assert ready.exists(), proc.stderr.read()
    return proc


def stop(proc) -> tuple[list[dict], dict, str]:
    proc.send_signal(signal.SIGINT)
    out, err = proc.communicate(timeout=30)
    lines = [json.loads(x) for x in out.splitlines()]
    assert proc.returncode == 0 and lines and "summary" in lines[-1], err
    return lines[:-1], lines[-1]["summary"], err


def make_drops(lab: DropsLab) -> None:
    lab.send("udp-bad4", 7)
    lab.send("udp-bad6", 5)
    lab.send("udp-closed6", 4)
    lab.send("syn6", 3)


def test_tracefs_sees_each_reason_with_its_words(lab, v6diag_cmd, tmp_path):
    if not os.path.exists("/sys/kernel/tracing/events") and not os.path.exists("/sys/kernel/debug/tracing/events"):
        subprocess.run(["mount", "-t", "tracefs", "nodev", "/sys/kernel/tracing"], check=False)
    proc = watch(v6diag_cmd, tmp_path, "--probe", "tracefs", "-r", "UDP_CSUM", "-r", "NO_SOCKET",
                 "-r", "NETFILTER_DROP")
    try:
        make_drops(lab)
    finally:
        events, summary, err = stop(proc)
    assert summary["source"] == "tracefs" and summary["lost"] == 0, summary
    # tracefs is host-wide: the checksum drops are only ours; other traffic may add to the rest
    assert summary["by_reason"]["UDP_CSUM"] == 12, summary
    assert summary["by_reason"]["NO_SOCKET"] >= 4 and summary["by_reason"]["NETFILTER_DROP"] >= 3, summary
    csum = [e for e in events if e["reason"] == "UDP_CSUM"]
    assert {e["family"] for e in csum} == {"ipv4", "ipv6"} and all(e["location"] for e in csum)
    assert "v6diag checksum" in csum[0]["fix"] and csum[0]["why"]
    assert set(summary["by_reason"]) <= {"UDP_CSUM", "NO_SOCKET", "NETFILTER_DROP"}  # the kernel-side filter


def test_counters_count_exactly_in_one_namespace(lab, v6diag_cmd, tmp_path):
    proc = watch(v6diag_cmd, tmp_path, "--probe", "counters", "--netns", lab.lab.name("b"))
    try:
        make_drops(lab)
    finally:
        events, summary, err = stop(proc)
    assert events == [] and summary["source"] == "counters" and summary["counted_in_kernel"]
    assert summary["by_reason"].get("UDP_CSUM") == 12 and summary["by_reason"].get("NO_SOCKET") == 4, summary


def test_flows_without_bpf_are_refused_with_what_is_missing(v6diag_cmd):
    r = subprocess.run([*v6diag_cmd, "drops", "--probe", "tracefs", "--port", "53", "-d", "1"],
                       capture_output=True, text=True)
    assert r.returncode == 69 and "--port needs the BPF source" in r.stderr and "Traceback" not in r.stderr


def test_the_human_output_names_reason_fix_and_totals(lab, v6diag_cmd, tmp_path):
    ready = tmp_path / "ready-human"
    proc = subprocess.Popen([*v6diag_cmd, "drops", "--probe", "tracefs", "-r", "UDP_CSUM", "--ready-file", str(ready)],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env={**os.environ, "COLUMNS": "120"})
    wait_until(lambda: ready.exists() or proc.poll() is not None, "drops --ready-file", timeout=30)
    try:
        lab.send("udp-bad6", 2)
    finally:
        proc.send_signal(signal.SIGINT)
        out, err = proc.communicate(timeout=30)
    assert proc.returncode == 0, err
    assert "UDP_CSUM: ipv6 at " in out and "why: a UDP datagram arrived with a wrong checksum" in out
    assert "fix: run `v6diag checksum -i IF`" in out and "2 drops in" in out


TCP_LISTENER = """
import socket, sys, time
s = socket.socket(socket.AF_INET6, socket.SOCK_STREAM)
s.bind(("::", int(sys.argv[1]))); s.listen(8)
print("listening", flush=True)
time.sleep(3600)
"""
CONNECT = "import socket, sys; socket.create_connection((sys.argv[1], int(sys.argv[2])), timeout=2)"


def test_the_rule_behind_netfilter_drops_is_named_and_its_fix_lets_the_flow_through(build_lab):
    """The ruleset, the namespace, the lookup inside it and the fix are real. The
    flow is typed here as the BPF source reports it (the kernel tier gets it live,
    tests/kernel/test_drops.py): bcc cannot compile on this kernel (no headers)."""
    import re
    import shlex
    import sys

    from tests.drops_lab import A6, B6, FIREWALLED
    from v6diag.drops import host
    from v6diag.drops.rules import NetfilterFlows, blame

    require_root()
    require_tools("ip", "nft")
    ns = build_lab(two_hosts(f"fw{os.getpid() % 10000}"))
    listener = ns.spawn(ns.name("b"), sys.executable, "-c", TCP_LISTENER, str(FIREWALLED),
                        stdout=subprocess.PIPE, text=True)
    assert listener.stdout.readline().strip() == "listening"

    def connects() -> bool:
        return ns.run("a", sys.executable, "-c", CONNECT, B6, str(FIREWALLED)).returncode == 0

    seen = NetfilterFlows()
    seen.add({"reason": "NETFILTER_DROP", "family": "ipv6", "proto": "tcp", "src": A6, "dst": B6, "sport": 40002,
              "dport": FIREWALLED, "ifname": "eth0", "netns": os.stat(f"/run/netns/{ns.name('b')}").st_ino})
    [finding] = blame(seen, host.firewalls(seen.namespaces()))
    assert finding.code == "firewall-rule", finding
    assert f"in netns {ns.name('b')}, the input chain inet v6diag_drops input drops them with its rule " \
           f"`tcp dport {FIREWALLED} drop` (handle" in finding.message, finding.message
    assert not connects()  # the SYNs really are dropped
    delete = re.search(r"`(nft delete rule [^`]+)`", finding.fix).group(1)
    ns.run("b", *shlex.split(delete), check=True)
    assert connects()
    assert blame(seen, host.firewalls(seen.namespaces())) == []  # nothing drops it any more
