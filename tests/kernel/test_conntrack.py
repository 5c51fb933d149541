"""`v6diag conntrack` with its kprobe on nf_ct_delete, on the booted stock kernel:
real reproductions of each way the kernel destroys entries, classified from the
real kernel stacks. One watcher (one compile) serves the whole module; each test
finds its own events by its namespace's inode. What each test saw is written as
a fixture (tests/fixtures/conntrack/) for the root-free classifier tests."""

from __future__ import annotations

import json
import os
import platform
import subprocess
from pathlib import Path

import pytest

from tests.conftest import require_root, require_tools
from tests.drops_lab import DropWatcher
from tests.kernel.conftest import RESULTS, record_fixture
from tests.kernel.conntrack_lab import ECHO_CLIENT, ECHO_SERVER, Watcher, dual_wan, netns_inode, two_hosts
from tests.lab import wait_until

SEND_UDP = """
import socket, sys, time
fam = socket.AF_INET6 if ":" in sys.argv[1] else socket.AF_INET
s = socket.socket(fam, socket.SOCK_DGRAM); s.bind(("", int(sys.argv[3])))
for i in range(int(sys.argv[4]) if len(sys.argv) > 4 else 1):
    s.sendto(b"x", (sys.argv[1], int(sys.argv[2]))); time.sleep(float(sys.argv[5]) if len(sys.argv) > 5 else 0)
"""
SEND_FLOWS = """
import socket, sys
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
for i in range(int(sys.argv[3])):
    try:
        s.sendto(b"x", (sys.argv[1], int(sys.argv[2]) + i))  # a new 5-tuple each time
    except OSError:
        pass  # 'table full, dropping packet' surfaces as EPERM
"""
SEND_FROM_PORTS = """
import socket, sys
for i in range(int(sys.argv[4])):
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.bind(("", int(sys.argv[3]) + i))  # a new source port: a new entry each time
    s.sendto(b"x", (sys.argv[1], int(sys.argv[2])))
    s.close()
"""
DERIVED = ("cause", "context", "explanation", "fix", "evidence")  # the classifier's: never recorded


@pytest.fixture(scope="module")
def watcher(v6diag_module_cmd, tmp_path_factory):
    require_root()
    require_tools("conntrack", "iptables", "ip6tables")
    w = Watcher(v6diag_module_cmd, tmp_path_factory.mktemp("watch"))
    try:
        mode = w.wait_ready()
        assert mode == "kprobe", w.stderr()
        yield w
    finally:
        w.stop()


@pytest.fixture(scope="module")
def v6diag_module_cmd(v6diag_cmd):
    return v6diag_cmd


def prefix(tag: str) -> str:
    return f"k{os.getpid() % 10000}{tag}"


def record(scenario: str, expected: str, events: list[dict]) -> None:
    record_fixture(f"conntrack-{scenario}", {
        "kernel": platform.release(), "scenario": scenario, "expected_cause": expected,
        "events": [{k: v for k, v in e.items() if k not in DERIVED} for e in events]})


def in_ns(lab, short):
    inode = netns_inode(lab.name(short))
    return lambda e: e.get("netns") == inode


def test_conntrack_delete_is_userspace_delete_ipv4_and_ipv6(watcher, build_lab):
    lab = build_lab(two_hosts(prefix("d")))
    ns = in_ns(lab, "h")
    lab.run("h", "python3", "-c", SEND_UDP, "10.9.0.2", "4001", "40001", check=True)
    lab.run("h", "python3", "-c", SEND_UDP, "fd00:c7::2", "4001", "40001", check=True)
    assert "4001" in lab.run("h", "conntrack", "-L").stdout
    lab.run("h", "conntrack", "-D", "-f", "ipv4", "-p", "udp", "--dport", "4001", check=True)
    lab.run("h", "conntrack", "-D", "-f", "ipv6", "-p", "udp", "--dport", "4001", check=True)
    got = watcher.wait_for(lambda e: ns(e) and e["orig"].get("dport") == 4001, count=2)
    by_family = {e["family"]: e for e in got}
    assert set(by_family) == {"ipv4", "ipv6"}, got
    for e in got:
        assert e["cause"] == "userspace-delete" and e["comm"] == "conntrack" and e["context"] == "process"
        assert "ctnetlink_del_conntrack" in e["stack"] and not e["expired"]
    assert by_family["ipv6"]["orig"]["dst"] == "fd00:c7::2" and by_family["ipv6"]["orig"]["sport"] == 40001
    assert by_family["ipv4"]["reply"] == {"src": "10.9.0.2", "dst": "10.9.0.1", "sport": 4001, "dport": 40001,
                                          "proto": "udp"}
    record("delete", "userspace-delete", got)


