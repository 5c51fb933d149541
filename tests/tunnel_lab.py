"""The tunnel-broker topology (a tunnel server that hands its client an address
from its own upstream /64, so it must proxy NDP for it), in network namespaces, with a real tunnel of a chosen kind:

    up (2001:db8:1::ff/64) --e0/e0-- srv (2001:db8:1::1/64)
                                      | u0 10.0.0.1/24   tun0 2001:db8:1::2/127
                         IPv4 underlay (veth)            || tunnel (sit | gre | ip6tnl | wireguard | vxlan)
                                      | u0 10.0.0.2/24   tun0 2001:db8:1::3/127, default via ::2
                                     cli

The client's address comes from the upstream /64, so the server must forward
and answer the upstream's Neighbor Solicitations for it (proxy NDP). `faults`
breaks one thing the way users do (see FAULTS). sit, gre and wireguard exist only in
the stock kernel (tests/kernel); this VM's kernel has vxlan. Every namespace is
deleted on exit, on a failed build and at interpreter exit; no traffic leaves them.
"""

from __future__ import annotations

import itertools
import json
import os
import subprocess
import tempfile
from pathlib import Path

from tests.lab import NamespaceLab, sh, v6diag_command, wait_until
from v6diag.core.capture import CaptureReader

CLIENT, SERVER_TUN, SERVER_EXT, UPSTREAM = "2001:db8:1::3", "2001:db8:1::2", "2001:db8:1::1", "2001:db8:1::ff"
SRV4, CLI4, NOBODY4 = "10.0.0.1", "10.0.0.2", "10.0.0.9"
# ip6tnl (ip6ip6, RFC 2473) runs over an IPv6 underlay on the same u0 veth
SRV6, CLI6, NOBODY6 = "fd00:10::1", "fd00:10::2", "fd00:10::9"
UNDERLAY6 = {SRV4: SRV6, CLI4: CLI6, NOBODY4: NOBODY6}
VXLAN_PORT, WG_PORT = 4789, 51820
FAULTS = ("no-proxy", "no-forwarding", "drop-encap", "mtu-1500", "wrong-remote", "server-wrong-remote",
          "forward-drop")
_IDS = itertools.count()


