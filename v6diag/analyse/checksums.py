"""Tally checksum verdicts per class and per VXLAN flow; stream flagged rows.

Memory stays flat: per-flow counters and the first `keep` flagged packets only;
every flagged row goes to `on_flagged` as soon as its batch is done."""

from __future__ import annotations

import ipaddress
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np

from v6diag.decode.checksum import CLEAN, KINDS, OUTER_UDP6_ZERO, OUTER_UDP_ZERO, UNVERIFIABLE, verify
from v6diag.decode.checksum_fast import KEY_BYTES, key_of, verify_batch
from v6diag.model import Finding, Severity
from v6diag.sources.pcap import Batch

NOTES = (CLEAN, UNVERIFIABLE, OUTER_UDP_ZERO, OUTER_UDP6_ZERO)
OUTER_FRAGMENT = "outer IP fragment"  # the reason both verifiers give


@dataclass(frozen=True)
class Flow:
    src: str
    dst: str
    dport: int
    vni: int

    def text(self) -> str:
        return f"{self.src} -> {self.dst}:{self.dport} vni {self.vni}"


def flow_of(key: bytes) -> Flow:
    v4 = key[0] == 4
    src = key[1:5] if v4 else key[1:17]
    dst = key[17:21] if v4 else key[17:33]
    return Flow(str(ipaddress.ip_address(src)), str(ipaddress.ip_address(dst)),
                int.from_bytes(key[33:35], "big"), int.from_bytes(key[35:38], "big"))


@dataclass
class FlaggedRow:
    index: int
    ts: float
    kind: str
    field: int
    expected: int
    flow: Flow
    kernel_csum_not_ready: bool | None = None  # live capture: PACKET_AUXDATA said so

    def to_json(self) -> dict:
        d = {"index": self.index, "kind": self.kind, "time": round(self.ts, 6),
             "outer_src": self.flow.src, "outer_dst": self.flow.dst, "dport": self.flow.dport,
             "vni": self.flow.vni, "field": f"0x{self.field:04x}", "expected": f"0x{self.expected:04x}"}
        if self.kernel_csum_not_ready is not None:
            d["kernel_csum_not_ready"] = self.kernel_csum_not_ready
        return d