def test_conntrack_flush_is_userspace_flush(watcher, build_lab):
    lab = build_lab(two_hosts(prefix("f")))
    ns = in_ns(lab, "h")
    for port in ("4101", "4102", "4103"):
        lab.run("h", "python3", "-c", SEND_UDP, "10.9.0.2", port, "0", check=True)
    lab.run("h", "conntrack", "-F", check=True)
    got = watcher.wait_for(lambda e: ns(e) and e["orig"].get("dport") in (4101, 4102, 4103), count=3)
    assert sorted(e["orig"]["dport"] for e in got) == [4101, 4102, 4103]
    assert {e["cause"] for e in got} == {"userspace-flush"}, [e["stack"] for e in got]
    record("flush", "userspace-flush", got)


def test_udp_timeout_is_timeout_not_shouted(watcher, build_lab):
    lab = build_lab(two_hosts(prefix("t")))
    ns = in_ns(lab, "h")
    lab.run("h", "sysctl", "-qw", "net.netfilter.nf_conntrack_udp_timeout=1", check=True)
    # one packet, 3 s of silence, then the same 5-tuple again: the stale entry is
    # reaped, by the GC worker or lazily when the second packet looks it up
    lab.run("h", "python3", "-c", SEND_UDP, "10.9.0.2", "4201", "42001", "2", "3", check=True)
    got = watcher.wait_for(lambda e: ns(e) and e["orig"].get("dport") == 4201, timeout=90)
    assert got and got[0]["cause"] == "timeout" and got[0]["expired"], got
    assert got[0]["context"] in ("softirq", "kworker", "process")
    record("udp-timeout", "timeout", got[:1])


def test_rst_before_any_reply_is_tcp_rst(watcher, build_lab):
    lab = build_lab(two_hosts(prefix("r")))
    ns = in_ns(lab, "h")
    r = lab.run("h", "python3", "-c", ECHO_CLIENT, "10.9.0.2", "4301", "1")
    assert "Connection refused" in r.stderr  # p has no listener on 4301: its kernel answers RST
    got = watcher.wait_for(lambda e: ns(e) and e["orig"].get("dport") == 4301)
    assert len(got) == 1 and got[0]["cause"] == "tcp-rst", got
    assert got[0]["tcp_state"] == "close" and "seen_reply" not in got[0]["status"]
    assert got[0]["context"] == "softirq"
    record("tcp-rst", "tcp-rst", got)


CLOSE_THEN_REOPEN = """
import socket, sys, time
# p closes first (its FIN sets CLOSE_INIT on the entry), h answers with its own FIN:
# the entry sits in TIME_WAIT. h then reuses the same source port for a new SYN.
dst, port, sport = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
for attempt in range(2):
    c = socket.socket(); c.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    c.bind(("10.9.0.1", sport)); c.settimeout(4); c.connect((dst, port))
    c.sendall(b"x"); assert c.recv(16) == b"x"
    while c.recv(16):
        pass  # until p's FIN
    c.close(); time.sleep(1)
print("reopened")
"""
ONE_SHOT_ECHO = """
import socket, sys
s = socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind((sys.argv[1], int(sys.argv[2]))); s.listen(4)
while True:
    c, _ = s.accept(); c.sendall(c.recv(16)); c.close()
"""


def test_syn_reusing_a_time_wait_entry_is_tcp_reopen(watcher, build_lab):
    lab = build_lab(two_hosts(prefix("o")))
    ns = in_ns(lab, "h")
    lab.spawn_in("p", "python3", "-c", ONE_SHOT_ECHO, "10.9.0.2", "4701")
    listening(lab, "p", 4701)
    r = lab.run("h", "python3", "-c", CLOSE_THEN_REOPEN, "10.9.0.2", "4701", "47001")
    assert "reopened" in r.stdout, r.stderr
    got = watcher.wait_for(lambda e: ns(e) and e["orig"].get("sport") == 47001 and e["cause"] != "userspace-flush")
    assert got and got[0]["cause"] == "tcp-reopen", [(e["cause"], e.get("tcp_state"), e["stack"]) for e in got]
    assert got[0]["tcp_state"] in ("time_wait", "close") and "seen_reply" in got[0]["status"]
    record("tcp-reopen", "tcp-reopen", got[:1])


