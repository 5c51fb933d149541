"""The source address the kernel picks for a destination and what glibc's
address selection reads about it (rtnetlink RTM_GETADDR, as glibc's __check_pf):
deprecated, optimistic, home and temporary flags, prefix length, device, and
whether the device is a tunnel. Shared by `addrsel` and `tunnel`."""

from __future__ import annotations

import ipaddress
import socket
from dataclasses import dataclass

from v6diag.core.rfc6724 import NO_INDEX, Candidate

IFA_F_TEMPORARY, IFA_F_OPTIMISTIC, IFA_F_HOMEADDRESS, IFA_F_DEPRECATED, IFA_F_TENTATIVE = 0x01, 0x04, 0x10, 0x20, 0x40
TUNNEL_TYPES = {768, 769, 776}  # ARPHRD_TUNNEL, ARPHRD_TUNNEL6, ARPHRD_SIT (if_arp.h): glibc's check_native.c


@dataclass
class HostAddress:
    address: str
    prefixlen: int
    index: int
    flags: int
    ifname: str


def addresses() -> list[HostAddress]:
    """Every address of this namespace (RTM_GETADDR, as glibc's __check_pf)."""
    from pyroute2 import IPRoute

    out = []
    with IPRoute() as ipr:
        names = {link["index"]: link.get_attr("IFLA_IFNAME") for link in ipr.get_links()}
        for a in ipr.get_addr():
            addr = a.get_attr("IFA_ADDRESS") or a.get_attr("IFA_LOCAL")
            if addr:
                flags = a.get_attr("IFA_FLAGS") or a["flags"]
                out.append(HostAddress(ipaddress.ip_address(addr).compressed, a["prefixlen"], a["index"], flags,
                                       names.get(a["index"], "?")))
    return out


def link_types() -> dict[int, int]:
    from pyroute2 import IPRoute

    with IPRoute() as ipr:
        return {link["index"]: link["ifi_type"] for link in ipr.get_links()}


def source_for(destination: str) -> str | None:
    """The source address the kernel picks: connect() a UDP socket, getsockname().
    (glibc reaches IPv4 destinations after an IPv6 one through its AF_INET6 socket,
    v4-mapped; the kernel's answer is the same address.)"""
    a = ipaddress.ip_address(destination)
    fam = socket.AF_INET6 if a.version == 6 else socket.AF_INET
    s = socket.socket(fam, socket.SOCK_DGRAM)
    try:
        s.connect((destination, 0, 0, 0) if fam == socket.AF_INET6 else (destination, 0))
        return ipaddress.ip_address(s.getsockname()[0].split("%")[0]).compressed
    except OSError:
        return None
    finally:
        s.close()


def candidates(ordered: list[str]) -> tuple[list[Candidate], list[HostAddress]]:
    """Candidates in resolver order, each with its source and the source's flags;
    like glibc, no flags at all when the host has no non-loopback IPv6 address."""
    own = addresses()
    kinds = link_types()
    has_v6 = any(ipaddress.ip_address(h.address).version == 6 and not ipaddress.ip_address(h.address).is_loopback
                 for h in own)
    by_addr = {h.address: h for h in own}
    out = []
    for i, dst in enumerate(ordered):
        a = ipaddress.ip_address(dst)
        c = Candidate(dst, a.version, i, source=source_for(dst))
        info = by_addr.get(c.source) if c.source and has_v6 else None
        if info is not None:
            c.deprecated = bool(info.flags & (IFA_F_DEPRECATED | IFA_F_OPTIMISTIC))
            c.home = bool(info.flags & IFA_F_HOMEADDRESS)
            c.prefixlen, c.index = info.prefixlen, info.index
            c.native = kinds.get(info.index) not in TUNNEL_TYPES and info.index in kinds
        else:
            c.index = NO_INDEX
        out.append(c)
    return out, own
