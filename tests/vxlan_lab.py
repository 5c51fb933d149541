"""Two namespaces joined by a veth underlay and a real VXLAN tunnel over it.

    with VxlanLab(port=8472, underlay=4) as lab:
        lab.traffic()                      # UDP, TCP and ping from A to B over the tunnel
        lab.set_offload("a", False)        # ethtool -K vx0/u0 tx-checksum-ip-generic off in A
        lab.inject_bad_outer_udp(5)        # frames with a wrong outer UDP checksum, A -> B

Every namespace is deleted on exit, on failure and at interpreter exit."""

from __future__ import annotations

import itertools
import json
import os
import subprocess
import sys

from tests.lab import NamespaceLab, sh, v6diag_command

_IDS = itertools.count()

SERVER = r"""
import socket, threading, time
def tcp(fam, addr):
    s = socket.socket(fam, socket.SOCK_STREAM)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    if fam == socket.AF_INET6:
        s.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1)
    s.bind((addr, 5001)); s.listen()
    while True:
        c, _ = s.accept()
        while c.recv(65536):
            pass
        c.close()
def udp(fam, addr):
    s = socket.socket(fam, socket.SOCK_DGRAM)
    if fam == socket.AF_INET6:
        s.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1)
    s.bind((addr, 5000))
    while True:
        s.recv(65536)
for fam, a in ((socket.AF_INET, "0.0.0.0"), (socket.AF_INET6, "::")):
    threading.Thread(target=tcp, args=(fam, a), daemon=True).start()
    threading.Thread(target=udp, args=(fam, a), daemon=True).start()
print("ready", flush=True)
time.sleep(3600)
"""

CLIENT = r"""
import socket, sys
for fam, dst in ((socket.AF_INET, sys.argv[1]), (socket.AF_INET6, sys.argv[2])):
    u = socket.socket(fam, socket.SOCK_DGRAM)
    for i in range(int(sys.argv[3])):
        u.sendto(b"q" * (20 + (i * 97) % 1200), (dst, 5000))
    t = socket.create_connection((dst, 5001), timeout=5)
    t.sendall(b"z" * int(sys.argv[4]))
    t.close()
"""

INJECT = r"""
import socket, sys
from scapy.layers.l2 import Ether
from scapy.layers.inet import IP, UDP
from scapy.layers.inet6 import IPv6
from scapy.layers.vxlan import VXLAN
src_mac, dst_mac, src, dst, port, isrc_mac, idst_mac, n = sys.argv[1:9]
outer = IP(src=src, dst=dst) if ":" not in src else IPv6(src=src, dst=dst)
frames = []
for i in range(int(n)):
    inner = Ether(src=isrc_mac, dst=idst_mac) / IP(src="192.168.42.1", dst="192.168.42.2") \
        / UDP(sport=40000 + i, dport=5000) / (b"bad outer checksum %d" % i)
    pkt = Ether(src=src_mac, dst=dst_mac) / outer / UDP(sport=50000 + i, dport=int(port)) / VXLAN(vni=42) / inner
    good = Ether(bytes(pkt))[UDP].chksum
    pkt[UDP].chksum = good ^ 0x5a5a  # wrong, and not the partial (pseudo-header) value
    frames.append(bytes(pkt))
s = socket.socket(socket.AF_PACKET, socket.SOCK_RAW)
s.bind(("u0", 0))
for f in frames:
    s.send(f)
"""


