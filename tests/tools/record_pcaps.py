#!/usr/bin/env python3
"""Re-record the bundled captures in pcaps/ from a namespace lab (needs root).

    sudo .venv/bin/python tests/tools/record_pcaps.py

Writes, next to each capture, `<name>.truth.json`: what the lab really had
(MACs, expected vendors, addresses read back with `ip -j addr`), which the unit
tests compare v6diag's passive reading of the capture against.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from dataclasses import asdict
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

from tests.lab import HostSpec, LanLab, v6diag_command  # noqa: E402

V6DIAG = v6diag_command()
PCAPS = ROOT / "pcaps"


def truth(lab: LanLab, hosts: list[HostSpec], **extra) -> dict:
    return {"prober_mac": lab.PROBER_MAC, "hosts": [asdict(h) for h in hosts], **extra}


def start_dumpcap(lab: LanLab, path: Path) -> subprocess.Popen:
    path.unlink(missing_ok=True)
    p = subprocess.Popen(["ip", "netns", "exec", lab.prober, "dumpcap", "-q", "-i", lab.PROBER_IF,
                          "-f", "ip6", "-w", str(path)], stderr=subprocess.PIPE)
    for _ in range(100):  # dumpcap prints nothing when ready; wait for the file
        if path.exists() and path.stat().st_size > 0:
            break
        time.sleep(0.05)
    time.sleep(0.3)
    return p


def stop(p: subprocess.Popen) -> None:
    time.sleep(0.3)
    p.terminate()
    p.wait(timeout=10)


def record_discover_lan() -> None:
    """v6diag's own burst on the 32-host lab, written by --write (pcap) while
    dumpcap records the same link (pcapng, with the interface name)."""
    with LanLab() as lab:
        ng = PCAPS / "discover-lan.pcapng"
        cap = start_dumpcap(lab, ng)
        r = lab.exec_prober(*V6DIAG, "discover", "-i", lab.PROBER_IF, "--json",
                            "--write", str(PCAPS / "discover-lan.pcap"))
        stop(cap)
        assert r.returncode == 0, r.stderr
        (PCAPS / "discover-lan.truth.json").write_text(json.dumps(truth(lab, lab.hosts), indent=1) + "\n")


def record_link_up() -> None:
    """No probing at all: four devices boot onto the link (DAD, RS, MLD reports)."""
    with LanLab(hosts=[]) as lab:
        path = PCAPS / "link-up-passive.pcapng"
        cap = start_dumpcap(lab, path)
        joined = [
            HostSpec("h40", "b8:27:eb:aa:40:01", "Raspberry Pi", "eui64", "answers-echo"),
            HostSpec("h41", "00:11:32:aa:41:02", "Synology", "stable-privacy", "answers-echo",
                     global_address=True),
            HostSpec("h42", "f0:18:98:aa:42:03", "Apple", "random", "ignores-all-echo"),
            HostSpec("h43", "5e:11:22:aa:43:04", None, "low-byte", "answers-echo"),
        ]
        for h in joined:
            lab.add_host(h, dad=True)
        for h in joined:
            lab.wait_addresses(h)
        time.sleep(1.0)
        stop(cap)
        (PCAPS / "link-up-passive.truth.json").write_text(json.dumps(truth(lab, joined), indent=1) + "\n")


def record_names() -> None:
    """discover with names and the --ipv4 sweep on the naming LAN (real avahi-daemons)."""
    from tests.lab import names_hosts

    with LanLab(names_hosts()) as lab:
        path = PCAPS / "discover-names.pcapng"
        r = lab.exec_prober(*V6DIAG, "discover", "-i", lab.PROBER_IF, "--ipv4", "--json", "--write", str(path))
        assert r.returncode == 0, r.stderr
        (PCAPS / "discover-names.truth.json").write_text(json.dumps(truth(lab, lab.hosts), indent=1) + "\n")


def _tcpdump(ns: str, path: Path) -> subprocess.Popen:
    path.unlink(missing_ok=True)
    p = subprocess.Popen(["ip", "netns", "exec", ns, "tcpdump", "-i", "u0", "--immediate-mode", "-U", "-s", "0", "-w", str(path),
                          "udp"], stderr=subprocess.PIPE, text=True)
    assert "listening" in p.stderr.readline()
    return p


def record_vxlan() -> None:
    """Real VXLAN (dstport 8472, udpcsum, IPv4 underlay) between two namespaces."""
    from tests.vxlan_lab import VxlanLab

    with VxlanLab(8472, 4) as lab:
        cap = _tcpdump(lab.a, PCAPS / "vxlan-offload-on.pcap")  # the sender, offload on
        lab.traffic(datagrams=6, tcp_bytes=8000)
        stop(cap)
        lab.set_offload("a", False)
        lab.set_offload("b", False)
        cap = _tcpdump(lab.a, PCAPS / "vxlan-offload-off.pcap")
        lab.traffic(datagrams=6, tcp_bytes=8000)
        stop(cap)
        cap = _tcpdump(lab.b, PCAPS / "vxlan-bad-outer-udp.pcap")  # the receiver
        before = lab.in_csum_errors("b")
        lab.traffic(datagrams=3, tcp_bytes=2000)
        lab.inject_bad_outer_udp(5)
        stop(cap)
        after = lab.in_csum_errors("b")
        (PCAPS / "vxlan.truth.json").write_text(json.dumps({
            "port": 8472, "underlay": 4, "injected_bad_outer_udp": 5,
            "receiver_in_csum_errors": after["ipv4"] - before["ipv4"],
        }, indent=1) + "\n")


def record_trace() -> None:
    """radvd (O flag only) + kea with a PD pool, dhcpcd without and with ia_pd;
    and the tunnel server's external link while upstream pings the client."""
    from tests.trace_lab import RouterLab, TunnelLab, capture

    with RouterLab() as lab:
        lab.start(managed=False)
        capture(lab.r, "r0", PCAPS / "trace-o-flag-info-request.pcap", lambda: lab.dhcpcd(ia_pd=False))
        capture(lab.r, "r0", PCAPS / "trace-pd-delegated.pcap", lambda: lab.dhcpcd(ia_pd=True))
    for fixed, name in ((False, "trace-tunnel-no-proxy.pcap"), (True, "trace-tunnel-proxy.pcap")):
        with TunnelLab(proxy=fixed, forwarding=fixed) as lab:
            capture(lab.srv, "e0", PCAPS / name, lab.ping_client_from_upstream, settle=1.0)
    (PCAPS / "trace.truth.json").write_text(json.dumps({
        "delegated_prefix": "2001:db8:d00::/56", "tunnel_client": TunnelLab.CLIENT, "tunnel_interface": "e0",
    }, indent=1) + "\n")


if __name__ == "__main__":
    which = sys.argv[1:] or ["discover", "names", "link-up", "vxlan", "trace"]
    if "discover" in which:
        record_discover_lan()
    if "names" in which:
        record_names()
    if "link-up" in which:
        record_link_up()
    if "vxlan" in which:
        record_vxlan()
    if "trace" in which:
        record_trace()
    for p in sorted(PCAPS.glob("*.pcap*")):
        os.chown(p, 0, 0)  # tcpdump/dumpcap leave their own user and mode 600 behind
        p.chmod(0o644)
        print(p.name, p.stat().st_size)
