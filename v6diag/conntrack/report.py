"""What `conntrack` reports (README "conntrack" NDJSON): one DestroyEvent per
destroyed entry, streamed as it happens, then one Summary.

Events stay dicts at run time (TypedDict) on purpose: `--from` replays recorded
NDJSON and must print each event's keys in the order it was recorded."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from typing import Optional, TypedDict

from v6diag.core.report import Finding, meta


class Tuple(TypedDict):
    src: str
    dst: str
    sport: Optional[int]
    dport: Optional[int]
    proto: str


class DestroyEvent(TypedDict, total=False):
    time: float
    family: str  # "ipv4" | "ipv6"
    orig: Tuple
    reply: Tuple
    proto: str
    mark: int
    zone: int
    netns: Optional[int]  # namespace inode; null from netlink
    status: list  # IPS_* names
    tcp_state: Optional[str]
    expired: Optional[bool]
    timeout_left_jiffies: int
    pid: Optional[int]
    comm: Optional[str]
    context: Optional[str]  # "softirq" | "kworker" | "process"
    stack: list  # kernel functions, innermost first
    mode: str  # "kprobe" | "fentry" | "netlink"
    cause: str  # classify.CAUSES
    explanation: str
    fix: str
    evidence: Optional[str]


@dataclass
class Summary:
    """The last NDJSON line."""

    summary: bool = field(default=True, init=False)
    mode: str = "netlink"  # kprobe | fentry | netlink | recorded
    missing: list[str] = field(default_factory=list)  # what the BPF path lacked
    events: int = 0  # entries destroyed (exact when counted_in_kernel)
    lost: int = 0  # events the kernel's buffer could not take (or netlink's ENOBUFS)
    causes: Counter = field(default_factory=Counter)
    duration_s: float = field(default=0.0, metadata=meta(round=3))
    findings: list[Finding] = field(default_factory=list)
    # BPF probe only: events and causes are the program's own counts, whatever the
    # buffer lost; reported is how many events reached v6diag; uncounted is what the
    # count table had no room for (its COUNT_SLOTS keys were all in use)
    counted_in_kernel: Optional[bool] = field(default=None, metadata=meta(omit_none=True))
    reported: Optional[int] = field(default=None, metadata=meta(omit_none=True))
    uncounted: Optional[int] = field(default=None, metadata=meta(omit_none=True))
    buffer: Optional[str] = field(default=None, metadata=meta(omit_none=True))  # "ring" | "perf" | "none"
    # sent by the kernel but still in the buffer when watching ended (Ctrl-C does not
    # wait for a backlog): events = reported + lost + unread + uncounted
    unread: Optional[int] = field(default=None, metadata=meta(omit_none=True))

    def add(self, cause: str) -> None:
        self.events += 1
        self.causes[cause] += 1

    def from_kernel_counts(self, causes: Counter, uncounted: int, lost: int, buffer: str) -> None:
        """Totals from the program's counts; what was streamed becomes `reported`."""
        self.reported, self.counted_in_kernel = self.events, True
        self.causes = causes
        self.events = sum(causes.values()) + uncounted
        self.uncounted, self.lost, self.buffer = uncounted, lost, buffer
        if buffer != "none":
            self.unread = max(0, self.events - uncounted - lost - self.reported)
