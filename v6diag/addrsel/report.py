"""What `addrsel` reports (README "addrsel" JSON): one AddrselReport per query."""

from __future__ import annotations

from dataclasses import dataclass, field

from v6diag.core.report import Finding


@dataclass
class Destination:
    address: str
    family: str  # "ipv6" | "ipv4"
    source: str | None  # the kernel's source address for it; null: no route
    source_label: int | None
    dest_label: int
    precedence: int
    scope: int
    reachable: bool
    source_deprecated: bool = False
    source_ifname: str | None = None


@dataclass
class AddrselReport:
    query: str  # the name, or the addresses given
    policy: str  # "glibc defaults" or the gai.conf path
    destinations: list[Destination]  # in the resolver's order
    order: list[str]  # v6diag's prediction: what programs try first, second...
    decisions: list[dict]  # {a, b, rule, why} for each adjacent pair of `order`
    system_order: list[str] | None  # what this system's getaddrinfo returned (names only)
    findings: list[Finding] = field(default_factory=list)
    gai_conf: str | None = None  # a complete gai.conf that makes IPv6 win, when one would
