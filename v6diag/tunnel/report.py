"""What `tunnel` reports (README "tunnel" JSON): a checklist of Findings (shown
as {id, status, message, fix}) and what the underlay carried."""

from __future__ import annotations

from dataclasses import dataclass, field

from v6diag.core.report import Finding, checklist_json, has_errors, meta


@dataclass
class TunnelFlow:
    kind: str  # 6in4 | ip6ip6 | gre | vxlan | wireguard
    src: str
    dst: str
    packets: int


@dataclass
class IcmpErrorCount:
    sender: str = field(metadata=meta(key="from"))
    error: str  # port-unreachable, frag-needed, ptb...
    about: str | None  # the tunnel kind of the quoted packet
    to: str  # the quoted packet's destination
    mtu: int | None
    count: int


@dataclass
class PtbCount:
    sender: str = field(metadata=meta(key="from"))
    mtu: int | None
    count: int


@dataclass
class UnderlayReport:
    packets: int
    flows: list[TunnelFlow]
    echo_requests: int
    echo_answered: int
    icmp_errors: list[IcmpErrorCount]
    packet_too_big: list[PtbCount]
    wireguard_messages: dict[str, int]


@dataclass
class TunnelReport:
    ok: bool  # no check failed
    role: str  # client | server | unknown (--pcap)
    interface: str | None
    kind: str | None
    source: str  # live | config (--no-live) | pcap
    findings: list[Finding] = field(metadata=meta(key="checks", json=checklist_json))
    underlay: UnderlayReport | None = None  # None when nothing was captured

    @classmethod
    def of(cls, role: str, interface: str | None, kind: str | None, source: str, checks: list[Finding],
           underlay: UnderlayReport | None = None) -> TunnelReport:
        return cls(not has_errors(checks), role, interface, kind, source, checks, underlay)
