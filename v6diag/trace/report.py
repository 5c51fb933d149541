"""What `trace` reports (README "trace" JSON): the ND and DHCPv6 messages it
decoded, the exchanges rebuilt from them, routers, delegated prefixes, findings."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Union

from v6diag.core.report import Finding, meta


@dataclass
class Message:
    """One ND or DHCPv6 message seen in a capture or on the wire."""

    index: int
    ts: float
    proto: str  # "nd" | "dhcpv6"
    type: str  # rs ra ns na redirect | solicit advertise request ... relay-forw
    src: str
    dst: str
    mac: str | None
    details: dict = field(default_factory=dict)  # the message's fields, decoded (nd.py, dhcp6.py)
    problems: list[str] = field(default_factory=list)


# Exchanges: `time` is the first request's, rounded to the microsecond when made
# (exchanges are sorted by it); latencies are in milliseconds.
@dataclass
class NsExchange:
    type: str = field(default="ns", init=False)
    target: str = ""
    time: float = 0.0
    requests: int = 0
    answered: bool = False
    latency_ms: float | None = None
    answered_by: str | None = None  # the MAC that answered
    router: bool | None = None  # the NA's R flag
    solicited_by: list[str] = field(default_factory=list)
    asked_by_us: bool | None = field(default=None, metadata=meta(omit_none=True))  # unanswered, live only


@dataclass
class DadExchange:
    type: str = field(default="dad", init=False)
    target: str = ""
    time: float = 0.0
    probes: int = 0
    by: list[str] = field(default_factory=list)
    duplicate: bool = False
    duplicate_by: str | None = None


@dataclass
class RsExchange:
    type: str = field(default="rs", init=False)
    client: str = ""
    time: float = 0.0
    requests: int = 0
    answered: bool = False
    router: str | None = None
    latency_ms: float | None = None
    last: float = field(default=0.0, metadata=meta(json=False))  # the last RS sent


@dataclass
class RedirectExchange:
    type: str = field(default="redirect", init=False)
    time: float = 0.0
    router: str = ""
    destination: str = ""
    target: str = ""


@dataclass
class Dhcpv6Exchange:
    type: str = field(default="dhcpv6", init=False)
    kind: str = ""  # the client's message: solicit, request, information-request...
    xid: int | None = None
    client_duid: str = ""
    client: str = ""
    time: float = 0.0
    requests: int = 0
    replies: list[str] = field(default_factory=list)
    answered: bool = False
    latency_ms: float | None = None
    server_duid: str | None = None
    ia_na_requested: bool = False
    ia_pd_requested: bool = False
    addresses: list[str] = field(default_factory=list)
    prefixes: list[dict] = field(default_factory=list)  # {"prefix", "valid", "preferred", "in"}
    status: list[dict] = field(default_factory=list)  # {"in", "where", "code", "name", "message"}
    server: str | None = field(default=None, metadata=meta(omit_none=True))  # once a reply came
    retransmissions: int = 0
    first: float = field(default=0.0, metadata=meta(json=False))
    last: float = field(default=0.0, metadata=meta(json=False))


Exchange = Union[NsExchange, DadExchange, RsExchange, RedirectExchange, Dhcpv6Exchange]


@dataclass
class TraceReport:
    interface: str | None
    source: str  # "live" | "pcap"
    duration_s: float = field(metadata=meta(round=3))
    packets: int
    messages: int
    malformed: int = field(metadata=meta(key="malformed_packets"))
    exchanges: list[Exchange]
    findings: list[Finding]
    delegated_prefixes: list[str]
    routers: list[dict]  # per router: its latest RA's fields (nd.py), advertisements, last_seen