class TunnelBrokerLab(NamespaceLab):
    def __init__(self, kind: str, faults: tuple[str, ...] = ()):
        assert set(faults) <= set(FAULTS), faults
        self.kind, self.faults = kind, set(faults)
        tag = f"v6tu{os.getpid() % 100000}{next(_IDS)}"
        self.up, self.srv, self.cli = f"{tag}u", f"{tag}s", f"{tag}c"
        self.tmp = Path(tempfile.mkdtemp(prefix="v6diag-tunnel-"))
        super().__init__()

    def sh_in(self, ns: str, script: str) -> None:
        sh("ip", "netns", "exec", ns, "sh", "-ec", script)

    def _build(self) -> None:
        for ns in (self.up, self.srv, self.cli):
            self.add_ns(ns)
        # e0: upstream <-> server (IPv6); u0: server <-> client (the IPv4 underlay)
        for a, b, link in ((self.up, self.srv, "e0"), (self.srv, self.cli, "u0")):
            sh("ip", "-n", a, "link", "add", link, "type", "veth", "peer", "name", link, "netns", b)
        nodad = "sysctl -qw net.ipv6.conf.all.accept_dad=0 net.ipv6.conf.default.accept_dad=0"
        self.sh_in(self.up, f"""{nodad}; sysctl -qw net.ipv6.conf.e0.accept_dad=0
            ip link set lo up; ip link set e0 up; ip addr add {UPSTREAM}/64 dev e0 nodad""")
        fwd = 0 if "no-forwarding" in self.faults else 1
        self.sh_in(self.srv, f"""{nodad}; sysctl -qw net.ipv6.conf.e0.accept_dad=0
            sysctl -qw net.ipv6.conf.all.forwarding={fwd}
            ip link set lo up; ip link set e0 up; ip link set u0 up
            ip addr add {SERVER_EXT}/64 dev e0 nodad; ip addr add {SRV4}/24 dev u0
            ip -6 route add default via {UPSTREAM} dev e0""")
        self.sh_in(self.cli, f"""{nodad}; ip link set lo up; ip link set u0 up; ip addr add {CLI4}/24 dev u0""")
        if self.kind == "ip6tnl":
            self.sh_in(self.srv, f"ip addr add {SRV6}/64 dev u0 nodad")
            self.sh_in(self.cli, f"ip addr add {CLI6}/64 dev u0 nodad")
        keys = self._keys() if self.kind == "wireguard" else None
        srv_remote = NOBODY4 if "server-wrong-remote" in self.faults else CLI4
        cli_remote = NOBODY4 if "wrong-remote" in self.faults else SRV4
        self.sh_in(self.srv, self._tunnel(SRV4, srv_remote, keys, server=True) + f"""
            ip addr add {SERVER_TUN}/127 dev tun0 nodad""")
        self.sh_in(self.cli, self._tunnel(CLI4, cli_remote, keys, server=False) + f"""
            ip addr add {CLIENT}/127 dev tun0 nodad
            ip -6 route add default via {SERVER_TUN} dev tun0""")
        if "no-proxy" not in self.faults:
            self.sh_in(self.srv, f"sysctl -qw net.ipv6.conf.e0.proxy_ndp=1; ip -6 neigh add proxy {CLIENT} dev e0")
        if "drop-encap" in self.faults:
            rule = {"sit": "-p 41", "ip6tnl": "-p 41", "gre": "-p gre", "vxlan": f"-p udp --dport {VXLAN_PORT}",
                    "wireguard": f"-p udp --dport {WG_PORT}"}[self.kind]
            tool = "ip6tables" if self.kind == "ip6tnl" else "iptables"
            self.sh_in(self.srv, f"{tool} -A INPUT {rule} -j DROP")
        if "forward-drop" in self.faults:
            self.sh_in(self.srv, "ip6tables -P FORWARD DROP")
        if "mtu-1500" in self.faults:
            self.sh_in(self.cli, "ip link set dev tun0 mtu 1500")

    def _keys(self) -> dict[str, str]:
        keys = {}
        for side in ("srv", "cli"):
            priv = sh("wg", "genkey").stdout.strip()
            (self.tmp / f"{side}.key").write_text(priv + "\n")
            keys[side] = sh("wg", "pubkey", input=priv + "\n").stdout.strip()
        return keys

    def _tunnel(self, local: str, remote: str, keys, server: bool) -> str:
        """Shell lines creating tun0 (the underlay is u0) and bringing it up."""
        if self.kind == "sit":  # the seed's `ip tunnel add ... mode sit ... ttl 255`
            make = f"ip tunnel add tun0 mode sit remote {remote} local {local} ttl 255"
        elif self.kind == "ip6tnl":  # default encaplimit 4: an 8-byte destination option (RFC 2473 4.1.1)
            make = f"ip -6 tunnel add tun0 mode ip6ip6 remote {UNDERLAY6[remote]} local {UNDERLAY6[local]}"
        elif self.kind == "gre":  # IPv6 in GRE over IPv4 (RFC 2784), the other broker favourite
            make = f"ip tunnel add tun0 mode gre remote {remote} local {local} ttl 255"
        elif self.kind == "vxlan":  # an Ethernet tunnel over UDP, standing in for sit on this VM
            # with `dev u0` the kernel sizes the MTU (1450) and refuses more; without
            # it a vxlan gets 1500, the usual way an oversized tunnel MTU happens
            lower = "" if "mtu-1500" in self.faults and not server else " dev u0"
            make = f"ip link add tun0 type vxlan id 42 local {local} remote {remote} dstport {VXLAN_PORT}{lower}"
        else:
            me, other = ("srv", "cli") if server else ("cli", "srv")
            allowed = f"{CLIENT}/128" if server else "::/0"
            make = (f"ip link add tun0 type wireguard; wg set tun0 private-key {self.tmp}/{me}.key "
                    f"listen-port {WG_PORT} peer {keys[other]} allowed-ips {allowed} endpoint {remote}:{WG_PORT}")
        return f"{make}\nsysctl -qw net.ipv6.conf.tun0.accept_dad=0\nip link set tun0 up"

    def run(self, ns: str, *args: str, timeout: float = 120) -> subprocess.CompletedProcess:
        return subprocess.run(["ip", "netns", "exec", ns, *v6diag_command(), *args], capture_output=True, text=True,
                              timeout=timeout)

    def check(self, side: str, *args: str) -> tuple[int, dict]:
        """`v6diag --json tunnel -i tun0 ARGS` on 'cli' or 'srv': (exit code, report)."""
        r = self.run(getattr(self, side), "--json", "tunnel", "-i", "tun0", *args)
        assert "Traceback" not in r.stderr and r.stdout, r.stderr
        return r.returncode, json.loads(r.stdout)



