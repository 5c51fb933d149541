"""A bridged IPv6 LAN in network namespaces, for integration tests and bench/.

Everything lives in namespaces named with a per-run prefix; `LanLab` deletes
them on exit, on failure and at interpreter exit. Traffic never leaves them.
"""

from __future__ import annotations

import atexit
import ipaddress
import itertools
import json
import os
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

GLOBAL_PREFIX = "2001:db8:1::"  # RFC 3849 documentation prefix
ULA_PREFIX = "fd00:6d:1::"

# Behaviours a device can have towards probes (see README "discover").
ANSWERS_ECHO = "answers-echo"
IGNORES_MCAST_ECHO = "ignores-multicast-echo"  # net.ipv6.icmp.echo_ignore_multicast=1
IGNORES_ALL_ECHO = "ignores-all-echo"  # net.ipv6.icmp.echo_ignore_all=1
FW_DROPS_ECHO = "ip6tables-drops-echo"
FW_DROPS_ECHO_MLD = "ip6tables-drops-echo-and-mld-queries"
BEHAVIOURS = (ANSWERS_ECHO, IGNORES_MCAST_ECHO, IGNORES_ALL_ECHO, FW_DROPS_ECHO, FW_DROPS_ECHO_MLD)
# drops echo, MLD queries and our Neighbor Solicitations: only the unknown-option
# probe (a Parameter Problem) reveals it
ONLY_UNKNOWN_OPTION = "answers-only-the-unknown-option-probe"
IPV4_PREFIX = "192.168.77."  # the LAN's IPv4 /24 (RFC 1918), when a host has IPv4

# Real OUIs with the vendor name a user would expect to read.
VENDOR_OUIS = [
    ("b8:27:eb", "Raspberry Pi"), ("dc:a6:32", "Raspberry Pi"), ("00:11:32", "Synology"),
    ("3c:22:fb", "Apple"), ("f0:18:98", "Apple"), ("00:1b:21", "Intel"),
    ("50:c7:bf", "Tp-Link"), ("24:0a:c4", "Espressif"), ("3c:d9:2b", "Hewlett Packard"),
    ("44:d9:e7", "Ubiquiti"), ("f4:f5:d8", "Google"), ("00:17:88", "Philips"),
    ("00:24:a5", "Buffalo"), ("3c:2a:f4", "Brother"), ("00:0d:b9", "PC Engines"),
    ("00:25:90", "Super Micro"), ("74:da:38", "Edimax"), ("18:b4:30", "Nest Labs"),
]
_LAB_IDS = itertools.count()  # several labs may live at once in one process
IID_MODES = {"eui64": 0, "low-byte": 1, "stable-privacy": 2, "random": 3}  # addr_gen_mode


def sh(*args: str, check: bool = True, input: str | None = None) -> subprocess.CompletedProcess:
    r = subprocess.run(args, capture_output=True, text=True, input=input)
    if check and r.returncode:
        raise RuntimeError(f"lab command failed ({r.returncode}): {' '.join(args)[:200]}: {r.stderr.strip()}")
    return r


@dataclass
class HostSpec:
    name: str
    mac: str
    vendor: str | None  # expected vendor substring; None for locally administered MACs
    iid: str  # key of IID_MODES
    behaviour: str
    global_address: bool = False
    router: bool = False
    ipv4: str | None = None  # an IPv4 address on eth0 (/24 of IPV4_PREFIX)
    mdns_name: str | None = None  # runs a real avahi-daemon under this host name
    services: tuple[tuple[str, int], ...] = ()  # DNS-SD services avahi publishes, e.g. ("_ssh._tcp", 22)
    # filled in after the lab is up:
    link_local: str | None = None
    addresses: list[str] = field(default_factory=list)


