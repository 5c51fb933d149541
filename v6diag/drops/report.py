"""What `drops` reports (README "drops" NDJSON): one DropEvent per packet the
kernel freed as dropped, then one line {"summary": Summary}.

Events stay dicts (TypedDict), as conntrack's do: `--from` replays recorded NDJSON
and keeps each event's keys in the order recorded."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from typing import Optional, TypedDict

from v6diag.core.report import Finding, meta

MAX_LOCATIONS = 64  # by_location keeps the busiest; the rest are summed under "other"
MAX_FLOWS = 32


class Inner(TypedDict, total=False):
    family: str
    proto: Optional[str]
    src: Optional[str]
    dst: Optional[str]
    sport: Optional[int]
    dport: Optional[int]


class DropEvent(TypedDict, total=False):
    time: float  # seconds since the epoch
    reason: str  # the kernel's name (SKB_DROP_REASON_ without the prefix)
    location: Optional[str]  # the freeing function, "udp_queue_rcv_one_skb+0x2f5/0x6b0"
    family: Optional[str]  # "ipv6" | "ipv4" | "arp" | None (other EtherTypes)
    proto: Optional[str]  # tcp udp icmpv6 ... (bpf source only)
    src: Optional[str]
    dst: Optional[str]
    sport: Optional[int]
    dport: Optional[int]
    ifname: Optional[str]
    netns: Optional[int]  # namespace inode (bpf source only)
    inner: Optional[Inner]  # the tunnelled flow of a VXLAN/sit packet
    source: str  # "bpf" | "tracefs" | "counters"
    why: str
    fix: str
    conntrack: dict  # --with-conntrack: {cause, explanation, time, delta_ms} of this flow's entry's destruction


@dataclass
class Summary:
    """The last NDJSON line, under "summary"."""

    source: str  # bpf | tracefs | counters | recorded
    by_reason: Counter = field(default_factory=Counter)
    by_location: Counter = field(default_factory=Counter)
    by_flow: list = field(default_factory=list)  # [{"flow": "udp 2001:db8::1 -> ...", "reason", "count"}]
    events: int = 0  # drops counted (exact when counted_in_kernel)
    lost: int = 0  # events the kernel's buffer lost before they were read
    duration_s: float = field(default=0.0, metadata=meta(round=3))
    missing: list[str] = field(default_factory=list)  # what the better sources lacked
    counted_in_kernel: bool = False  # by_reason (and by_location) are the kernel's own counts
    findings: list[Finding] = field(default_factory=list)
    _flows: Counter = field(default_factory=Counter, metadata={"json": False})

    def add(self, ev: DropEvent) -> None:
        self.events += 1
        self.by_reason[ev["reason"]] += 1
        if ev.get("location"):
            self.by_location[ev["location"].split("/")[0]] += 1
        if ev.get("src"):
            flow = f"{ev.get('proto') or '?'} {ev['src']}" + (f":{ev['sport']}" if ev.get("sport") is not None else "") \
                + f" -> {ev.get('dst')}" + (f":{ev['dport']}" if ev.get("dport") is not None else "")
            self._flows[(flow, ev["reason"])] += 1

    def finish(self) -> None:
        """Bound the tables for output: the busiest locations and flows."""
        if len(self.by_location) > MAX_LOCATIONS:
            top = Counter(dict(self.by_location.most_common(MAX_LOCATIONS)))
            top["other"] = sum(self.by_location.values()) - sum(top.values())
            self.by_location = top
        self.by_flow = [{"flow": f, "reason": r, "count": n} for (f, r), n in self._flows.most_common(MAX_FLOWS)]