def test_full_table_evicts_unassured_entries_as_early_drop(watcher, build_lab):
    """nf_conntrack_max and the hash size are global (settable only from the init
    namespace: this throwaway guest's), the count per namespace. early_drop
    looks at 8 buckets from the new flow's hash; the table shrunk to 512 buckets
    (the one-page minimum) and capped at 16 entries, about one in five of 120
    unreplied flows finds an entry to evict, the rest are 'table full' drops."""
    knobs = {"/proc/sys/net/netfilter/nf_conntrack_max": "16", "/sys/module/nf_conntrack/parameters/hashsize": "512"}
    old = {path: open(path).read().strip() for path in knobs}
    try:
        lab = build_lab(two_hosts(prefix("x")))
        ns = in_ns(lab, "h")
        for path, value in knobs.items():
            with open(path, "w") as f:
                f.write(value)
        lab.run("h", "python3", "-c", SEND_FLOWS, "10.9.0.2", "4801", "120", check=True)
        got = watcher.wait_for(lambda e: ns(e) and e["cause"] == "early-drop", timeout=60)
        assert got, [(e["cause"], e["stack"][:5]) for e in watcher.matching(ns)][:5]
        assert all(4801 <= e["orig"]["dport"] < 4921 and "assured" not in e["status"] for e in got)
        record("early-drop", "early-drop", got[:2])
    finally:
        for path, value in old.items():
            with open(path, "w") as f:
                f.write(value)


def listening(lab, short: str, port: int) -> None:
    wait_until(lambda: lab.run(short, "ss", "-Hltn", f"sport = :{port}").stdout.strip(),
               f"a server listening on TCP {port} in {short}", timeout=60)


def _dual_wan_flow(lab, src: str, rounds: int = 5) -> int:
    if not lab.run("inet", "ss", "-Hltn", "sport = :8080").stdout.strip():
        lab.spawn_in("inet", "python3", "-c", ECHO_SERVER, "203.0.113.80", "8080")
        listening(lab, "inet", 8080)
    r = lab.run("cl", "python3", "-c", ECHO_CLIENT.replace("create_connection((", f"create_connection(source_address=('{src}', 0), address=(") ,
                "203.0.113.80", "8080", str(rounds), timeout=120)
    return int(r.stdout.strip() or 0)


def test_dual_wan_misplaced_accept_is_nat_oif_changed(watcher, build_lab, v6diag_module_cmd, tmp_path):
    lab = build_lab(dual_wan(prefix("w"), misplaced_accept=True))
    rtr = in_ns(lab, "rtr")
    # `v6diag drops` watches the router too: the packet NAT drops with the entry it kills
    drops = DropWatcher(v6diag_module_cmd, tmp_path, "--probe", "bpf", "--netns", lab.name("rtr"),
                        "-r", "NETFILTER_DROP")
    try:
        assert drops.wait_ready() == "bpf"
        _dual_wan_flow(lab, "192.168.1.10")
        got = watcher.wait_for(lambda e: rtr(e) and e["cause"] == "nat-oif-changed", timeout=60)
        drops.wait_for(lambda e: e.get("src") == "192.168.1.10", count=1)
    finally:
        drops.stop()
    _drop_told_with_its_entry(v6diag_module_cmd, tmp_path, drops.events, watcher.matching(rtr))
    assert got, [(e["cause"], e["stack"][:4]) for e in watcher.matching(rtr)]
    e = got[0]
    assert e["orig"]["src"] == "192.168.1.10" and e["orig"]["dst"] == "203.0.113.80"
    assert e["reply"]["dst"] == "10.1.0.2"  # masqueraded to wan1, then left by wan2
    assert e["mark"] == 0 and "src_nat" in e["status"] and e["context"] == "softirq"
    assert "CONNMARK --save-mark" in e["fix"]
    # the unmarked host's flows are never killed. Barrier: delete its entries by hand
    # and wait for those events; a kill on the packet path would have been reported first
    assert _dual_wan_flow(lab, "192.168.1.11", rounds=3) == 3
    lab.run("rtr", "conntrack", "-D", "-s", "192.168.1.11", check=True)
    from_11 = watcher.wait_for(lambda x: rtr(x) and x["orig"]["src"] == "192.168.1.11"
                               and x["cause"] == "userspace-delete")
    assert from_11, "conntrack -D of 192.168.1.11's entries was not seen"
    assert not [x for x in watcher.matching(rtr) if x["orig"]["src"] == "192.168.1.11"
                and x["cause"] == "nat-oif-changed"]
    record("dual-wan-oif-changed", "nat-oif-changed", got[:2])


