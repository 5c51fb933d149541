"""Typed records passed between the stages (source -> decode -> analyse -> report)."""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import Enum


class Severity(str, Enum):
    INFO = "info"
    WARNING = "warning"
    ERROR = "error"


@dataclass(frozen=True)
class Finding:
    severity: Severity
    code: str  # stable kebab-case identifier, documented in README
    message: str
    evidence: str = ""
    fix: str = ""

    def to_json(self) -> dict:
        return {
            "code": self.code,
            "severity": self.severity.value,
            "message": self.message,
            "evidence": self.evidence,
            "fix": self.fix,
        }


@dataclass(frozen=True)
class Frame:
    """One link-layer frame from any source (pcap, live socket)."""

    ts: float  # seconds since the epoch
    linktype: int  # pcap LINKTYPE_* (1 = Ethernet)
    data: bytes
    outgoing: bool = False  # sent by this host (live capture only)
    wire_len: int = 0  # original length on the wire (0 = same as data)
    csum_not_ready: bool | None = None  # live: the kernel's TP_STATUS_CSUMNOTREADY


@dataclass(frozen=True)
class Sighting:
    """Evidence that a device with `mac` uses `address` (or just exists).

    `technique` names how it was seen (see decode.nd.TECHNIQUES)."""

    ts: float
    mac: str  # lowercase aa:bb:cc:dd:ee:ff
    address: str | None  # compressed IPv6 text, None when only the MAC is known
    technique: str
    is_router: bool = False
    active: bool = True  # an answer to a probe (counts for "first reply")


@dataclass
class Host:
    mac: str
    vendor: str | None
    mac_locally_administered: bool
    addresses: list[str]
    link_local: str | None
    iid_kind: str
    seen_by: list[str]
    is_router: bool
    first_reply_s: float | None  # seconds after the probe burst, None if only heard

    def to_json(self) -> dict:
        return {
            "mac": self.mac,
            "vendor": self.vendor,
            "mac_locally_administered": self.mac_locally_administered,
            "addresses": self.addresses,
            "link_local": self.link_local,
            "iid_kind": self.iid_kind,
            "seen_by": self.seen_by,
            "is_router": self.is_router,
            "first_reply_s": self.first_reply_s,
        }


@dataclass
class DiscoveryReport:
    interface: str | None
    duration_s: float
    hosts: list[Host]
    source: str  # "live" or "pcap"
    packets: int = 0
    malformed: int = 0
    findings: list[Finding] = field(default_factory=list)

    def to_json(self) -> dict:
        return {
            "interface": self.interface,
            "source": self.source,
            "duration_s": round(self.duration_s, 3),
            "packets": self.packets,
            "malformed_packets": self.malformed,
            "hosts": [h.to_json() for h in self.hosts],
            "findings": [f.to_json() for f in self.findings],
        }


@dataclass
class ChecksumReport:
    source: str  # "pcap" | "live"
    input: str  # file path, "-" or interface name
    ports: list[int]
    packets: int
    vxlan_packets: int
    counts: dict[str, int]  # every flagged kind and class, zeros included
    flows: list[dict]  # busiest first
    findings: list[Finding]
    duration_s: float
    flagged_examples: list[tuple[dict, str]]  # (flagged row, scapy dissection) of the first --detail packets
    live: dict | None = None  # interface, offload features, InCsumErrors delta, kernel status

    def to_json(self) -> dict:
        """Everything except the flagged rows, which are streamed (render.json)."""
        return {
            "source": self.source, "input": self.input, "ports": self.ports,
            "packets": self.packets, "vxlan_packets": self.vxlan_packets,
            "counts": self.counts, "flows": self.flows,
            "findings": [f.to_json() for f in self.findings],
            "duration_s": round(self.duration_s, 3), "live": self.live,
        }
