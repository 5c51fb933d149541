"""Can the running kernel make a tunnel of this kind? Asked when `--iface`
names an interface that does not exist: "no such interface" is the wrong answer
when the real problem is a kernel without the sit or wireguard module (this dev
VM's kernel: CONFIG_MODULES off, no sit, no wireguard)."""

from __future__ import annotations

import gzip
import os
import shutil
import subprocess

# rtnetlink kind -> (module name, Kconfig symbol)
MODULES = {
    "sit": ("sit", "CONFIG_IPV6_SIT"), "ipip": ("ipip", "CONFIG_NET_IPIP"),
    "ip6tnl": ("ip6_tunnel", "CONFIG_IPV6_TUNNEL"), "gre": ("ip_gre", "CONFIG_NET_IPGRE"),
    "gretap": ("ip_gre", "CONFIG_NET_IPGRE"), "ip6gre": ("ip6_gre", "CONFIG_IPV6_GRE"),
    "ip6gretap": ("ip6_gre", "CONFIG_IPV6_GRE"), "wireguard": ("wireguard", "CONFIG_WIREGUARD"),
    "vxlan": ("vxlan", "CONFIG_VXLAN"), "geneve": ("geneve", "CONFIG_GENEVE"),
}
# interface names people give tunnels, and the kind they imply
NAME_HINTS = (("he-ipv6", "sit"), ("6in4", "sit"), ("tun6in4", "sit"), ("sit", "sit"), ("wg", "wireguard"),
              ("ip6tnl", "ip6tnl"), ("ip6gre", "ip6gre"), ("gre", "gre"), ("vxlan", "vxlan"), ("vx", "vxlan"),
              ("geneve", "geneve"))


def kind_from_name(name: str) -> str | None:
    return next((k for prefix, k in NAME_HINTS if name.lower().startswith(prefix)), None)


def _kconfig(symbol: str, release: str) -> str | None:
    """'y', 'm', 'n', or None when the kernel's configuration cannot be read."""
    for path in ("/proc/config.gz", f"/boot/config-{release}"):
        try:
            opener = gzip.open if path.endswith(".gz") else open
            with opener(path, "rt") as f:
                text = f.read()
        except OSError:
            continue
        for line in text.splitlines():
            if line.startswith(symbol + "="):
                return line.split("=", 1)[1]
        return "n"
    return None


def available(kind: str) -> tuple[bool | None, str]:
    """(True: it can be made now or after `modprobe`; False: this kernel lacks
    it; None: cannot tell) and the evidence, for the message."""
    module, symbol = MODULES.get(kind, (kind, None))
    release = os.uname().release
    if os.path.isdir(f"/sys/module/{module.replace('-', '_')}"):
        return True, f"{module} is loaded or built in"
    config = _kconfig(symbol, release) if symbol else None
    if config == "y":
        return True, f"{symbol}=y"
    modprobe = shutil.which("modprobe") or next((p for p in ("/usr/sbin/modprobe", "/sbin/modprobe")
                                                 if os.path.exists(p)), None)
    if modprobe and os.path.isdir(f"/lib/modules/{release}"):
        r = subprocess.run([modprobe, "-n", "-q", module], capture_output=True)
        if r.returncode == 0:
            return True, f"`modprobe {module}` loads it"
        return False, f"`modprobe -n {module}` finds no module for {release}"
    if config == "n" or (config is None and not os.path.exists("/proc/modules")):
        why = f"{symbol} is not set" if config == "n" else "the kernel loads no modules"
        return False, f"{why} in {release}"
    if config == "m":
        return False, f"{symbol}=m but /lib/modules/{release} is missing"
    return None, "cannot read the kernel configuration or modules"