class VxlanLab(NamespaceLab):
    VNI = 42

    def __init__(self, port: int = 8472, underlay: int = 4):
        n = f"{os.getpid() % 100000}{next(_IDS)}"
        self.a, self.b = f"v6dvx{n}a", f"v6dvx{n}b"
        self.port, self.underlay = port, underlay
        super().__init__()

    def addr(self, side: str, what: str) -> str:
        i = 1 if side == "a" else 2
        return {"u4": f"10.9.0.{i}", "u6": f"fd09::{i}", "o4": f"192.168.42.{i}", "o6": f"fd42::{i}"}[what]

    def ns(self, side: str) -> str:
        return self.a if side == "a" else self.b

    def _build(self) -> None:
        for ns in (self.a, self.b):
            self.add_ns(ns)
        sh("ip", "-n", self.a, "link", "add", "u0", "type", "veth", "peer", "name", "u0", "netns", self.b)
        u = "u4" if self.underlay == 4 else "u6"
        plen = 24 if self.underlay == 4 else 64
        for side in "ab":
            other = "b" if side == "a" else "a"
            sh("ip", "netns", "exec", self.ns(side), "sh", "-ec", f"""
                sysctl -qw net.ipv6.conf.all.accept_dad=0 net.ipv6.conf.default.accept_dad=0
                ip link set lo up
                ip addr add {self.addr(side, u)}/{plen} dev u0 nodad 2>/dev/null || ip addr add {self.addr(side, u)}/{plen} dev u0
                ip link set u0 up
                ip link add vx0 type vxlan id {self.VNI} dstport {self.port} local {self.addr(side, u)} \
                    remote {self.addr(other, u)} dev u0 udpcsum
                ip addr add {self.addr(side, 'o4')}/24 dev vx0
                ip addr add {self.addr(side, 'o6')}/64 dev vx0 nodad
                ip link set vx0 up""")
        server = self.spawn(self.b, sys.executable, "-c", SERVER, stdout=subprocess.PIPE,
                            stderr=subprocess.DEVNULL, text=True)
        assert server.stdout.readline().strip() == "ready"
        # neighbours first, so every later packet is data
        for o in ("o4", "o6"):
            sh("ip", "netns", "exec", self.a, "ping", "-c1", "-W2", self.addr("b", o), check=False)

    def link(self, side: str, dev: str) -> dict:
        return json.loads(sh("ip", "-n", self.ns(side), "-j", "link", "show", dev).stdout)[0]

    def traffic(self, datagrams: int = 10, tcp_bytes: int = 20000) -> None:
        sh("ip", "netns", "exec", self.a, sys.executable, "-c", CLIENT, self.addr("b", "o4"),
           self.addr("b", "o6"), str(datagrams), str(tcp_bytes))
        sh("ip", "netns", "exec", self.a, "ping", "-c2", "-i0.2", self.addr("b", "o4"), check=False)

    def set_offload(self, side: str, on: bool, devices: tuple[str, ...] = ("vx0", "u0")) -> None:
        for dev in devices:
            sh("ip", "netns", "exec", self.ns(side), "ethtool", "-K", dev, "tx-checksum-ip-generic",
               "on" if on else "off")

    def inject_bad_outer_udp(self, n: int) -> None:
        u = "u4" if self.underlay == 4 else "u6"
        sh("ip", "netns", "exec", self.a, sys.executable, "-c", INJECT, self.link("a", "u0")["address"],
           self.link("b", "u0")["address"], self.addr("a", u), self.addr("b", u), str(self.port),
           self.link("a", "vx0")["address"], self.link("b", "vx0")["address"], str(n))

    def in_csum_errors(self, side: str) -> dict:
        code = "from v6diag.checksum.host import udp_in_csum_errors as f; import json; print(json.dumps(f()))"
        return json.loads(sh("ip", "netns", "exec", self.ns(side), sys.executable, "-c", code).stdout)


def run_live_checksum(lab: VxlanLab, side: str, action, seconds: float = 4.0, *extra: str) -> dict:
    """Run `v6diag checksum -i u0 --json` in `side` while `action()` runs."""
    proc = subprocess.Popen(["ip", "netns", "exec", lab.ns(side), *v6diag_command(), "checksum",
                             "-i", "u0", "-d", str(seconds), "--json", *extra],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    line = proc.stderr.readline()  # "capturing on u0 ...": printed once the socket is bound
    assert "capturing" in line, line
    action()
    out, err = proc.communicate(timeout=seconds + 60)
    assert proc.returncode in (0, 1), err
    return json.loads(out)
