"""Tally checksum verdicts per class and per VXLAN flow; stream flagged rows.

Memory stays flat: per-flow counters and the first `keep` flagged packets only;
every flagged row goes to `on_flagged` as soon as its batch is done."""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np

from v6diag.checksum.flows import FlowTable
from v6diag.checksum.report import Example, FlaggedRow
from v6diag.checksum.verify import CLEAN, KINDS, OUTER_UDP6_ZERO, OUTER_UDP_ZERO, UNVERIFIABLE, verify
from v6diag.checksum.verify_fast import KEY_BYTES, key_of, verify_batch
from v6diag.core.frames import Batch

NOTES = (CLEAN, UNVERIFIABLE, OUTER_UDP_ZERO, OUTER_UDP6_ZERO)
# per-flow counts in the order verify_fast produces them (notes, then flags): the
# JSON's per-flow "counts" keep the order they always had
FLOW_COLUMNS = (OUTER_UDP_ZERO, OUTER_UDP6_ZERO, UNVERIFIABLE, CLEAN, "outer_ip_bad", "inner_ip_bad", "inner_udp_bad",
                "inner_tcp_partial", "inner_tcp_bad", "inner_udp_partial", "inner_icmp_bad", "inner_icmpv6_bad",
                "outer_udp_partial", "outer_udp_bad")
OUTER_FRAGMENT = "outer IP fragment"  # the reason both verifiers give