@dataclass
class ChecksumTally:
    ports: tuple[int, ...]
    keep: int = 5  # flagged packets kept (with bytes) for dissection
    on_flagged: Callable[[FlaggedRow], None] | None = None
    packets: int = 0
    vxlan_packets: int = 0
    counts: Counter = field(default_factory=Counter)
    flows: dict[bytes, Counter] = field(default_factory=dict)
    kept: list[tuple[FlaggedRow, bytes, int]] = field(default_factory=list)
    unverifiable_why: Counter = field(default_factory=Counter)
    kernel_not_ready: int = 0  # flagged partial packets the kernel confirmed as CHECKSUM_PARTIAL
    kernel_not_ready_other: int = 0  # packets the kernel marked but we found complete or bad

    def add_batch(self, batch: Batch, kernel_status: list[bool] | None = None) -> None:
        """kernel_status[i]: TP_STATUS_CSUMNOTREADY for packet i (live capture only)."""
        self.packets += len(batch)
        cols, slow = verify_batch(batch.buf, batch.offsets, batch.lengths, batch.linktypes,
                                  batch.first_index, self.ports)
        rows: list[FlaggedRow] = []
        self._add_columns(cols, batch, rows)
        for pos in slow:
            self._add_slow(batch, pos, rows)
        rows.sort(key=lambda r: (r.index, KINDS.index(r.kind)))
        for r in rows:
            if kernel_status is not None:
                r.kernel_csum_not_ready = kernel_status[r.index - batch.first_index]
                if r.kernel_csum_not_ready and r.kind.endswith("_partial"):
                    self.kernel_not_ready += 1
            if len(self.kept) < self.keep and not any(k[0].index == r.index for k in self.kept):
                pos = r.index - batch.first_index
                off, n = batch.offsets[pos], batch.lengths[pos]
                self.kept.append((r, batch.buf[off : off + n], batch.linktypes[pos]))
            if self.on_flagged:
                self.on_flagged(r)

    def _add_columns(self, cols, batch: Batch, rows: list[FlaggedRow]) -> None:
        n = len(cols.index)
        if n == 0:
            return
        self.vxlan_packets += n
        keys, inverse = np.unique(cols.key.view(f"V{KEY_BYTES}").ravel(), return_inverse=True)
        flows = [self.flows.setdefault(bytes(k), Counter()) for k in keys]
        for i, c in zip(*np.unique(inverse, return_counts=True)):
            flows[i]["packets"] += int(c)
        local_flow = [flow_of(bytes(k)) for k in keys]
        for name, mask in cols.notes.items():
            total = int(mask.sum())
            if total:
                self.counts[name] += total
                for i, c in zip(*np.unique(inverse[mask], return_counts=True)):
                    flows[i][name] += int(c)
        for why, mask in cols.why.items():
            if mask.any():
                self.unverifiable_why[why] += int(mask.sum())
        first = batch.first_index
        for kind, (mask, fld, exp) in cols.flags.items():
            where = np.nonzero(mask)[0]
            if len(where) == 0:
                continue
            self.counts[kind] += len(where)
            for i, c in zip(*np.unique(inverse[where], return_counts=True)):
                flows[i][kind] += int(c)
            idx, f_, e_, inv = cols.index[where].tolist(), fld[where].tolist(), exp[where].tolist(), inverse[where].tolist()
            ts = batch.ts
            rows.extend(FlaggedRow(i, ts[i - first], kind, f, e, local_flow[j]) for i, f, e, j in zip(idx, f_, e_, inv))

    def _add_slow(self, batch: Batch, pos: int, rows: list[FlaggedRow]) -> None:
        off, n = batch.offsets[pos], batch.lengths[pos]
        v = verify(batch.buf[off : off + n], batch.linktypes[pos], self.ports)
        if not v.vxlan:
            return
        self.vxlan_packets += 1
        key = key_of(4 if len(v.outer_src) == 4 else 6, v.outer_src, v.outer_dst, v.dport, v.vni)
        flow = self.flows.setdefault(key, Counter())
        flow["packets"] += 1
        for note in v.notes:
            self.counts[note] += 1
            flow[note] += 1
        if v.why:
            self.unverifiable_why[v.why] += 1
        index = batch.first_index + pos
        for f in v.flags:
            self.counts[f.kind] += 1
            flow[f.kind] += 1
            rows.append(FlaggedRow(index, batch.ts[pos], f.kind, f.field, f.expected, flow_of(key)))

    # -- results -------------------------------------------------------------
    def bad_total(self) -> int:
        return sum(self.counts[k] for k in KINDS if k.endswith("_bad"))

    def partial_total(self) -> int:
        return sum(self.counts[k] for k in KINDS if k.endswith("_partial"))

    def flow_rows(self) -> list[tuple[Flow, Counter]]:
        rows = [(flow_of(k), c) for k, c in self.flows.items()]
        rows.sort(key=lambda r: (-r[1]["packets"], r[0].text()))
        return rows