def by_id(report: dict) -> dict[str, dict]:
    return {c["id"]: c for c in report["checks"]}


def failing(report: dict) -> set[str]:
    return {c["id"] for c in report["checks"] if c["status"] == "fail"}


class Capture:
    """tcpdump on `iface` in `ns` while the block runs (the underlay, to record
    what the tunnel carried); no-op when tcpdump is missing. `done(path)`, when
    given, must hold before tcpdump is stopped (SIGTERM drops what it has not read)."""

    def __init__(self, ns: str, path: Path, iface: str = "u0"):
        self.ns, self.path, self.iface, self.proc = ns, Path(path), iface, None
        self.done = None

    def __enter__(self):
        import shutil

        if shutil.which("tcpdump"):
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self.proc = subprocess.Popen(["ip", "netns", "exec", self.ns, "tcpdump", "-i", self.iface, "-U", "-s", "0",
                                          "--immediate-mode", "-w", str(self.path)], stderr=subprocess.PIPE, text=True)
            assert "listening" in self.proc.stderr.readline()
        return self

    def __exit__(self, *exc):
        if self.proc:
            try:
                if self.done and not exc[0]:
                    wait_until(lambda: self.done(self.path), "tcpdump to write what v6diag saw", timeout=15)
            finally:
                self.proc.terminate()
                self.proc.wait(timeout=10)


def record(kind: str, faults: tuple[str, ...], path: Path) -> dict:
    """Record the client's underlay while `v6diag tunnel` probes it; return the
    lab's truth (what was configured, what v6diag said live) for pcaps/."""
    with TunnelBrokerLab(kind, faults) as lab, Capture(lab.cli, path) as cap:
        rc, report = lab.check("cli", "--target", UPSTREAM)
        # v6diag's own underlay capture ran inside tcpdump's: tcpdump holds at least as much
        seen = (report["underlay"] or {}).get("packets", 0)
        cap.done = lambda p: sum(1 for _ in CaptureReader(str(p))) >= seen
    return {"file": Path(path).name, "kind": kind, "faults": list(faults), "client_underlay": CLI4,
            "server_underlay": SRV4, "client": CLIENT, "server_tunnel": SERVER_TUN, "target": UPSTREAM,
            "live_exit_code": rc, "live_failing": sorted(failing(report)), "live_underlay": report["underlay"]}


if __name__ == "__main__":  # sudo .venv/bin/python -m tests.tunnel_lab pcaps/
    import sys

    out = Path(sys.argv[1] if len(sys.argv) > 1 else "pcaps")
    truth = [record("vxlan", (), out / "tunnel-vxlan-ok.pcap"),
             record("vxlan", ("drop-encap",), out / "tunnel-vxlan-dropped.pcap"),
             record("vxlan", ("mtu-1500",), out / "tunnel-vxlan-mtu1500.pcap")]
    (out / "tunnel-vxlan.truth.json").write_text(json.dumps(truth, indent=1) + "\n")