@dataclass
class ChecksumTally:
    ports: tuple[int, ...]
    keep: int = 5  # flagged packets kept (with bytes) for dissection
    on_flagged: Callable[[FlaggedRow], None] | None = None
    packets: int = 0
    vxlan_packets: int = 0
    counts: Counter = field(default_factory=Counter)
    flows: FlowTable = field(default_factory=lambda: FlowTable(FLOW_COLUMNS))
    kept: list[Example] = field(default_factory=list)
    unverifiable_why: Counter = field(default_factory=Counter)
    kernel_not_ready: int = 0  # flagged partial packets the kernel confirmed as CHECKSUM_PARTIAL
    kernel_not_ready_other: int = 0  # packets the kernel marked but we found complete or bad
    # live: by direction, because only what this host sends is its own NIC's business
    sent: Counter = field(default_factory=Counter)  # "vxlan", "partial", and each partial kind
    received: Counter = field(default_factory=Counter)

    def add_batch(self, batch: Batch, kernel_status: list[bool] | None = None) -> list[FlaggedRow]:
        """kernel_status[i]: TP_STATUS_CSUMNOTREADY for packet i (live capture only).
        Returns the batch's flagged rows, in capture order."""
        self.packets += len(batch)
        cols, slow = verify_batch(batch.buf, batch.offsets, batch.lengths, batch.linktypes,
                                  batch.first_index, self.ports)
        rows: list[FlaggedRow] = []
        self._add_columns(cols, batch, rows)
        for pos in slow:
            self._add_slow(batch, pos, rows)
        rows.sort(key=lambda r: (r.index, KINDS.index(r.kind)))
        if batch.outgoing is not None:
            self._directions(batch, cols.index, slow, rows)
        for r in rows:
            if kernel_status is not None:
                r.kernel_csum_not_ready = kernel_status[r.index - batch.first_index]
                if r.kernel_csum_not_ready and r.kind.endswith("_partial"):
                    self.kernel_not_ready += 1
            if len(self.kept) < self.keep and not any(k.row.index == r.index for k in self.kept):
                pos = r.index - batch.first_index
                off, n = batch.offsets[pos], batch.lengths[pos]
                self.kept.append(Example(r, batch.buf[off : off + n], batch.linktypes[pos]))
            if self.on_flagged:
                self.on_flagged(r)
        return rows

    def _directions(self, batch: Batch, fast_index, slow, rows: list[FlaggedRow]) -> None:
        """Count VXLAN and partial packets sent and received (live captures)."""
        first, out = batch.first_index, batch.outgoing
        vxlan = [int(i) - first for i in fast_index] + [p for p in slow if self._is_vxlan(batch, p)]
        for pos in vxlan:
            (self.sent if out[pos] else self.received)["vxlan"] += 1
        seen: set[int] = set()
        for r in rows:
            if r.kind.endswith("_partial"):
                side = self.sent if out[r.index - first] else self.received
                side[r.kind] += 1
                if r.index not in seen:
                    seen.add(r.index)
                    side["partial"] += 1

    def _is_vxlan(self, batch: Batch, pos: int) -> bool:
        off, n = batch.offsets[pos], batch.lengths[pos]
        return verify(batch.buf[off : off + n], batch.linktypes[pos], self.ports).vxlan

    def _add_columns(self, cols, batch: Batch, rows: list[FlaggedRow]) -> None:
        n = len(cols.index)
        if n == 0:
            return
        self.vxlan_packets += n
        keys, inverse = np.unique(cols.key.view(f"V{KEY_BYTES}").ravel(), return_inverse=True)
        inverse = inverse.ravel()
        table = self.flows
        per_flow = np.zeros((len(keys), len(table.columns)), np.int64)  # this batch's counts, per flow
        per_flow[:, 0] = np.bincount(inverse, minlength=len(keys))
        for name, mask in cols.notes.items():
            total = int(mask.sum())
            if total:
                self.counts[name] += total
                per_flow[:, table.col[name]] = np.bincount(inverse[mask], minlength=len(keys))
        for why, mask in cols.why.items():
            if mask.any():
                self.unverifiable_why[why] += int(mask.sum())
        first, ts = batch.first_index, batch.ts
        key_bytes = [bytes(k) for k in keys]
        for kind, (mask, fld, exp) in cols.flags.items():
            where = np.nonzero(mask)[0]
            if len(where) == 0:
                continue
            self.counts[kind] += len(where)
            per_flow[:, table.col[kind]] = np.bincount(inverse[where], minlength=len(keys))
            idx, f_, e_, inv = cols.index[where].tolist(), fld[where].tolist(), exp[where].tolist(), inverse[where].tolist()
            # addresses are formatted only for flows with flagged packets, once each
            rows.extend(FlaggedRow.of(i, ts[i - first], kind, f, e, table.text(key_bytes[j]))
                        for i, f, e, j in zip(idx, f_, e_, inv))
        table.merge(key_bytes, per_flow)

    def _add_slow(self, batch: Batch, pos: int, rows: list[FlaggedRow]) -> None:
        off, n = batch.offsets[pos], batch.lengths[pos]
        v = verify(batch.buf[off : off + n], batch.linktypes[pos], self.ports)
        if not v.vxlan:
            return
        self.vxlan_packets += 1
        key = key_of(4 if len(v.outer_src) == 4 else 6, v.outer_src, v.outer_dst, v.dport, v.vni)
        table = self.flows
        row = np.zeros((1, len(table.columns)), np.int64)
        row[0, 0] = 1
        for note in v.notes:
            self.counts[note] += 1
            row[0, table.col[note]] += 1
        if v.why:
            self.unverifiable_why[v.why] += 1
        index = batch.first_index + pos
        for f in v.flags:
            self.counts[f.kind] += 1
            row[0, table.col[f.kind]] += 1
            rows.append(FlaggedRow.of(index, batch.ts[pos], f.kind, f.field, f.expected, table.text(key)))
        table.merge([key], row)

    # -- results -------------------------------------------------------------
    def bad_total(self) -> int:
        return sum(self.counts[k] for k in KINDS if k.endswith("_bad"))

    def partial_total(self) -> int:
        return sum(self.counts[k] for k in KINDS if k.endswith("_partial"))

    def flow_rows(self, n: int = 100):
        """The n busiest flows: (Flow, {"packets": n, verdict: n...})."""
        return self.flows.top(n)
