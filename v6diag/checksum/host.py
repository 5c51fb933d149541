"""Kernel counters and device features read from /proc and ethtool netlink."""

from __future__ import annotations

from v6diag.checksum.report import VxlanDevice


def udp_in_csum_errors() -> dict[str, int]:
    """UDP datagrams this network namespace dropped for a bad checksum
    (net/ipv4/proc.c snmp4_udp_list, net/ipv6/proc.c snmp6_udp6_list)."""
    out = {"ipv4": 0, "ipv6": 0}
    try:
        with open("/proc/net/snmp") as f:
            lines = [line.split() for line in f if line.startswith("Udp:")]
        if len(lines) >= 2 and "InCsumErrors" in lines[0]:
            out["ipv4"] = int(lines[1][lines[0].index("InCsumErrors")])
        with open("/proc/net/snmp6") as f:
            for line in f:
                name, _, value = line.partition(" ")
                if name == "Udp6InCsumErrors":
                    out["ipv6"] = int(value)
    except OSError:
        pass
    return out


CSUM_FEATURES = ("tx-checksum-ip-generic", "tx-checksum-ipv4", "tx-checksum-ipv6", "rx-checksum",
                 "tx-udp_tnl-segmentation", "tx-udp_tnl-csum-segmentation")


def offload_features(ifname: str) -> dict[str, bool]:
    """The checksum offload features of one device (ethtool -k), {} if unknown."""
    try:
        from contextlib import closing

        from pyroute2.ethtool import Ethtool

        with closing(Ethtool()) as et:  # pyroute2 0.7's Ethtool is no context manager
            feats = et.get_features(ifname).features
    except Exception:  # no ethtool netlink family or device gone: the report says "unknown"
        return {}
    return {k: bool(feats[k].enable) for k in CSUM_FEATURES if k in feats}


def vxlan_devices() -> list[VxlanDevice]:
    """VXLAN devices in this namespace with their UDP port, checksum settings and offloads."""
    from pyroute2 import IPRoute

    out = []
    with IPRoute() as ipr:
        for link in ipr.get_links():
            info = link.get_attr("IFLA_LINKINFO")
            if not info or info.get_attr("IFLA_INFO_KIND") != "vxlan":
                continue
            data = info.get_attr("IFLA_INFO_DATA")
            name = link.get_attr("IFLA_IFNAME")
            out.append(VxlanDevice(name, data.get_attr("IFLA_VXLAN_PORT") if data else None,
                                   bool(data.get_attr("IFLA_VXLAN_UDP_CSUM")) if data else None,
                                   offload_features(name)))
    return out


CSUM_REASONS = ("UDP_CSUM", "TCP_CSUM", "IP_CSUM", "ICMP_CSUM", "SKB_CSUM")


def start_csum_drops():
    """The kernel's own checksum drops (skb:kfree_skb reasons, through tracefs) for
    the length of a capture; None where tracefs or the reason field is missing."""
    from v6diag.core import tracefs
    from v6diag.core.errors import V6diagError

    try:
        root = tracefs.mount()
        fmt = tracefs.read_format(root)
        numbers = [n for n in (fmt.number(r) for r in CSUM_REASONS) if n is not None]
        if not fmt.has_reason or not numbers:
            return None
        return tracefs.DropTrace(root, fmt, reasons=numbers, buffer_kb=1024)
    except (V6diagError, OSError):
        return None


def csum_drops(trace) -> dict[str, int] | None:
    """{reason: drops} since start_csum_drops (host-wide), and the trace closed."""
    if trace is None:
        return None
    import time
    from collections import Counter

    try:
        return dict(Counter(line.reason for line in trace.lines(time.monotonic()) if line is not None))
    finally:
        trace.close()

def capture_link(iface: str):
    """The link to capture VXLAN on (`checksum -i`, serve's checksum:IF), refused
    with the fix when it cannot carry what we check: down, no carrier, the VXLAN
    device itself (its frames are the inner ones), not Ethernet."""
    from v6diag.core import netlink
    from v6diag.core.constants import ARPHRD_ETHER, ARPHRD_LOOPBACK
    from v6diag.core.errors import UnavailableError, UsageError
    from v6diag.core.packet_socket import ANY

    if iface == ANY:  # every interface, cooked (SLL2) frames: no one device's offloads to report
        info = netlink.Link(ANY, 0, True, ARPHRD_ETHER, None)
    else:
        info = netlink.link(iface)
        if not info.up:
            raise UnavailableError(f"interface {iface} is down", hint=f"ip link set {iface} up")
        if not info.lower_up:
            raise UnavailableError(f"interface {iface} has no carrier (cable, Wi-Fi or peer down)",
                                   hint=f"check the link: `ip link show {iface}`")
        if info.kind == "vxlan":  # its frames are the inner ones: no VXLAN header left to check
            under = netlink.name_of(info.lower) if info.lower else None
            raise UsageError(f"{iface} is the VXLAN device itself: its frames are the decapsulated inner ones",
                             hint=f"capture on the underlay the VXLAN packets leave by: -i {under or '<underlay>'}"
                                  + ("" if under else " (`ip -d link show " + iface + "` names it after `dev`)"))
        if info.ifi_type not in (ARPHRD_ETHER, ARPHRD_LOOPBACK):
            raise UsageError(f"{iface} carries no Ethernet frames (ARPHRD {info.ifi_type}); "
                             "capture on the underlay interface the VXLAN packets leave by, or -i any")
    return info