def _drop_told_with_its_entry(cmd, tmp_path, drop_events, conntrack_events) -> None:
    """`drops --with-conntrack`: the NETFILTER_DROP of the flow whose entry NAT killed
    is told with that destruction (same flow, milliseconds apart)."""
    ct_file, drop_file = tmp_path / "conntrack.ndjson", tmp_path / "drops.ndjson"
    ct_file.write_text("".join(json.dumps(e) + "\n" for e in conntrack_events))
    drop_file.write_text("".join(json.dumps(e) + "\n" for e in drop_events))
    r = subprocess.run([*cmd, "drops", "--from", str(drop_file), "--with-conntrack", str(ct_file), "--json"],
                       capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    told = [e for e in map(json.loads, r.stdout.splitlines()) if e.get("conntrack")]
    assert told, (drop_events[:3], [(e["cause"], e["orig"]) for e in conntrack_events][:5])
    assert told[0]["conntrack"]["cause"] == "nat-oif-changed" and told[0]["reason"] == "NETFILTER_DROP"
    assert abs(told[0]["conntrack"]["delta_ms"]) < 500
    (RESULTS / "drops-with-conntrack.ndjson").write_text(r.stdout)
    # the two raw recordings, bundled as pcaps/drops-dual-wan-6.1.ndjson and
    # pcaps/conntrack-dual-wan-6.1.ndjson for `drops --from ... --with-conntrack ...`
    (RESULTS / "drops-dual-wan-6.1.ndjson").write_text(drop_file.read_text())
    (RESULTS / "conntrack-dual-wan-6.1.ndjson").write_text(ct_file.read_text())


def test_dual_wan_correct_order_keeps_the_flow_then_wan_down_is_masquerade_cleanup(watcher, build_lab):
    lab = build_lab(dual_wan(prefix("m"), misplaced_accept=False))
    rtr = in_ns(lab, "rtr")
    assert _dual_wan_flow(lab, "192.168.1.10", rounds=5) == 5  # every echo came back
    assert not [e for e in watcher.matching(rtr) if e["cause"] == "nat-oif-changed"]
    # an entry masqueraded to wan1 is alive (UDP, not closed); take wan1 down
    lab.run("cl", "python3", "-c", SEND_UDP, "203.0.113.80", "4401", "44001", check=True)
    wait_until(lambda: "4401" in lab.run("rtr", "conntrack", "-L").stdout, "the router's entry for UDP 4401")
    lab.run("rtr", "ip", "link", "set", "wan1", "down", check=True)
    got = watcher.wait_for(lambda e: rtr(e) and e["orig"].get("dport") == 4401, timeout=60)
    assert got and got[0]["cause"] == "masquerade-cleanup", [(e["cause"], e["stack"]) for e in got]
    assert got[0]["context"] == "kworker"
    record("masquerade-down", "masquerade-cleanup", got)


def test_netns_deletion_is_netns_exit(watcher):
    lab = two_hosts(prefix("n"))
    with lab:
        inode = netns_inode(lab.name("h"))
        lab.run("h", "python3", "-c", SEND_UDP, "10.9.0.2", "4501", "45001", check=True)
    got = watcher.wait_for(lambda e: e.get("netns") == inode and e["orig"].get("dport") == 4501, timeout=90)
    assert got and got[0]["cause"] == "netns-exit", [(e["cause"], e["stack"]) for e in got]
    record("netns-exit", "netns-exit", got)


def test_kernel_side_filters_and_exact_totals_when_the_buffer_overflows(v6diag_module_cmd, tmp_path, watcher,
                                                                         build_lab):
    """--netns and --port compiled into the program (-D cflags): a second watcher
    sees only this namespace's port 4601, while the first sees everything. Its
    perf buffer is one page, so a flush of 1500 entries overflows it: the events
    that did not fit are counted as lost by the kernel, and the totals per cause,
    counted in the kernel, are still exact. (The session watcher uses the ring
    buffer: both buffers run here.)"""
    require_root()
    lab = build_lab(two_hosts(prefix("e")))
    w = Watcher(v6diag_module_cmd, tmp_path, "--netns", lab.name("h"), "--port", "4601",
                "--buffer", "perf", "--buffer-pages", "1")
    burst = 1500
    try:
        assert w.wait_ready() == "kprobe", w.stderr()
        lab.run("p", "iptables", "-A", "OUTPUT", "-m", "conntrack", "--ctstate", "NEW", "-j", "ACCEPT", check=True)
        for port in ("4601", "4602"):
            lab.run("h", "python3", "-c", SEND_UDP, "10.9.0.2", port, "0", check=True)
            lab.run("p", "python3", "-c", SEND_UDP, "10.9.0.1", port, "0", check=True)
        lab.run("h", "conntrack", "-F", check=True)
        lab.run("p", "conntrack", "-F", check=True)
        got = w.wait_for(lambda e: True, timeout=60, count=2)
        lab.run("h", "python3", "-c", SEND_FROM_PORTS, "10.9.0.2", "4601", "20000", str(burst), check=True)
        lab.run("h", "conntrack", "-F", check=True)
        wait_until(lambda: len(w.events) > 2, "events of the burst", timeout=60)
        w.wait_quiet(3)  # the backlog in the buffer is read before watching stops
    finally:
        summary = w.stop()
    # h tracks its own send to p and p's send to it; p's two entries (tracked
    # too) are another namespace, port 4602 another port: compiled out
    assert sorted(e["orig"]["src"] for e in got[:2]) == ["10.9.0.1", "10.9.0.2"], got
    assert {e["orig"]["dport"] for e in w.events} == {4601}
    assert all(e["cause"] == "userspace-flush" and e["netns"] == netns_inode(lab.name("h")) for e in w.events)
    assert any(e["orig"].get("dport") in (4601, 4602) for e in watcher.matching(in_ns(lab, "p")))
    total = 2 + burst
    assert summary and summary["counted_in_kernel"] and summary["buffer"] == "perf", summary
    assert summary["events"] == total and summary["causes"] == {"userspace-flush": total}, summary
    assert summary["lost"] > 0 and summary["reported"] == len(w.events) == total - summary["lost"], summary
    assert summary["uncounted"] == 0 and summary["unread"] == 0


def test_summary_counts_in_the_kernel_and_sends_no_events(v6diag_module_cmd, tmp_path, build_lab):
    """--summary: the program counts and sends nothing; --src is compiled in too
    (p's entries towards h are another source). Totals exact for a 2000-entry flush."""
    require_root()
    lab = build_lab(two_hosts(prefix("s")))
    w = Watcher(v6diag_module_cmd, tmp_path, "--netns", lab.name("h"), "--src", "10.9.0.1", "--summary")
    burst = 2000
    try:
        assert w.wait_ready() == "kprobe", w.stderr()
        lab.run("h", "python3", "-c", SEND_FROM_PORTS, "10.9.0.2", "4701", "20000", str(burst), check=True)
        lab.run("p", "python3", "-c", SEND_UDP, "10.9.0.1", "4702", "0", "5", check=True)
        assert int(lab.run("h", "conntrack", "-C", check=True).stdout) == burst + 1
        lab.run("h", "conntrack", "-F", check=True)
    finally:
        summary = w.stop()
    assert w.events == []
    assert summary["counted_in_kernel"] and summary["buffer"] == "none", summary
    assert summary["events"] == burst and summary["causes"] == {"userspace-flush": burst}, summary
    assert summary["lost"] == 0 and summary["reported"] == 0


def test_fentry_on_a_modular_conntrack_is_refused_with_the_reason(v6diag_module_cmd):
    """Debian's nf_conntrack is a module and bcc 0.26 attaches fentry only to
    vmlinux functions (measured: "nf_ct_delete is not found in vmlinux BTF"), so
    --probe fentry must say exactly that instead of failing to load."""
    require_root()
    assert os.path.exists("/sys/module/nf_conntrack/initstate") or subprocess.run(["modprobe", "nf_conntrack"]).returncode == 0
    r = subprocess.run([*v6diag_module_cmd, "conntrack", "--probe", "fentry", "-d", "1"], capture_output=True, text=True)
    assert r.returncode == 69 and "nf_conntrack module" in r.stderr and "Traceback" not in r.stderr, r.stderr


def test_the_bpf_program_comes_from_the_installed_wheel(v6diag_module_cmd):
    """vm.sh runs the guest's v6diag from a wheel (V6DIAG_CLI): the kprobe the
    watcher attached was compiled from the C file inside that installation."""
    r = subprocess.run([*v6diag_module_cmd, "conntrack", "--ebpf"], capture_output=True, text=True)
    first = r.stdout.splitlines()[0]
    assert r.returncode == 0 and "nf_ct_delete" in r.stdout, r.stderr
    assert "site-packages/v6diag/bpf/conntrack_delete.c" in first, first
    assert str(Path(__file__).resolve().parents[2]) not in first  # not the checkout's bpf/
