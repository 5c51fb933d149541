"""Two namespaces over a veth where the kernel drops packets for known reasons:
a UDP listener (IPv4 and IPv6) that receives datagrams with wrong checksums,
a closed UDP port, and an nftables rule dropping TCP SYNs to one port. The
packets are crafted by scapy in namespace a and never leave the pair."""

from __future__ import annotations

import sys

from tests.lab import Namespaces, wait_until

A4, B4, A6, B6 = "10.77.0.1", "10.77.0.2", "fd00:77::1", "fd00:77::2"
LISTEN, CLOSED, FIREWALLED = 5001, 5003, 5002
INNER1, INNER2 = "192.168.9.1", "192.168.9.2"  # the flow inside the GENEVE packets

LISTENER = f"""
import socket, time
socks = []
for fam, addr in ((socket.AF_INET, "0.0.0.0"), (socket.AF_INET6, "::")):
    s = socket.socket(fam, socket.SOCK_DGRAM)
    if fam == socket.AF_INET6:
        s.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1)
    s.bind((addr, {LISTEN})); socks.append(s)
print("listening", flush=True)
time.sleep(3600)
"""

SEND = """
import sys
from scapy.all import IP, IPv6, TCP, UDP, Ether, sendp, conf
conf.verb = 0
what, n = sys.argv[1], int(sys.argv[2])
dst_mac = sys.argv[3]
if what == "udp-bad4":
    pkt = IP(src="{A4}", dst="{B4}") / UDP(sport=40000, dport={LISTEN}, chksum=0x1234) / b"bad"
elif what == "udp-bad6":
    pkt = IPv6(src="{A6}", dst="{B6}") / UDP(sport=40000, dport={LISTEN}, chksum=0x1234) / b"bad"
elif what == "udp-closed6":
    pkt = IPv6(src="{A6}", dst="{B6}") / UDP(sport=40001, dport={CLOSED}) / b"x"
elif what == "syn6":
    pkt = IPv6(src="{A6}", dst="{B6}") / TCP(sport=40002, dport={FIREWALLED}, flags="S")
elif what == "geneve-bad4":
    # RFC 8926 3: Opt Len 1 (one 4-byte option), Protocol Type 0x6558 (Ethernet), VNI 42
    head = bytes([0x01, 0x00, 0x65, 0x58, 0, 0, 42, 0]) + bytes([0x01, 0x02, 0x03, 0x00])
    inner = Ether(src="02:00:00:00:09:01", dst="02:00:00:00:09:02") / IP(src="{I1}", dst="{I2}") \
        / UDP(sport=41000, dport=5009) / b"inner"
    pkt = IP(src="{A4}", dst="{B4}") / UDP(sport=50001, dport=6081, chksum=0x1234) / (head + bytes(inner))
sendp([Ether(dst=dst_mac) / pkt] * n, iface="eth0")
""".format(A4=A4, B4=B4, A6=A6, B6=B6, LISTEN=LISTEN, CLOSED=CLOSED, FIREWALLED=FIREWALLED, I1=INNER1, I2=INNER2)


def two_hosts(prefix: str) -> Namespaces:
    return Namespaces(prefix, ["a", "b"], [
        ("a", f"""
ip link add eth0 type veth peer name eth0 netns @b
ip addr add {A4}/24 dev eth0
ip addr add {A6}/64 dev eth0 nodad
ip link set eth0 up
ip -n @b addr add {B4}/24 dev eth0
ip -n @b addr add {B6}/64 dev eth0 nodad
ip -n @b link set eth0 up
"""),
        ("b", f"""
nft add table inet v6diag_drops
nft add chain inet v6diag_drops input '{{ type filter hook input priority 0; }}'
nft add rule inet v6diag_drops input tcp dport {FIREWALLED} drop
"""),
    ])


class DropsLab:
    def __init__(self, lab: Namespaces):
        self.lab = lab
        self.b_mac = lab.run("b", "cat", "/sys/class/net/eth0/address", check=True).stdout.strip()

    def start_listener(self):
        import subprocess

        p = self.lab.spawn(self.lab.name("b"), sys.executable, "-c", LISTENER, stdout=subprocess.PIPE, text=True)
        assert p.stdout.readline().strip() == "listening"
        wait_until(lambda: str(LISTEN) in self.lab.run("b", "ss", "-uln").stdout, "the UDP listener")
        return p

    def send(self, what: str, n: int) -> None:
        r = self.lab.run("a", sys.executable, "-c", SEND, what, str(n), self.b_mac, timeout=60)
        assert r.returncode == 0, r.stderr


class DropWatcher:
    """`v6diag drops --json` running in the background; events kept in memory as
    they come (a thread), the summary once stopped with Ctrl-C."""

    def __init__(self, cmd: list[str], tmp, *args: str):
        import json
        import subprocess
        import threading
        import time

        self.ready = tmp / f"drops-ready-{time.monotonic_ns()}"
        self.stderr_path = tmp / f"drops-stderr-{time.monotonic_ns()}"
        self.events: list[dict] = []
        self.summary: dict | None = None
        self.proc = subprocess.Popen([*cmd, "drops", "--json", "--ready-file", str(self.ready), *args],
                                     stdout=subprocess.PIPE, stderr=open(self.stderr_path, "w"), text=True)

        def read():
            for line in self.proc.stdout:
                obj = json.loads(line)
                if "summary" in obj:
                    self.summary = obj["summary"]
                else:
                    self.events.append(obj)

        self._reader = threading.Thread(target=read, daemon=True)
        self._reader.start()

    def wait_ready(self, timeout: float = 600) -> str:
        wait_until(lambda: self.ready.exists() or self.proc.poll() is not None, "drops --ready-file",
                   timeout=timeout, interval=0.5)
        if not self.ready.exists():
            raise AssertionError(f"v6diag drops never became ready: {self.stderr_path.read_text()}")
        return self.ready.read_text().strip()

    def wait_for(self, pred, count: int, timeout: float = 60) -> list[dict]:
        try:
            return wait_until(lambda: (got := [e for e in self.events if pred(e)]) and len(got) >= count and got,
                              f"{count} drop events", timeout=timeout, interval=0.2)
        except AssertionError:
            return [e for e in self.events if pred(e)]

    def stop(self) -> dict | None:
        import subprocess

        if self.proc.poll() is None:
            self.proc.send_signal(2)
            try:
                self.proc.wait(timeout=120)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self._reader.join(timeout=10)
        return self.summary
