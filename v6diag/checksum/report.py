"""What `checksum` reports (README "checksum" JSON): verdict counts, flows, and
the flagged packets, which are streamed ahead of the rest."""

from __future__ import annotations

from dataclasses import dataclass, field
from dataclasses import field as _field

from v6diag.core.report import Finding, meta


def _hex16(v: int) -> str:
    return f"0x{v:04x}"


@dataclass(frozen=True)
class Flow:
    src: str
    dst: str
    dport: int
    vni: int

    def text(self) -> str:
        return f"{self.src} -> {self.dst}:{self.dport} vni {self.vni}"


@dataclass
class FlaggedRow:
    """One failed check of one packet."""

    index: int  # 0-based position in the capture
    kind: str  # verify.KINDS
    ts: float = field(metadata=meta(key="time", round=6))
    outer_src: str
    outer_dst: str
    dport: int
    vni: int
    # `field` shadows dataclasses.field from here on in this class body: _field below
    field: int = _field(metadata=meta(json=_hex16))  # the checksum as captured
    expected: int = _field(metadata=meta(json=_hex16))  # the checksum the bytes call for
    kernel_csum_not_ready: bool | None = _field(default=None, metadata=meta(omit_none=True))  # live only

    @classmethod
    def of(cls, index: int, ts: float, kind: str, fld: int, expected: int, flow: Flow) -> FlaggedRow:
        return cls(index, kind, ts, flow.src, flow.dst, flow.dport, flow.vni, fld, expected)

    @property
    def flow(self) -> Flow:
        return Flow(self.outer_src, self.outer_dst, self.dport, self.vni)


@dataclass
class FlowCounts:
    outer_src: str
    outer_dst: str
    dport: int
    vni: int
    packets: int
    counts: dict[str, int]  # verdict -> packets, only the non-zero ones


@dataclass
class VxlanDevice:
    name: str
    port: int | None
    udpcsum: bool | None
    offload: dict[str, bool]  # ethtool -k checksum features


@dataclass
class LiveCapture:
    interface: str
    kind: str | None  # IFLA_INFO_KIND of the capturing device
    offload: dict[str, bool]
    vxlan_devices: list[VxlanDevice]
    udp_in_csum_errors: dict[str, int]  # {"ipv4": n, "ipv6": n} during the capture
    kernel_csum_not_ready: int  # partial packets the kernel itself marked CHECKSUM_PARTIAL
    sent: dict[str, int] = field(default_factory=dict)  # {"vxlan_packets", "partial_packets"} this host sent
    received: dict[str, int] = field(default_factory=dict)  # the same, received
    # the kernel's own checksum drop reasons during the capture (skb:kfree_skb via tracefs, host-wide);
    # null where this kernel or this host cannot say
    kernel_drops: dict[str, int] | None = None


@dataclass
class Example:
    """A flagged packet kept whole, dissected for people (never in JSON)."""

    row: FlaggedRow
    data: bytes
    linktype: int


@dataclass
class ChecksumReport:
    source: str  # "pcap" | "live"
    input: str  # file path, "-" or interface name
    ports: list[int]
    packets: int
    vxlan_packets: int
    counts: dict[str, int]  # every flagged kind and class, zeros included
    flows: list[FlowCounts]  # busiest first
    other_flows: dict[str, int]  # {"packets", verdict...}: flows beyond the bounded table (flows.CAPACITY)
    findings: list[Finding]
    duration_s: float = field(metadata=meta(round=3))
    live: LiveCapture | None = None
    examples: list[Example] = field(default_factory=list, metadata=meta(json=False))
