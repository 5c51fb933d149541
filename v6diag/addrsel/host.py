"""What address selection depends on, read from this host: the resolver's
answer (and the hosts file's order, which rule 10 keeps), each destination's
source with its flags (core.source_address), the device a destination leaves
by, and the sysctls that matter."""

from __future__ import annotations

import ipaddress
import socket
from pathlib import Path

from v6diag.core.source_address import candidates  # noqa: F401  (the command's one place for host facts)


def resolve(name: str, family: int) -> list[str]:
    """The system's getaddrinfo order (glibc sorts; this is what programs get)."""
    try:
        infos = socket.getaddrinfo(name, None, family, socket.SOCK_STREAM)
    except socket.gaierror:
        return []
    out: list[str] = []
    for *_, sockaddr in infos:
        a = ipaddress.ip_address(sockaddr[0].split("%")[0]).compressed
        if a not in out:
            out.append(a)
    return out


def hosts_file_order(name: str, path: Path = Path("/etc/hosts")) -> list[str] | None:
    """The order nss_files hands glibc for `name` (file order), when it is there:
    what rule 10 keeps. None when the name is not in the file (DNS, or another source)."""
    try:
        lines = path.read_text().splitlines()
    except OSError:
        return None
    out = []
    for line in lines:
        fields = line.split("#", 1)[0].split()
        if len(fields) >= 2 and name.lower() in (f.lower() for f in fields[1:]):
            try:
                a = ipaddress.ip_address(fields[0]).compressed
            except ValueError:
                continue
            if a not in out:
                out.append(a)
    return out or None


def route_device(destination: str) -> str | None:
    """The device the kernel would send to `destination` through (ip route get)."""
    from pyroute2 import IPRoute

    try:
        with IPRoute() as ipr:
            routes = ipr.route("get", dst=destination)
            if not routes:
                return None
            index = routes[0].get_attr("RTA_OIF")
            links = ipr.get_links(index) if index else []
            return links[0].get_attr("IFLA_IFNAME") if links else None
    except Exception:  # no route: pyroute2 raises NetlinkError
        return None


def sysctl(path: str) -> str | None:
    try:
        return Path("/proc/sys/net/ipv6/conf", path).read_text().strip()
    except OSError:
        return None
