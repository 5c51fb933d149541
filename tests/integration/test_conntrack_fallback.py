"""`v6diag conntrack` on this VM's kernel, which has no kprobes: it must name
what is missing and fall back to ctnetlink DESTROY events, in a network
namespace the test builds (iptables/ip6tables rules make conntrack track it)."""

from __future__ import annotations

import json
import os
import subprocess

import pytest

from tests.conftest import require_root, require_tools
from tests.lab import Namespaces, wait_until

SENDER = """
import socket, sys
for fam, addr, port in ((socket.AF_INET, "127.0.0.1", 9999), (socket.AF_INET6, "::1", 9999),
                        (socket.AF_INET, "127.0.0.1", 7777)):
    socket.socket(fam, socket.SOCK_DGRAM).sendto(b"x", (addr, port))
"""


@pytest.fixture
def ns(build_lab):
    """One namespace whose OUTPUT rules make conntrack track it."""
    require_root()
    require_tools("conntrack", "iptables", "ip6tables")
    lab = build_lab(Namespaces(f"v6dct{os.getpid() % 100000}", ["h"], [("h", """
        iptables -A OUTPUT -m conntrack --ctstate NEW -j ACCEPT
        ip6tables -A OUTPUT -m conntrack --ctstate NEW -j ACCEPT""")]))
    return lab.name("h")


def watch(v6diag_cmd, ns, tmp_path, *args):
    ready = tmp_path / "ready"
    p = subprocess.Popen([*v6diag_cmd, "conntrack", "--netns", ns, "--json", "--ready-file", str(ready),
                          "-d", "4", *args], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    wait_until(lambda: ready.exists() or p.poll() is not None, "the watcher's --ready-file", timeout=10)
    assert ready.exists(), p.stderr.read()
    return p


def test_fallback_names_what_is_missing_and_reports_deletes_and_flushes(ns, v6diag_cmd, tmp_path):
    p = watch(v6diag_cmd, ns, tmp_path, "--port", "9999", "--proto", "udp")
    run = lambda *c: subprocess.run(["ip", "netns", "exec", ns, *c], capture_output=True, text=True)
    run("python3", "-c", SENDER)  # entries are made as the packets leave (OUTPUT hook)
    assert "9999" in run("conntrack", "-L").stdout and "9999" in run("conntrack", "-L", "-f", "ipv6").stdout
    run("conntrack", "-D", "-p", "udp", "--dport", "9999")  # the IPv4 entry
    run("conntrack", "-F")  # the IPv6 one, and 7777 (filtered out)
    out, err = p.communicate(timeout=30)
    assert p.returncode == 0, err
    lines = [json.loads(line) for line in out.splitlines()]
    events, summary = lines[:-1], lines[-1]
    assert summary["summary"] and summary["mode"] == "netlink" and summary["events"] == 2
    assert sorted(e["family"] for e in events) == ["ipv4", "ipv6"]
    for e in events:
        assert e["cause"] == "unknown" and e["proto"] == "udp" and e["orig"]["dport"] == 9999
        assert set(e) >= {"cause", "orig", "reply", "mark", "comm", "stack"}
    assert "falling back" in err and all(m in err for m in summary["missing"])
    if not os.path.exists("/sys/bus/event_source/devices/kprobe"):  # this VM's kernel
        assert any("kprobes unavailable" in m for m in summary["missing"])


def test_without_cap_net_admin_exits_77(ns, v6diag_cmd):
    require_tools("setpriv")
    r = subprocess.run(["ip", "netns", "exec", ns, "setpriv", "--reuid=65534", "--regid=65534", "--clear-groups",
                        "--inh-caps=-all", *v6diag_cmd, "conntrack", "-d", "1"], capture_output=True, text=True)
    assert r.returncode == 77 and "CAP_NET_ADMIN" in r.stderr and "Traceback" not in r.stderr


def test_missing_netns_is_a_usage_error(v6diag_cmd):
    require_root()
    r = subprocess.run([*v6diag_cmd, "conntrack", "--netns", "no-such-netns-v6d"], capture_output=True, text=True)
    assert r.returncode == 2 and "no such network namespace" in r.stderr and "Traceback" not in r.stderr


def test_sigterm_ends_watching_like_ctrl_c(ns, v6diag_cmd, tmp_path):
    """systemd, `timeout` and Kubernetes stop with SIGTERM: the summary line must
    still come, and the exit code be 0."""
    import signal

    ready = tmp_path / "ready"
    p = subprocess.Popen([*v6diag_cmd, "conntrack", "--netns", ns, "--json", "--ready-file", str(ready)],
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    wait_until(lambda: ready.exists() or p.poll() is not None, "the watcher's --ready-file", timeout=10)
    subprocess.run(["ip", "netns", "exec", ns, "python3", "-c", SENDER], check=True)
    subprocess.run(["ip", "netns", "exec", ns, "conntrack", "-F"], capture_output=True)
    p.send_signal(signal.SIGTERM)
    out, err = p.communicate(timeout=30)
    assert p.returncode == 0, err
    summary = json.loads(out.splitlines()[-1])
    assert summary["summary"] is True and summary["mode"] == "netlink", out


def test_entries_older_than_the_watch_are_a_finding_and_the_sysctl_fixes_it(ns, v6diag_cmd, tmp_path):
    """nf_conntrack_events=2 (this kernel's default): an entry made before the
    listener existed dies unreported, and the summary says why, with the sysctl;
    with the sysctl at 1 the same sequence is reported."""
    run = lambda *c: subprocess.run(["ip", "netns", "exec", ns, *c], capture_output=True, text=True)
    assert run("cat", "/proc/sys/net/netfilter/nf_conntrack_events").stdout.strip() == "2"
    for value, reported in (("2", 0), ("1", 2)):
        run("sysctl", "-qw", f"net.netfilter.nf_conntrack_events={value}")
        run("python3", "-c", SENDER)  # entries made before the watch: 9999 v4 and v6, 7777
        p = watch(v6diag_cmd, ns, tmp_path, "--port", "9999")
        run("conntrack", "-F")
        run("conntrack", "-F", "-f", "ipv6")
        out, err = p.communicate(timeout=30)
        summary = json.loads(out.splitlines()[-1])
        assert summary["events"] == reported, (value, out, err)
        codes = [f["code"] for f in summary["findings"]]
        assert codes == (["conntrack-events-listener-only"] if value == "2" else []), summary["findings"]
        (tmp_path / "ready").unlink()
