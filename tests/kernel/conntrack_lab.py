"""Namespaces that make the kernel destroy conntrack entries for known reasons,
and a long-lived `v6diag conntrack` watcher that all kernel tests share (the BPF
program takes over a minute to compile under the emulated CPU: once per suite).

Every namespace has a per-run prefix and is deleted on exit, even on failure.
Traffic stays inside them."""

from __future__ import annotations

import json
import os
import subprocess
import threading
import time
from pathlib import Path

from tests.lab import Namespaces, wait_until

ECHO_SERVER = """
import socket, sys, threading
s = socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind((sys.argv[1], int(sys.argv[2]))); s.listen(16)
def serve(c):
    with c:
        while (d := c.recv(4096)):
            c.sendall(d)
while True:
    c, _ = s.accept(); threading.Thread(target=serve, args=(c,), daemon=True).start()
"""

ECHO_CLIENT = """
import socket, sys, time
ok = 0
try:
    c = socket.create_connection((sys.argv[1], int(sys.argv[2])), timeout=4)
    c.settimeout(4)
    for i in range(int(sys.argv[3])):
        c.sendall(b"ping %d" % i)
        ok += c.recv(64) == b"ping %d" % i
        time.sleep(0.2)
except OSError as e:
    print("error", e, file=sys.stderr)
print(ok)
"""


def netns_inode(name: str) -> int:
    return os.stat(f"/run/netns/{name}").st_ino


class Watcher:
    """`v6diag conntrack --json --all` for the whole session; events kept in memory."""

    def __init__(self, cmd: list[str], tmp: Path, *args: str):
        self.ready = tmp / f"ready-{len(args)}-{time.monotonic_ns()}"
        self.stderr_path = tmp / f"stderr-{time.monotonic_ns()}"
        self.events: list[dict] = []
        self.summary: dict | None = None
        self._lock = threading.Lock()
        self.proc = subprocess.Popen([*cmd, "conntrack", "--json", "--all", "--ready-file", str(self.ready), *args],
                                     stdout=subprocess.PIPE, stderr=open(self.stderr_path, "w"), text=True)
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        for line in self.proc.stdout:
            obj = json.loads(line)
            with self._lock:
                if obj.get("summary"):
                    self.summary = obj
                else:
                    self.events.append(obj)

    def wait_ready(self, timeout: float = 600) -> str:
        """The mode the watcher wrote to its --ready-file once attached (minutes under TCG)."""
        wait_until(lambda: self.ready.exists() or self.proc.poll() is not None, "the --ready-file",
                   timeout=timeout, interval=0.5)
        if not self.ready.exists():
            raise AssertionError(f"v6diag conntrack never became ready: {self.stderr()}")
        return self.ready.read_text().strip()

    def stderr(self) -> str:
        return self.stderr_path.read_text()

    def wait_for(self, pred, timeout: float = 60, count: int = 1) -> list[dict]:
        """Events matching pred, once at least `count` of them arrived ([] on timeout)."""
        def enough():
            got = self.matching(pred)
            return got if len(got) >= count else None

        try:
            return wait_until(enough, f"{count} conntrack events", timeout=timeout, interval=0.2)
        except AssertionError:
            return self.matching(pred)

    def wait_quiet(self, seconds: float, timeout: float = 300) -> None:
        """Until no event has arrived for `seconds` (a backlog worked off)."""
        last, since = -1, time.monotonic()
        deadline = time.monotonic() + timeout
        while time.monotonic() - since < seconds and time.monotonic() < deadline:
            if len(self.events) != last:
                last, since = len(self.events), time.monotonic()
            time.sleep(0.2)

    def matching(self, pred) -> list[dict]:
        with self._lock:
            return [e for e in self.events if pred(e)]

    def stop(self) -> dict | None:
        if self.proc.poll() is None:
            self.proc.send_signal(2)  # Ctrl-C: the command detaches and prints its summary
            try:
                self.proc.wait(timeout=300)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self._reader.join(timeout=10)
        return self.summary


def pair(a: str, a_if: str, b: str, b_if: str) -> str:
    """Shell lines (run in namespace a) creating a veth pair a_if <-> b_if in b."""
    return f"ip link add {a_if} type veth peer name {b_if} netns @{b}\nip link set {a_if} up\n"


def dual_wan(prefix: str, misplaced_accept: bool) -> Namespaces:
    """The seed's router: host 192.168.1.10 is policy-routed out wan1 by fwmark 1,
    everything else leaves by wan2, both masqueraded. With misplaced_accept an
    ACCEPT after MARK skips `CONNMARK --save-mark`: later packets of the flow have
    mark 0, route out wan2, and nf_nat_inet_fn kills the entry (oif changed).
    Host 192.168.1.11 is not marked at all: it must never see that."""
    accept = "iptables -t mangle -A PREROUTING -i lan -m mark --mark 1 -j ACCEPT\n" if misplaced_accept else ""
    return Namespaces(prefix, ["inet", "cl", "rtr"], [
        ("rtr", pair("rtr", "lan", "cl", "eth0") + pair("rtr", "wan1", "inet", "i1") + pair("rtr", "wan2", "inet", "i2") + f"""
ip addr add 192.168.1.1/24 dev lan
ip addr add 10.1.0.2/24 dev wan1
ip addr add 10.2.0.2/24 dev wan2
sysctl -qw net.ipv4.ip_forward=1 net.ipv4.conf.all.rp_filter=0
ip route add default via 10.2.0.1
ip route add default via 10.1.0.1 table 100
ip rule add fwmark 1 lookup 100
iptables -t mangle -A PREROUTING -i lan -j CONNMARK --restore-mark
iptables -t mangle -A PREROUTING -i lan -s 192.168.1.10 -m conntrack --ctstate NEW -j MARK --set-mark 1
{accept}iptables -t mangle -A PREROUTING -i lan -j CONNMARK --save-mark
iptables -t nat -A POSTROUTING -o wan1 -j MASQUERADE
iptables -t nat -A POSTROUTING -o wan2 -j MASQUERADE
"""),
        ("rtr", """
ip -n @cl addr add 192.168.1.10/24 dev eth0
ip -n @cl addr add 192.168.1.11/24 dev eth0
ip -n @cl link set eth0 up
ip -n @cl route add default via 192.168.1.1
ip -n @inet addr add 10.1.0.1/24 dev i1
ip -n @inet addr add 10.2.0.1/24 dev i2
ip -n @inet link set i1 up
ip -n @inet link set i2 up
ip -n @inet addr add 203.0.113.80/32 dev lo
"""),
    ])


def two_hosts(prefix: str) -> Namespaces:
    """h (conntrack on: an iptables/ip6tables rule makes the netns track) and its
    peer p, over one veth, IPv4 and IPv6."""
    track = "iptables -A OUTPUT -m conntrack --ctstate NEW -j ACCEPT\nip6tables -A OUTPUT -m conntrack --ctstate NEW -j ACCEPT\n"
    return Namespaces(prefix, ["h", "p"], [
        ("h", pair("h", "eth0", "p", "eth0") + track + """
ip addr add 10.9.0.1/24 dev eth0
ip addr add fd00:c7::1/64 dev eth0 nodad
ip -n @p addr add 10.9.0.2/24 dev eth0
ip -n @p addr add fd00:c7::2/64 dev eth0 nodad
ip -n @p link set eth0 up
"""),
    ])
