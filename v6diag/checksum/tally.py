"""Tally checksum verdicts per class and per VXLAN flow; stream flagged rows.

Memory stays flat: per-flow counters and the first `keep` flagged packets only;
every flagged row goes to `on_flagged` as soon as its batch is done."""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np

from v6diag.checksum.report import Example, FlaggedRow, Flow
from v6diag.checksum.verify import CLEAN, KINDS, OUTER_UDP6_ZERO, OUTER_UDP_ZERO, UNVERIFIABLE, verify
from v6diag.checksum.verify_fast import KEY_BYTES, key_of, verify_batch
from v6diag.core.frames import Batch
from v6diag.core.inet import ip_text

NOTES = (CLEAN, UNVERIFIABLE, OUTER_UDP_ZERO, OUTER_UDP6_ZERO)
OUTER_FRAGMENT = "outer IP fragment"  # the reason both verifiers give


def flow_of(key: bytes) -> Flow:
    v4 = key[0] == 4
    src = key[1:5] if v4 else key[1:17]
    dst = key[17:21] if v4 else key[17:33]
    return Flow(ip_text(src), ip_text(dst), int.from_bytes(key[33:35], "big"), int.from_bytes(key[35:38], "big"))


@dataclass
class ChecksumTally:
    ports: tuple[int, ...]
    keep: int = 5  # flagged packets kept (with bytes) for dissection
    on_flagged: Callable[[FlaggedRow], None] | None = None
    packets: int = 0
    vxlan_packets: int = 0
    counts: Counter = field(default_factory=Counter)
    flows: dict[bytes, Counter] = field(default_factory=dict)
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
            rows.extend(FlaggedRow.of(i, ts[i - first], kind, f, e, local_flow[j]) for i, f, e, j in zip(idx, f_, e_, inv))

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
            rows.append(FlaggedRow.of(index, batch.ts[pos], f.kind, f.field, f.expected, flow_of(key)))

    # -- results -------------------------------------------------------------
    def bad_total(self) -> int:
        return sum(self.counts[k] for k in KINDS if k.endswith("_bad"))

    def partial_total(self) -> int:
        return sum(self.counts[k] for k in KINDS if k.endswith("_partial"))

    def flow_rows(self) -> list[tuple[Flow, Counter]]:
        rows = [(flow_of(k), c) for k, c in self.flows.items()]
        rows.sort(key=lambda r: (-r[1]["packets"], r[0].text()))
        return rows
