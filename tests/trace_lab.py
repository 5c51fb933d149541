"""Labs for `trace`, built from network namespaces and real daemons.

RouterLab: a router namespace (radvd + kea-dhcp6-server with a prefix-delegation
pool) and a client namespace (dhcpcd, or systemd-networkd run without systemd as
PID 1) on one veth link.
TunnelLab: the tunnel-broker topology (a server proxying NDP for its client):
upstream router -- server (external e0) -- veth "tunnel" -- client, the client's
address taken from the upstream /64, so the server must proxy NDP and forward."""

from __future__ import annotations

import contextlib
import json
import os
import subprocess
import tempfile
from pathlib import Path

from tests.lab import NamespaceLab, sh, v6diag_command, wait_until

NETWORKD = "/lib/systemd/systemd-networkd"
_n = [0]


def _name(tag: str) -> str:
    _n[0] += 1
    return f"v6dt{os.getpid() % 100000}{_n[0]}{tag}"


class RouterLab(NamespaceLab):
    PREFIX = "2001:db8:1::"
    PD_POOL = "2001:db8:d00::"

    def __init__(self):
        self.r, self.c = _name("r"), _name("c")
        self.tmp = Path(tempfile.mkdtemp(prefix="v6diag-trace-"))
        super().__init__()

    def _build(self) -> None:
        for ns in (self.r, self.c):
            self.add_ns(ns)
        sh("ip", "-n", self.r, "link", "add", "r0", "type", "veth", "peer", "name", "c0", "netns", self.c)
        sh("ip", "netns", "exec", self.r, "sh", "-ec", f"""
            sysctl -qw net.ipv6.conf.all.forwarding=1 net.ipv6.conf.default.accept_dad=0
            sysctl -qw net.ipv6.conf.r0.accept_dad=0
            ip link set lo up; ip link set r0 up; ip addr add {self.PREFIX}1/64 dev r0""")
        sh("ip", "netns", "exec", self.c, "sh", "-ec", "ip link set lo up; ip link set c0 up")
        wait_until(lambda: not sh("ip", "-n", self.c, "-6", "addr", "show", "dev", "c0", "tentative").stdout.strip(),
                   "the client's link-local address to finish DAD", timeout=10)

    def start(self, managed: bool, pd_pool: bool = True) -> None:
        """radvd with M (managed) or only O (other config), and kea."""
        conf = self.tmp / "radvd.conf"
        conf.write_text(f"""interface r0 {{
  AdvSendAdvert on; MinRtrAdvInterval 3; MaxRtrAdvInterval 10;
  AdvManagedFlag {'on' if managed else 'off'}; AdvOtherConfigFlag on;
  prefix {self.PREFIX}/64 {{ AdvOnLink on; AdvAutonomous on; }};
  RDNSS {self.PREFIX}53 {{ }};
}};
""")
        subnet = {"id": 1, "subnet": f"{self.PREFIX}/64", "interface": "r0",
                  "pools": [{"pool": f"{self.PREFIX}1000-{self.PREFIX}1fff"}],
                  "option-data": [{"name": "dns-servers", "data": f"{self.PREFIX}53"}]}
        if pd_pool:
            subnet["pd-pools"] = [{"prefix": self.PD_POOL, "prefix-len": 48, "delegated-len": 56}]
        kea = {"Dhcp6": {"interfaces-config": {"interfaces": ["r0"]}, "server-id": {"type": "LL", "persist": False},
                         "lease-database": {"type": "memfile", "persist": False},
                         "renew-timer": 1000, "rebind-timer": 2000, "preferred-lifetime": 3000,
                         "valid-lifetime": 4000, "subnet6": [subnet],
                         "loggers": [{"name": "kea-dhcp6", "output_options": [{"output": "stderr"}],
                                      "severity": "ERROR"}]}}
        (self.tmp / "kea.json").write_text(json.dumps(kea))
        env = {**os.environ, "KEA_PIDFILE_DIR": str(self.tmp), "KEA_LOCKFILE_DIR": str(self.tmp)}
        self.spawn(self.r, "kea-dhcp6", "-c", str(self.tmp / "kea.json"), env=env, stdout=subprocess.DEVNULL,
                   stderr=subprocess.DEVNULL)
        # ready: kea listens on UDP 547 and radvd has heard its own first RA come back
        # ("received RA from ... (myself)", debug level 3); fixed sleeps lost an early RS
        # on a loaded machine
        log = self.tmp / "radvd.log"
        self.spawn(self.r, "radvd", "-C", str(conf), "-n", "-p", str(self.tmp / "radvd.pid"), "-d", "3",
                   "-m", "logfile", "-l", str(log), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        wait_until(lambda: sh("ip", "netns", "exec", self.r, "ss", "-Hlun", "sport = :547", check=False).stdout.strip(),
                   "kea-dhcp6 to listen on UDP 547", timeout=15)
        wait_until(lambda: log.exists() and "(myself)" in log.read_text(), "radvd's first RA", timeout=15)


    def dhcpcd(self, ia_pd: bool, seconds: float = 6.0) -> None:
        """Run dhcpcd on the client for a while, IPv6 only; with `ia_pd 1` it
        asks for a prefix whatever the RA flags say."""
        conf = self.tmp / "dhcpcd.conf"
        conf.write_text("ipv6only\nipv6rs\n" + ("ia_pd 1\n" if ia_pd else ""))
        resolv = self.tmp / "resolv.conf"
        resolv.touch()
        # A network namespace shares the host's files: dhcpcd's hooks would rewrite the
        # host's /etc/resolv.conf and it keeps leases in /var/lib/dhcpcd. So: no hook
        # script (-c /bin/true) and a private mount namespace over everything it writes.
        # /run/dhcpcd exists only once a dhcpcd has run on the machine: tmpfs over all of /run.
        jail = (f"mount -t tmpfs -o mode=0755 none /run && mkdir /run/dhcpcd && "
                f"mount -t tmpfs none /var/lib/dhcpcd && "
                f"mount --bind {resolv} /etc/resolv.conf && "
                f"exec timeout {seconds} dhcpcd -c /bin/true -f {conf} -B -6 c0")
        subprocess.run(["ip", "netns", "exec", self.c, "unshare", "-m", "sh", "-ec", jail],
                       stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        sh("ip", "netns", "exec", self.c, "ip", "-6", "addr", "flush", "dev", "c0", "scope", "global", check=False)

    @contextlib.contextmanager
    def networkd(self, network: str):
        """systemd-networkd on the client with `network` as its only .network file,
        without systemd as PID 1; yields the path of its debug log.

        A network namespace shares the host's files, so networkd runs in a private
        mount namespace: tmpfs over /run (its state in /run/systemd/netif, and no
        D-Bus: no resolved, hostnamed or host networkd to talk to), over the host's
        .network directories and a scratch /etc/resolv.conf. /sys is remounted
        read-only for it alone: that is how networkd knows there is no udev to wait
        for (else links stay "pending" forever). It drops to the systemd-network user
        itself. Killed and its addresses flushed on the way out, even on failure."""
        (self.tmp / "10-c0.network").write_text(network)
        resolv = self.tmp / "resolv.conf"
        resolv.touch()
        log = self.tmp / "networkd.log"
        jail = f"""
            mount -o remount,bind,ro /sys
            mount -t tmpfs -o mode=0755 tmpfs /run
            mkdir -p /run/systemd/network /run/systemd/netif
            chown systemd-network:systemd-network /run/systemd/netif
            cp {self.tmp}/10-c0.network /run/systemd/network/
            for d in /etc/systemd/network /usr/lib/systemd/network; do
                [ ! -d $d ] || mount -t tmpfs -o mode=0755,ro tmpfs $d
            done
            mount --bind {resolv} /etc/resolv.conf
            export SYSTEMD_LOG_LEVEL=debug SYSTEMD_LOG_TARGET=console SYSTEMD_LOG_COLOR=0
            exec {NETWORKD}"""
        with open(log, "w") as out:
            # every step execs the next: p.pid is networkd itself
            p = subprocess.Popen(["ip", "netns", "exec", self.c, "unshare", "-m", "--propagation", "private",
                                  "sh", "-ec", jail], stdout=out, stderr=subprocess.STDOUT)
        try:
            yield log
            if p.poll() is not None:
                raise RuntimeError(f"systemd-networkd exited ({p.returncode}):\n{log.read_text()[-3000:]}")
        finally:
            p.terminate()
            try:
                p.wait(timeout=5)
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait()
            sh("ip", "netns", "exec", self.c, "ip", "-6", "addr", "flush", "dev", "c0", "scope", "global",
               check=False)

    def run_networkd(self, network: str, until: str, timeout: float = 10.0) -> str:
        """networkd until its log shows `until` (e.g. the DHCPv6 exchange it must
        make); returns its log."""
        with self.networkd(network) as log:
            wait_until(lambda: until in log.read_text(), f"systemd-networkd to log {until!r}", timeout=timeout)
        return log.read_text()


class TunnelLab(NamespaceLab):
    """up (2001:db8:1::ff) --e0-- srv (2001:db8:1::1) ==tun0/veth== cli (2001:db8:1::3/127, peer ::2)."""

    CLIENT = "2001:db8:1::3"

    def __init__(self, proxy: bool, forwarding: bool):
        self.up, self.srv, self.cli = _name("u"), _name("s"), _name("c")
        self.proxy, self.forwarding = proxy, forwarding
        super().__init__()

    def _build(self) -> None:
        for ns in (self.up, self.srv, self.cli):
            self.add_ns(ns)
        sh("ip", "-n", self.up, "link", "add", "e0", "type", "veth", "peer", "name", "e0", "netns", self.srv)
        sh("ip", "-n", self.srv, "link", "add", "tun0", "type", "veth", "peer", "name", "tun0", "netns", self.cli)
        nodad = "sysctl -qw net.ipv6.conf.all.accept_dad=0 net.ipv6.conf.default.accept_dad=0"
        sh("ip", "netns", "exec", self.up, "sh", "-ec", f"""{nodad}
            sysctl -qw net.ipv6.conf.e0.accept_dad=0
            ip link set lo up; ip link set e0 up; ip addr add 2001:db8:1::ff/64 dev e0 nodad""")
        sh("ip", "netns", "exec", self.srv, "sh", "-ec", f"""{nodad}
            sysctl -qw net.ipv6.conf.e0.accept_dad=0 net.ipv6.conf.tun0.accept_dad=0
            sysctl -qw net.ipv6.conf.all.forwarding={int(self.forwarding)}
            ip link set lo up; ip link set e0 up; ip link set tun0 up
            ip addr add 2001:db8:1::1/64 dev e0 nodad
            ip addr add 2001:db8:1::2/127 dev tun0 nodad
            ip -6 route add default via 2001:db8:1::ff dev e0""")
        if self.proxy:
            sh("ip", "netns", "exec", self.srv, "sh", "-ec", f"""
                sysctl -qw net.ipv6.conf.e0.proxy_ndp=1
                ip -6 neigh add proxy {self.CLIENT} dev e0""")
        sh("ip", "netns", "exec", self.cli, "sh", "-ec", f"""{nodad}
            sysctl -qw net.ipv6.conf.tun0.accept_dad=0
            ip link set lo up; ip link set tun0 up
            ip addr add {self.CLIENT}/127 dev tun0 nodad
            ip -6 route add default via 2001:db8:1::2 dev tun0""")

    def ping_client_from_upstream(self) -> bool:
        return sh("ip", "netns", "exec", self.up, "ping", "-6", "-c2", "-W2", self.CLIENT, check=False).returncode == 0


def capture(ns: str, iface: str, path: Path, action, done) -> None:
    """tcpdump (ND and DHCPv6 only) in `ns` while action() runs, until done(path)
    says the capture holds what the test needs."""
    p = subprocess.Popen(["ip", "netns", "exec", ns, "tcpdump", "-i", iface, "--immediate-mode", "-U", "-s", "0",
                          "-w", str(path), "icmp6 or udp port 546 or udp port 547"],
                         stderr=subprocess.PIPE, text=True)
    try:
        assert "listening" in p.stderr.readline()
        action()
        wait_until(lambda: done(path), "the capture to hold the exchange", timeout=15)
    finally:
        p.terminate()
        p.wait(timeout=10)


def trace_json(*args: str, ns: str | None = None, expect_json: bool = True) -> tuple[int, dict | None]:
    cmd = [*v6diag_command(), "--json", "trace", *args]
    if ns:
        cmd = ["ip", "netns", "exec", ns, *cmd]
    r = subprocess.run(cmd, capture_output=True, text=True, timeout=120)
    assert "Traceback" not in r.stderr, r.stderr
    return r.returncode, json.loads(r.stdout) if expect_json else None


class LiveTrace:
    """`v6diag --json trace ARGS` in `ns`, entered once it listens (it says so on
    stderr), so nothing the test causes next can go out before it is watching."""

    def __init__(self, ns: str, *args: str):
        self.cmd = ["ip", "netns", "exec", ns, *v6diag_command(), "--json", "trace", *args]
        self.rc, self.report = None, None

    def __enter__(self) -> "LiveTrace":
        self.proc = subprocess.Popen(self.cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        first = self.proc.stderr.readline()
        if "listening on" not in first:
            self.proc.kill()
            raise AssertionError(f"live trace did not start: {first}{self.proc.stderr.read()}")
        return self

    def __exit__(self, *exc) -> None:
        out, err = self.proc.communicate(timeout=120)
        assert "Traceback" not in err, err
        self.rc, self.report = self.proc.returncode, json.loads(out) if out else None