def default_hosts(n: int = 32) -> list[HostSpec]:
    """A mix of vendors, interface-ID kinds and probe behaviours, cycled so every
    behaviour meets every IID kind."""
    hosts = []
    iids = list(IID_MODES)
    for i in range(n):
        if i % 11 == 10:  # a randomised (locally administered) MAC, like a phone's Wi-Fi
            mac, vendor = f"4a:9c:{i:02x}:3e:51:{(7 * i) % 256:02x}", None
        else:
            oui, vendor = VENDOR_OUIS[i % len(VENDOR_OUIS)]
            mac = f"{oui}:{0x40 + i:02x}:{(13 * i) % 256:02x}:{(29 * i + 1) % 256:02x}"
        hosts.append(HostSpec(
            name=f"h{i:02d}", mac=mac, vendor=vendor, iid=iids[(i // 5) % len(iids)],
            behaviour=BEHAVIOURS[i % len(BEHAVIOURS)], global_address=i % 3 == 0, router=i == 7,
        ))
    return hosts


def names_hosts() -> list[HostSpec]:
    """A small LAN for naming: real avahi-daemons with host names and services, a
    device with only IPv4 besides its link-local, one that answers nothing but the
    unknown-option probe, and a named device with no services."""
    return [
        HostSpec("h00", "b8:27:eb:40:00:01", "Raspberry Pi", "eui64", ANSWERS_ECHO, global_address=True,
                 ipv4=f"{IPV4_PREFIX}10", mdns_name="raspberrypi", services=(("_ssh._tcp", 22),)),
        HostSpec("h01", "00:11:32:41:0d:1e", "Synology", "stable-privacy", FW_DROPS_ECHO, ipv4=f"{IPV4_PREFIX}11",
                 mdns_name="nas", services=(("_smb._tcp", 445), ("_http._tcp", 5000))),
        HostSpec("h02", "dc:a6:32:42:1a:3b", "Raspberry Pi", "eui64", ANSWERS_ECHO, ipv4=f"{IPV4_PREFIX}12"),
        HostSpec("h03", "3c:22:fb:43:27:58", "Apple", "random", ONLY_UNKNOWN_OPTION),
        HostSpec("h04", "f0:18:98:44:34:75", "Apple", "eui64", ANSWERS_ECHO, global_address=True,
                 mdns_name="macbook"),
    ]


def v6diag_command() -> list[str]:
    """How every test runs v6diag: $V6DIAG_CLI when set (the kernel tier points it at
    a wheel installed in its own venv), else the console script installed beside this
    Python (a venv, pipx, `pip install --user`), else `python -m v6diag`. Never a path
    inside the checkout: a clone set up any other way must pass too."""
    if os.environ.get("V6DIAG_CLI"):
        return [os.environ["V6DIAG_CLI"]]
    exe = Path(sys.executable).parent / "v6diag"
    return [str(exe)] if exe.exists() else [sys.executable, "-m", "v6diag"]


def wait_until(pred, what: str, timeout: float = 30.0, interval: float = 0.05):
    """Poll pred() until it returns something true, and return that; tests
    synchronise on what they can observe, never on a fixed sleep."""
    deadline = time.monotonic() + timeout
    while True:
        got = pred()
        if got:
            return got
        if time.monotonic() >= deadline:
            raise AssertionError(f"timed out after {timeout:g} s waiting for {what}")
        time.sleep(interval)


class NamespaceLab:
    """The one owner of what a test builds: network namespaces and the processes
    running in them. Subclasses implement _build() with add_ns() and spawn();
    everything is torn down on exit, when the build fails halfway, and at
    interpreter exit (tests use it through the `build_lab` fixtures)."""

    def __init__(self):
        self._namespaces: list[str] = []
        self._procs: list[subprocess.Popen] = []

    def __enter__(self):
        atexit.register(self.close)
        try:
            self._build()
        except BaseException:
            self.close()
            raise
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def _build(self) -> None:
        raise NotImplementedError

    def add_ns(self, name: str) -> str:
        sh("ip", "netns", "add", name)
        self._namespaces.append(name)
        return name

    def spawn(self, ns: str | None, *cmd: str, **popen) -> subprocess.Popen:
        """A process in namespace `ns` (None: here), stopped at teardown."""
        argv = ["ip", "netns", "exec", ns, *cmd] if ns else list(cmd)
        p = subprocess.Popen(argv, **popen)
        self._procs.append(p)
        return p

    def close(self) -> None:
        procs, self._procs = self._procs, []
        for p in procs:
            if p.poll() is None:
                p.terminate()
        for p in procs:
            try:
                p.wait(timeout=5)
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait()
        while self._namespaces:
            sh("ip", "netns", "del", self._namespaces.pop(), check=False)


class Namespaces(NamespaceLab):
    """Named namespaces (lo up in each), then (namespace, shell script) steps in
    order, '@' in a script standing for the prefix."""

    def __init__(self, prefix: str, names: list[str], steps: list[tuple[str, str]] = ()):
        super().__init__()
        self.prefix, self.names, self.steps = prefix, names, list(steps)

    def name(self, short: str) -> str:
        return f"{self.prefix}-{short}"

    def _build(self) -> None:
        for short in self.names:
            self.add_ns(self.name(short))
            sh("ip", "netns", "exec", self.name(short), "ip", "link", "set", "lo", "up")
        for short, script in self.steps:
            self.sh(short, script)

    def sh(self, short: str, script: str) -> None:
        sh("ip", "netns", "exec", self.name(short), "sh", "-ec", script.replace("@", self.prefix + "-"))

    def run(self, short: str, *cmd: str, check: bool = False, timeout: float = 60) -> subprocess.CompletedProcess:
        return subprocess.run(["ip", "netns", "exec", self.name(short), *cmd], capture_output=True, text=True,
                              check=check, timeout=timeout)

    def spawn_in(self, short: str, *cmd: str) -> subprocess.Popen:
        return self.spawn(self.name(short), *cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


class LanLab(NamespaceLab):
    """with LanLab(hosts) as lab: lab.prober is a namespace with interface `lan0`
    (MAC PROBER_MAC, link-local + 2001:db8:1::ffff) on the same bridge as the hosts."""

    PROBER_MAC = "02:76:36:00:00:01"
    PROBER_IF = "lan0"

    def __init__(self, hosts: list[HostSpec] | None = None, prefix: str | None = None):
        self.hosts = default_hosts() if hosts is None else hosts
        self.prefix = prefix or f"v6d{os.getpid() % 100000}{chr(97 + next(_LAB_IDS) % 26)}"
        self.bridge_ns = f"{self.prefix}-br"
        self.prober = f"{self.prefix}-p"
        self._ports = 0
        self._dirs: list[Path] = []
        super().__init__()

    def ns(self, host: HostSpec) -> str:
        return f"{self.prefix}-{host.name}"

    # -- build ---------------------------------------------------------------
    def _build(self) -> None:
        self.add_ns(self.bridge_ns)
        self.add_ns(self.prober)
        for h in self.hosts:
            self.add_ns(self.ns(h))
        batch = ["link add br0 type bridge", "link set br0 up"]
        batch += self._attach(self.prober, self.PROBER_IF, self.PROBER_MAC)
        for h in self.hosts:
            batch += self._attach(self.ns(h), "eth0", h.mac)
        # the bridge itself stays invisible: no IPv6 on it, it only forwards
        sh("ip", "netns", "exec", self.bridge_ns, "sysctl", "-qw", "net.ipv6.conf.all.disable_ipv6=1")
        sh("ip", "-n", self.bridge_ns, "-batch", "-", input="\n".join(batch) + "\n")
        for h in self.hosts:
            sh("ip", "netns", "exec", self.ns(h), "sh", "-ec", self._host_script(h))
        sh("ip", "netns", "exec", self.prober, "sh", "-ec", f"""
            sysctl -qw net.ipv6.conf.{self.PROBER_IF}.accept_dad=0
            ip link set lo up
            ip link set {self.PROBER_IF} up
            ip addr add {GLOBAL_PREFIX}ffff/64 dev {self.PROBER_IF} nodad
            ip addr add {ULA_PREFIX}ffff/64 dev {self.PROBER_IF} nodad""")
        if any(h.ipv4 for h in self.hosts):
            sh("ip", "-n", self.prober, "addr", "add", f"{IPV4_PREFIX}254/24", "dev", self.PROBER_IF)
        self._read_addresses()
        daemons = [self._start_avahi(h) for h in self.hosts if h.mdns_name]
        for h, log in daemons:  # probing its name and announcing take avahi ~1 s
            wait_until(lambda log=log: "Server startup complete" in log.read_text() and
                       log.read_text().count("successfully established") >= len(h.services),
                       f"avahi-daemon of {h.name}", timeout=30, interval=0.1)

    def close(self) -> None:
        super().close()
        import shutil

        while getattr(self, "_dirs", None):
            shutil.rmtree(self._dirs.pop(), ignore_errors=True)

    def _start_avahi(self, h: HostSpec):
        """A real avahi-daemon in the host's namespace, with its own /run and
        /etc/avahi in a private mount namespace: instances never meet, and this
        machine's files stay untouched."""
        import tempfile

        conf = Path(tempfile.mkdtemp(prefix=f"{self.prefix}-{h.name}-avahi-"))
        self._dirs.append(conf)
        (conf / "services").mkdir()
        (conf / "avahi-daemon.conf").write_text(
            f"[server]\nhost-name={h.mdns_name}\ndomain-name=local\nuse-ipv4=yes\nuse-ipv6=yes\n"
            "allow-interfaces=eth0\nenable-dbus=no\n[wide-area]\nenable-wide-area=no\n"
            "[publish]\npublish-addresses=yes\npublish-hinfo=no\npublish-workstation=no\n")
        for kind, port in h.services:
            (conf / "services" / f"{kind.strip('_').split('.')[0]}.service").write_text(
                '<?xml version="1.0" standalone="no"?>\n<!DOCTYPE service-group SYSTEM "avahi-service.dtd">\n'
                f'<service-group><name replace-wildcards="yes">%h</name><service><type>{kind}</type>'
                f"<port>{port}</port></service></service-group>\n")
        log = conf / "log"
        script = ("mount -t tmpfs tmpfs /run && mkdir -p /run/avahi-daemon && "
                  f"mount --bind {conf} /etc/avahi && exec avahi-daemon --no-drop-root --no-chroot --no-rlimits "
                  "-f /etc/avahi/avahi-daemon.conf")
        self.spawn(self.ns(h), "unshare", "-m", "--propagation", "private", "sh", "-c", script,
                   stdout=open(log, "w"), stderr=subprocess.STDOUT)
        return h, log

    def _attach(self, ns: str, ifname: str, mac: str) -> list[str]:
        """ip -batch lines: a veth from the bridge into `ns`."""
        port = f"p{self._ports}"
        self._ports += 1
        return [f"link add {port} type veth peer name {ifname} netns {ns} address {mac}",
                f"link set {port} master br0", f"link set {port} up"]

    def add_host(self, h: HostSpec, dad: bool = True) -> HostSpec:
        """Plug a new device into the running LAN; with DAD, as a real host boots."""
        self.add_ns(self.ns(h))
        sh("ip", "-n", self.bridge_ns, "-batch", "-",
           input="\n".join(self._attach(self.ns(h), "eth0", h.mac)) + "\n")
        sh("ip", "netns", "exec", self.ns(h), "sh", "-ec", self._host_script(h, dad))
        self.hosts.append(h)
        if h.mdns_name:  # booting with its mDNS responder, which announces itself
            self._start_avahi(h)
        return h

    def wait_addresses(self, h: HostSpec, timeout: float = 10) -> None:
        """Wait until DAD has finished on the host's addresses, then record them."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if not sh("ip", "-n", self.ns(h), "-6", "addr", "show", "dev", "eth0", "tentative").stdout.strip():
                break
            time.sleep(0.1)
        self._read_addresses([h])

    def _host_script(self, h: HostSpec, dad: bool = False) -> str:
        lines = [f"sysctl -qw net.ipv6.conf.eth0.accept_dad={int(dad)}"]
        if h.iid == "stable-privacy":  # the kernel refuses mode 2 until a secret is set
            secret = ipaddress.IPv6Address(int.from_bytes(os.urandom(16), "big"))
            lines.append(f"sysctl -qw net.ipv6.conf.eth0.stable_secret={secret}")
        lines.append(f"sysctl -qw net.ipv6.conf.eth0.addr_gen_mode={IID_MODES[h.iid]}")
        if h.behaviour == IGNORES_MCAST_ECHO:
            lines.append("sysctl -qw net.ipv6.icmp.echo_ignore_multicast=1")
        elif h.behaviour == IGNORES_ALL_ECHO:
            lines.append("sysctl -qw net.ipv6.icmp.echo_ignore_all=1")
        elif h.behaviour in (FW_DROPS_ECHO, FW_DROPS_ECHO_MLD, ONLY_UNKNOWN_OPTION):
            lines.append("ip6tables -A INPUT -p icmpv6 --icmpv6-type echo-request -j DROP")
            if h.behaviour in (FW_DROPS_ECHO_MLD, ONLY_UNKNOWN_OPTION):
                lines.append("ip6tables -A INPUT -p icmpv6 --icmpv6-type 130 -j DROP")
            if h.behaviour == ONLY_UNKNOWN_OPTION:
                lines.append(f"ip6tables -A INPUT -p icmpv6 --icmpv6-type 135 -m mac --mac-source {self.PROBER_MAC} "
                             "-j DROP")
        if h.router:
            lines.append("sysctl -qw net.ipv6.conf.all.forwarding=1")
        lines += ["ip link set lo up", "ip link set eth0 up"]
        n = int(h.name[1:]) + 1
        if h.iid == "low-byte":
            lines.append(f"ip addr add fe80::{n:x}/64 dev eth0" + ("" if dad else " nodad"))
        if h.global_address:
            iid = f"{n:x}" if h.iid == "low-byte" else f"{(n * 40503) & 0xffff:x}:{n:x}:77:{n * 3:x}"
            lines.append(f"ip addr add {GLOBAL_PREFIX}{iid}/64 dev eth0" + ("" if dad else " nodad"))
        if h.ipv4:
            lines.append(f"ip addr add {h.ipv4}/24 dev eth0")
        return "\n".join(lines)

    def _read_addresses(self, hosts: list[HostSpec] | None = None) -> None:
        for h in self.hosts if hosts is None else hosts:
            data = json.loads(sh("ip", "-n", self.ns(h), "-j", "-6", "addr", "show", "dev", "eth0").stdout)
            infos = data[0]["addr_info"] if data else []
            h.addresses = [ipaddress.IPv6Address(a["local"]).compressed for a in infos]
            h.link_local = next((a for a in h.addresses if a.startswith("fe80:")), None)

    # -- use -----------------------------------------------------------------
    def exec_prober(self, *cmd: str, timeout: float = 120, check: bool = False) -> subprocess.CompletedProcess:
        return subprocess.run(["ip", "netns", "exec", self.prober, *cmd], capture_output=True,
                              text=True, timeout=timeout, check=check)
