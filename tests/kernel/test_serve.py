"""`v6diag serve` with the BPF sources in the stock 6.1 kernel (bcc, headers and
kprobes are there): the kprobe on nf_ct_delete for conntrack (causes from the
kernel stack) and the skb:kfree_skb program for drops (family and protocol from
the packets), both filtered on one namespace in the kernel, scraped by a real
Prometheus server every second; the counters must rise by exactly what was done."""

from __future__ import annotations

import os
import sys

from tests.conftest import require_root, require_tools
from tests.drops_lab import A4, B4, LISTEN, DropsLab, two_hosts
from tests.lab import wait_until
from tests.serve_lab import Prometheus, settled


def test_bpf_watchers_exported_exactly(serve, tmp_path, build_lab):
    require_root()
    require_tools("nft", "ss", "conntrack", "prometheus")
    ns = build_lab(two_hosts(f"ks{os.getpid() % 10000}"))
    ns.run("b", "nft", "add", "rule", "inet", "v6diag_drops", "input", "ct", "state", "new", "counter", check=True)
    lab = DropsLab(ns)
    lab.start_listener()
    s = serve("--watch", "conntrack", "--watch", "drops", "--netns", ns.name("b"))
    s.wait_up("drops", timeout=900)  # two bcc compiles under an emulated CPU
    s.wait_up("conntrack", timeout=900)
    prom = Prometheus(tmp_path, f"127.0.0.1:{s.port}")
    try:
        print(s.log.read_text())
        wait_until(prom.target_up, "prometheus scraping v6diag serve", timeout=60, interval=0.5)
        assert prom.query('v6diag_watch_up{watch="drops",source="bpf"}') == 1, s.log.read_text()
        assert prom.query('v6diag_watch_up{watch="conntrack",source="bpf"}') == 1, s.log.read_text()
        lab.send("udp-bad4", 7)
        lab.send("udp-bad6", 5)
        script = ("import socket\n"
                  "for i in range(9):\n"
                  "    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)\n"
                  f"    s.bind(('{A4}', 41000 + i)); s.sendto(b'x', ('{B4}', {LISTEN})); s.close()\n")
        assert ns.run("a", sys.executable, "-c", script).returncode == 0
        wait_until(lambda: ns.run("b", "conntrack", "-L", "-p", "udp", "--dport", str(LISTEN)).stdout
                   .count(f"dport={LISTEN}") >= 9, "9 conntrack entries in b")
        ns.run("b", "conntrack", "-D", "-p", "udp", "--dport", str(LISTEN), check=True)
        v4 = 'sum(v6diag_drops_total{reason="UDP_CSUM",family="ipv4",proto="udp"})'
        v6 = 'sum(v6diag_drops_total{reason="UDP_CSUM",family="ipv6",proto="udp"})'
        deleted = 'sum(v6diag_conntrack_destroyed_total{cause="userspace-delete",family="ipv4",proto="udp"})'
        assert settled(prom, v4, 7, timeout=60) == 7
        assert settled(prom, v6, 5, timeout=60) == 5
        assert settled(prom, deleted, 9, timeout=60) == 9
        assert (prom.query("sum(v6diag_events_lost_total)") or 0) == 0
    finally:
        prom.close()
    rc, took = s.stop()
    print(f"SIGTERM to exit with two BPF programs attached: {took:.2f} s")
    assert rc == 0, s.log.read_text()
    print(s.log.read_text())
    assert [e["event"] for e in s.events()][-1] == "exit"