def findings(t: ChecksumTally, capture_problem: str | None = None) -> list[Finding]:
    out: list[Finding] = []
    if t.vxlan_packets == 0:
        out.append(Finding(Severity.WARNING, "no-vxlan",
                           f"no VXLAN packets on UDP ports {', '.join(map(str, t.ports))} "
                           f"among {t.packets} packets",
                           fix="name the tunnel's port with --port N (see `ip -d link show type vxlan`)"))
    bad = t.bad_total()
    if bad:
        by_kind = ", ".join(f"{t.counts[k]} {k}" for k in KINDS if k.endswith("_bad") and t.counts[k])
        worst = max(t.flow_rows(), key=lambda r: sum(r[1][k] for k in KINDS if k.endswith("_bad")))
        fix = ("the sender wrote a wrong checksum: receivers drop these packets and count them in "
               "UDP InCsumErrors (`nstat -az UdpInCsumErrors`). A VXLAN packet NATed twice on the sender "
               "(kube-proxy/flannel, fixed in Kubernetes 1.16.13/1.17.9/1.18.6) is the known cause; "
               "workaround: `ethtool -K flannel.1 tx-checksum-ip-generic off` on the sending node")
        out.append(Finding(Severity.ERROR, "checksum-bad",
                           f"{bad} checksums are wrong ({by_kind})",
                           evidence=f"worst flow: {worst[0].text()}", fix=fix))
    partial = t.partial_total()
    if partial:
        confirmed = f"; the kernel confirmed {t.kernel_not_ready} as not yet computed" if t.kernel_not_ready else ""
        out.append(Finding(Severity.INFO, "checksum-offload-pending",
                           f"{partial} checksums are partial: left for the NIC to fill in (TX offload), "
                           f"captured before it did; not corruption{confirmed}",
                           evidence=", ".join(f"{t.counts[k]} {k}" for k in KINDS if k.endswith('_partial') and t.counts[k])))
    if t.counts[OUTER_UDP6_ZERO]:
        out.append(Finding(Severity.INFO, "outer-udp6-zero-checksum",
                           f"{t.counts[OUTER_UDP6_ZERO]} VXLAN packets over IPv6 carry UDP checksum 0, "
                           "allowed for tunnels by RFC 6935/6936 (udp6zerocsumtx)"))
    if t.counts[UNVERIFIABLE]:
        out.append(Finding(Severity.INFO, "checksum-unverifiable",
                           f"{t.counts[UNVERIFIABLE]} VXLAN packets could not be verified",
                           evidence="; ".join(f"{n} {why}" for why, n in t.unverifiable_why.most_common(3)),
                           fix="capture whole packets (`tcpdump -s 0`); fragments cannot be checked one by one (no reassembly)"))
    if t.unverifiable_why[OUTER_FRAGMENT]:
        out.append(Finding(Severity.WARNING, "vxlan-outer-fragmented",
                           f"{t.unverifiable_why[OUTER_FRAGMENT]} VXLAN packets were fragmented on the underlay: "
                           "the VXLAN device's MTU is larger than the underlay allows",
                           fix="give the VXLAN device the underlay MTU minus 50 (IPv4 underlay) or 70 (IPv6), "
                               "e.g. `ip link set vxlan0 mtu 1450` on a 1500-byte underlay"))
    if capture_problem:
        out.append(Finding(Severity.WARNING, "capture-truncated", capture_problem))
    return out


def offload_findings(t: ChecksumTally, live: dict, devices: list[dict]) -> list[Finding]:
    """Live capture only: what the kernel itself says, and the device to fix."""
    out: list[Finding] = []
    errors = live.get("udp_in_csum_errors") or {}
    dropped = sum(errors.values())
    if dropped:
        out.append(Finding(Severity.ERROR, "udp-incsumerrors",
                           f"this host dropped {dropped} UDP datagrams for bad checksums during the capture",
                           evidence=f"InCsumErrors +{errors.get('ipv4', 0)} (IPv4), +{errors.get('ipv6', 0)} (IPv6)",
                           fix="find the sender with the flows above; a capture on the sending node shows "
                               "whether it wrote them wrong (bad) or its NIC did not fill them in (partial)"))
    partial = t.partial_total()
    if t.vxlan_packets and partial * 2 > t.vxlan_packets:
        names = [d["name"] for d in devices] or [live["interface"]]
        out.append(Finding(Severity.WARNING, "offload-partial-dominates",
                           f"{partial} of {t.vxlan_packets} VXLAN packets leave with checksums the NIC must "
                           "complete; if receivers drop them (InCsumErrors there), turn the offload off "
                           "on the VXLAN device",
                           evidence=f"{live['interface']} tx-checksum-ip-generic "
                                    f"{_on_off(live.get('offload', {}).get('tx-checksum-ip-generic'))}",
                           fix="; ".join(f"ethtool -K {n} tx-checksum-ip-generic off" for n in names)))
    return out


def _on_off(value: bool | None) -> str:
    return "unknown" if value is None else "on" if value else "off"
