"""`v6diag serve` scraped by a real Prometheus server (Debian's `prometheus`,
every second): drops made in two namespaces (UDP with wrong checksums, the
kernel's UDP_CSUM) and conntrack entries deleted with `conntrack -D` must show
in Prometheus as increases of exactly what was done; a watcher whose namespace
is deleted is reported down and comes back with back-off while the others keep
serving; 50 scrapes a second during a flood of drops all succeed, memory stays
flat and every event is either counted or counted as lost; SIGTERM exits 0 and
leaves no tracefs instance behind. This VM has no kernel headers, so the drops
watcher runs on tracefs (host-wide) or, in a namespace, on its counters, and
conntrack on netlink; the BPF sources are the kernel tier's (tests/kernel)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from tests.conftest import require_root, require_tools
from tests.drops_lab import A4, B4, LISTEN, DropsLab, two_hosts
from tests.lab import wait_until
from tests.serve_lab import TRACEFS, Prometheus, get, samples, settled, total

@pytest.fixture(scope="module")
def lab(build_module_lab):
    require_root()
    require_tools("ip", "nft", "ss", "conntrack")
    if not (TRACEFS / "events").exists():
        subprocess.run(["mount", "-t", "tracefs", "nodev", str(TRACEFS)], check=False)
    built = build_module_lab(two_hosts(f"sv{os.getpid() % 10000}"))
    # conntrack runs in a namespace only once a rule needs it
    built.run("b", "nft", "add", "rule", "inet", "v6diag_drops", "input", "ct", "state", "new", "counter", check=True)
    d = DropsLab(built)
    d.start_listener()
    return d


def udp_flows(lab: DropsLab, n: int) -> None:
    """n UDP datagrams from n source ports (good checksums): n conntrack entries in b."""
    script = ("import socket\n"
              f"for i in range({n}):\n"
              "    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)\n"
              f"    s.bind(('{A4}', 41000 + i)); s.sendto(b'x', ('{B4}', {LISTEN})); s.close()\n")
    r = lab.lab.run("a", sys.executable, "-c", script)
    assert r.returncode == 0, r.stderr


def test_prometheus_sees_exactly_the_drops_and_destructions_made(lab, serve, tmp_path):
    require_tools("prometheus")
    s = serve("--watch", "drops", "--watch", "conntrack", "--netns", lab.lab.name("b"))
    s.wait_up("drops")
    s.wait_up("conntrack")
    prom = Prometheus(tmp_path, f"127.0.0.1:{s.port}")
    try:
        wait_until(prom.target_up, "prometheus scraping v6diag serve", timeout=30, interval=0.5)
        csum = 'sum(v6diag_drops_total{reason="UDP_CSUM"}) or vector(0)'
        ct = 'sum(v6diag_conntrack_destroyed_total) or vector(0)'
        base_csum, base_ct = prom.query(csum), prom.query(ct)
        # in a namespace, tracefs (host-wide) is passed over for the namespace's own counters
        assert prom.query('v6diag_watch_up{watch="drops",source="counters"}') == 1
        assert prom.query('v6diag_watch_up{watch="conntrack",source="netlink"}') == 1
        assert prom.query("count(v6diag_build_info)") == 1

        lab.send("udp-bad4", 7)
        lab.send("udp-bad6", 5)
        udp_flows(lab, 9)
        wait_until(lambda: lab.lab.run("b", "conntrack", "-L", "-p", "udp", "--dport", str(LISTEN)).stdout
                   .count(f"dport={LISTEN}") >= 9, "9 conntrack entries in b")
        deleted = lab.lab.run("b", "conntrack", "-D", "-p", "udp", "--dport", str(LISTEN), check=True)
        assert "9 flow entries have been deleted" in deleted.stderr, deleted.stderr

        assert settled(prom, csum, base_csum + 12) == base_csum + 12
        assert settled(prom, ct, base_ct + 9) == base_ct + 9
        assert prom.query('sum(v6diag_drops_total{reason="UDP_CSUM",family="ipv6"})') == 5
        assert prom.query('sum(v6diag_conntrack_destroyed_total{family="ipv4",proto="udp",cause="unknown"})') == 9
        time.sleep(2)  # two more scrapes: nothing counted twice
        assert prom.query(csum) == base_csum + 12 and prom.query(ct) == base_ct + 9
    finally:
        prom.close()
    rc, took = s.stop()
    assert rc == 0, s.log.read_text()
    print(f"SIGTERM to exit: {took:.3f} s")
    assert not list((TRACEFS / "instances").glob(f"v6diag-drops-{s.proc.pid}-*")), "tracefs instance left behind"
    kinds = [e["event"] for e in s.events()]
    assert kinds[0] == "serving" and kinds[-1] == "exit" and kinds.count("up") == 2


def test_watchers_whose_namespace_is_deleted_are_down_then_back(serve, tmp_path):
    require_root()
    require_tools("ip")
    name = f"v6diag-serve-gone-{os.getpid()}"
    subprocess.run(["ip", "netns", "add", name], check=True)
    try:
        s = serve("--watch", "conntrack", "--watch", "drops", "--netns", name, "--probe", "conntrack=netlink")
        s.wait_up("conntrack")
        s.wait_up("drops")
        subprocess.run(["ip", "netns", "del", name], check=True)
        for watch in ("conntrack", "drops"):
            wait_until(lambda: total(s.metrics(), "v6diag_watch_up", watch=watch) == 0, f"{watch} down",
                       timeout=30, interval=0.2)
        down = {e["watch"]: e["reason"] for e in s.events() if e["event"] == "down"}
        assert set(down) == {"conntrack", "drops"} and all("deleted" in r for r in down.values()), s.events()
        # the server itself keeps answering
        assert json.loads(get(s.url + "/healthz"))["watches"] == {"conntrack": "down", "drops": "down"}
        assert total(s.metrics(), "v6diag_build_info") == 1
        subprocess.run(["ip", "netns", "add", name], check=True)
        s.wait_up("conntrack", timeout=90)  # retried with back-off (1, 2, 4... s)
        s.wait_up("drops", timeout=90)
        assert [e["event"] for e in s.events() if e.get("watch") == "conntrack"][-1] == "up"
        rc, _ = s.stop()
        assert rc == 0
    finally:
        subprocess.run(["ip", "netns", "del", name], check=False)


def test_unavailable_watcher_is_down_and_the_server_still_serves(serve):
    require_root()
    s = serve("--watch", "checksum:v6diag-none0", "--watch", "drops")
    s.wait_up("drops")
    wait_until(lambda: any(e["event"] == "down" for e in s.events()), "the checksum watcher down")
    text = s.metrics()
    assert total(text, "v6diag_watch_up", watch="checksum:v6diag-none0") == 0
    down = [e for e in s.events() if e["event"] == "down"][0]
    assert down["watch"] == "checksum:v6diag-none0" and "v6diag-none0" in down["reason"]
    assert s.stop()[0] == 0


def rss_kib(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    raise AssertionError("no VmRSS")


def test_fifty_scrapes_a_second_during_a_flood(lab, serve):
    s = serve("--watch", "drops", "--probe", "drops=tracefs")  # an event per drop, and overruns counted
    s.wait_up("drops")
    lab.send("udp-bad4", 200)  # warm: every label set exists before memory is measured
    wait_until(lambda: total(s.metrics(), "v6diag_drops_total", reason="UDP_CSUM") >= 1, "warm-up drops")
    base = total(s.metrics(), "v6diag_drops_total", reason="UDP_CSUM")
    base_lost = total(s.metrics(), "v6diag_events_lost_total", watch="drops")
    rss0 = rss_kib(s.proc.pid)
    failures, scrapes, stop = [], [0], threading.Event()

    def scraper():
        while not stop.is_set():
            t = time.monotonic()
            try:
                assert "v6diag_drops_total" in s.metrics()
                scrapes[0] += 1
            except Exception as e:  # every failure is a test failure below
                failures.append(repr(e))
            stop.wait(max(0.0, 0.02 - (time.monotonic() - t)))

    threads = [threading.Thread(target=scraper) for _ in range(2)]  # 2 x 50/s: at least 50 a second
    for t in threads:
        t.start()
    sent = 0
    try:
        for _ in range(5):
            lab.send("udp-bad4", 4000)
            sent += 4000
    finally:
        time.sleep(1)
        stop.set()
        for t in threads:
            t.join()
    assert not failures, failures[:3]
    wait_until(lambda: total(s.metrics(), "v6diag_drops_total", reason="UDP_CSUM")
               + total(s.metrics(), "v6diag_events_lost_total", watch="drops") - base - base_lost >= sent,
               "every flooded drop counted or counted lost", timeout=30, interval=0.5)
    counted = total(s.metrics(), "v6diag_drops_total", reason="UDP_CSUM") - base
    assert counted <= sent  # tracefs is host-wide, but only this test makes UDP checksum errors
    rss1 = rss_kib(s.proc.pid)
    print(f"{scrapes[0]} scrapes, {sent} drops sent, {counted:.0f} counted, RSS {rss0} -> {rss1} KiB")
    assert rss1 - rss0 < 16 * 1024, (rss0, rss1)  # flat: no per-event or per-scrape growth
    assert s.stop()[0] == 0


def test_checksum_watcher_counts_verdicts_and_the_kernel_drops_them(serve, build_lab):
    """A real VXLAN: 7 frames with a wrong outer UDP checksum into b, where the
    checksum watcher captures on the underlay and the drops watcher sees the
    kernel throw the same 7 away (UDP_CSUM, from b's own counters)."""
    require_root()
    require_tools("ip", "ethtool")
    from tests.vxlan_lab import VxlanLab

    lab = build_lab(VxlanLab(8472, 4))
    s = serve("--watch", "checksum:u0", "--watch", "drops", "--netns", lab.b)
    s.wait_up("checksum:u0")
    s.wait_up("drops")
    base = total(s.metrics(), "v6diag_drops_total", reason="UDP_CSUM")
    lab.traffic(datagrams=5, tcp_bytes=2000)
    lab.inject_bad_outer_udp(7)
    wait_until(lambda: total(s.metrics(), "v6diag_checksum_packets_total", interface="u0",
                             verdict="outer_udp_bad") == 7, "7 outer_udp_bad", timeout=30, interval=0.2)
    wait_until(lambda: total(s.metrics(), "v6diag_drops_total", reason="UDP_CSUM") - base == 7, "7 UDP_CSUM drops",
               timeout=30, interval=0.2)
    text = s.metrics()
    # by exact name: prometheus_client 0.16 (the floor) adds *_created series too
    seen = {k: v for k, v in samples(text).items() if k.split("{")[0] == "v6diag_checksum_packets_total"}
    # the tunnel's own traffic came too (partial: veth keeps CHECKSUM_PARTIAL, and the
    # kernel says so); of everything, only the 7 are called bad
    assert sum(seen.values()) > 7 + 5, seen
    assert sum(v for k, v in seen.items() if "_bad" in k) == 7, seen
    assert s.stop()[0] == 0


def test_discover_watcher_counts_the_devices_on_the_link(serve, build_lab):
    require_root()
    require_tools("ip")
    from tests.lab import HostSpec, LanLab, default_hosts

    lab = build_lab(LanLab(default_hosts(6)))
    s = serve("--watch", f"discover:{LanLab.PROBER_IF}", "--netns", lab.prober, "--discover-interval", "300")
    wait_until(lambda: total(s.metrics(), "v6diag_link_devices", interface=LanLab.PROBER_IF) == 6,
               "6 devices", timeout=30, interval=0.2)
    assert total(s.metrics(), "v6diag_watch_up", watch=f"discover:{LanLab.PROBER_IF}", source="probe") == 1
    # a device that boots after the window (DAD, MLD reports) is heard passively, long
    # before the next window (300 s away)
    lab.add_host(HostSpec("h60", "b8:27:eb:60:60:60", "Raspberry Pi", "eui64", "answers-echo"))
    wait_until(lambda: total(s.metrics(), "v6diag_link_devices", interface=LanLab.PROBER_IF) == 7,
               "the 7th device, heard passively", timeout=30, interval=0.2)
    assert s.stop()[0] == 0
