"""Interface facts and the neighbour table, read over rtnetlink (pyroute2)."""

from __future__ import annotations

import ipaddress
import socket
from dataclasses import dataclass

from v6diag.core.constants import ARPHRD_ETHER
from v6diag.core.errors import UnavailableError, UsageError

IFF_UP = 0x1  # linux/if.h
IFF_LOOPBACK = 0x8
IFF_LOWER_UP = 0x10000
IFA_F_TENTATIVE = 0x40
IFA_F_DADFAILED = 0x08
NTF_ROUTER = 0x80
NUD_USABLE = 0x02 | 0x04 | 0x08 | 0x10 | 0x80  # REACHABLE STALE DELAY PROBE PERMANENT


@dataclass(frozen=True)
class Interface:
    name: str
    index: int
    mac: str
    link_local: str
    tentative_link_local: bool
    addresses: list[str]  # global and ULA, usable as sources
    prefixes: list[str]  # their /64 networks, for EUI-64 guesses
    ipv4: tuple[str, ...] = ()  # IPv4 addresses with their prefix length, "192.168.1.10/24"


def _iproute():
    from pyroute2 import IPRoute  # lazy: keeps `--help` fast

    return IPRoute()


@dataclass(frozen=True)
class Link:
    name: str
    index: int
    up: bool
    ifi_type: int
    kind: str | None  # rtnetlink IFLA_INFO_KIND: "vxlan", "veth", "wireguard"... None for plain NICs
    lower_up: bool = True  # IFF_LOWER_UP: carrier
    lower: int | None = None  # vxlan: the underlay's ifindex (IFLA_VXLAN_LINK), when it was given


def link(name: str) -> Link:
    """Any interface by name; UsageError naming it when there is none."""
    with _iproute() as ipr:
        idx = ipr.link_lookup(ifname=name)
        if not idx:
            raise UsageError(f"no such interface: {name}", hint="list interfaces with `ip -br link`")
        msg = ipr.get_links(idx[0])[0]
    info = msg.get_attr("IFLA_LINKINFO")
    kind = info.get_attr("IFLA_INFO_KIND") if info else None
    data = info.get_attr("IFLA_INFO_DATA") if info else None
    lower = data.get_attr("IFLA_VXLAN_LINK") if kind == "vxlan" and hasattr(data, "get_attr") else None
    return Link(name, idx[0], bool(msg["flags"] & IFF_UP), msg["ifi_type"], kind,
                bool(msg["flags"] & IFF_LOWER_UP), lower)


def name_of(index: int) -> str | None:
    with _iproute() as ipr:
        links = ipr.get_links(index)
    return links[0].get_attr("IFLA_IFNAME") if links else None


def interface(name: str) -> Interface:
    """Look the interface up and check it can carry discovery; raise a clear
    UsageError/UnavailableError naming what is wrong and the command that fixes it."""
    with _iproute() as ipr:
        idx = ipr.link_lookup(ifname=name)
        if not idx:
            raise UsageError(f"no such interface: {name}", hint="list interfaces with `ip -br link`")
        link = ipr.get_links(idx[0])[0]
        addrs = ipr.get_addr(family=socket.AF_INET6, index=idx[0])
        addrs4 = ipr.get_addr(family=socket.AF_INET, index=idx[0])
    flags = link["flags"]
    if flags & IFF_LOOPBACK:
        raise UsageError(f"{name} is the loopback interface: there is no link to discover on",
                         hint="name the LAN interface, see `ip -br link`")
    if link["ifi_type"] != ARPHRD_ETHER:
        raise UsageError(f"{name} is not an Ethernet-like link (ARPHRD {link['ifi_type']}): "
                         "neighbour discovery needs link-layer addresses")
    if not flags & IFF_UP:
        raise UnavailableError(f"interface {name} is down", hint=f"ip link set {name} up")
    if not flags & IFF_LOWER_UP:
        raise UnavailableError(f"interface {name} has no carrier (cable, Wi-Fi or peer down)",
                               hint=f"check the link: `ip link show {name}`")
    link_local, tentative, usable, prefixes = None, False, [], []
    for a in addrs:
        text = ipaddress.IPv6Address(a.get_attr("IFA_ADDRESS")).compressed
        aflags = a.get_attr("IFA_FLAGS") or a["flags"]
        if aflags & IFA_F_DADFAILED:
            continue
        ip = ipaddress.IPv6Address(text)
        if ip.is_link_local:
            if link_local is None or tentative:
                link_local, tentative = text, bool(aflags & IFA_F_TENTATIVE)
        elif not aflags & IFA_F_TENTATIVE and not ip.is_loopback:
            usable.append(text)
            if a["prefixlen"] <= 64:
                net = ipaddress.IPv6Network(f"{text}/64", strict=False)
                if str(net.network_address) not in prefixes:
                    prefixes.append(str(net.network_address))
    if link_local is None:
        raise UnavailableError(f"interface {name} has no IPv6 link-local address (IPv6 disabled?)",
                               hint=f"sysctl -w net.ipv6.conf.{name}.disable_ipv6=0")
    if tentative:
        raise UnavailableError(
            f"{name}'s link-local address {link_local} is still tentative (DAD in progress)",
            hint="wait a second and retry",
        )
    ipv4 = tuple(f"{a.get_attr('IFA_ADDRESS')}/{a['prefixlen']}" for a in addrs4 if a.get_attr("IFA_ADDRESS"))
    return Interface(name, idx[0], link.get_attr("IFLA_ADDRESS").lower(), link_local,
                     tentative, usable, prefixes, ipv4)


@dataclass(frozen=True)
class Neighbour:
    mac: str  # lowercase
    address: str  # compressed IPv6
    router: bool  # NTF_ROUTER: it said so in its NAs


def neighbours(index: int) -> list[Neighbour]:
    """The kernel's usable IPv6 neighbour entries on one interface (ip -6 neigh)."""
    out = []
    with _iproute() as ipr:
        entries = ipr.get_neighbours(family=socket.AF_INET6, ifindex=index)
    for n in entries:
        mac, dst = n.get_attr("NDA_LLADDR"), n.get_attr("NDA_DST")
        if not mac or not dst or not n["state"] & NUD_USABLE:
            continue
        ip = ipaddress.IPv6Address(dst)
        if ip.is_multicast or mac == "00:00:00:00:00:00":
            continue
        out.append(Neighbour(mac.lower(), ip.compressed, bool(n["flags"] & NTF_ROUTER)))
    return out


def mtu(name: str) -> int | None:
    with _iproute() as ipr:
        idx = ipr.link_lookup(ifname=name)
        return ipr.get_links(idx[0])[0].get_attr("IFLA_MTU") if idx else None


def index_in(netns_name: str, ifname: str) -> int | None:
    """An interface's index inside another network namespace (ip -n NS link)."""
    from pyroute2 import NetNS

    with NetNS(netns_name) as ns:
        found = ns.link_lookup(ifname=ifname)
    return found[0] if found else None
