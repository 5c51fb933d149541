"""Per-flow verdict counts in bounded memory, whatever the number of flows.

A capture from a fabric's span port, or a hostile one, can hold millions of
outer flows (source, destination, port, VNI). The table keeps exact counts for at
most CAPACITY of them, the busiest: a batch's new flows take free slots first,
then replace the least busy entry when they already outnumber it; the evicted
and the too-small go to one "other flows" total, so every total stays exact.
Counts live in a numpy array; addresses are formatted only for the flows shown."""

from __future__ import annotations

import numpy as np

from v6diag.checksum.report import Flow
from v6diag.core.inet import ip_text

CAPACITY = 1024
TEXT_CACHE = 4096  # formatted flows kept for the flagged rows


def flow_of(key: bytes) -> Flow:
    """A flow key (version, src[16], dst[16], dport[2], vni[3], pad) as text."""
    v4 = key[0] == 4
    src = key[1:5] if v4 else key[1:17]
    dst = key[17:21] if v4 else key[17:33]
    return Flow(ip_text(src), ip_text(dst), int.from_bytes(key[33:35], "big"), int.from_bytes(key[35:38], "big"))


class FlowTable:
    def __init__(self, columns: tuple[str, ...], capacity: int = CAPACITY):
        self.columns = ("packets", *columns)
        self.col = {c: i for i, c in enumerate(self.columns)}
        self.capacity = capacity
        self.index: dict[bytes, int] = {}
        self.keys: list[bytes] = []
        self.counts = np.zeros((capacity, len(self.columns)), np.int64)
        self.other = np.zeros(len(self.columns), np.int64)
        self._texts: dict[bytes, Flow] = {}

    def merge(self, keys: list[bytes], counts: np.ndarray) -> None:
        """Add a batch: `counts[i]` (one row per column) belongs to `keys[i]`; keys
        are distinct within a batch."""
        slots = np.fromiter((self.index.get(k, -1) for k in keys), np.int64, len(keys))
        known = slots >= 0
        if known.any():
            self.counts[slots[known]] += counts[known]
        new = np.nonzero(~known)[0]
        if len(new) == 0:
            return
        new = new[np.argsort(-counts[new, 0], kind="stable")]  # busiest first
        for j, i in enumerate(new.tolist()):
            if len(self.keys) < self.capacity:
                slot = len(self.keys)
                self.keys.append(keys[i])
            else:
                used = self.counts[: len(self.keys), 0]
                slot = int(np.argmin(used))
                if counts[i, 0] <= used[slot]:  # the rest are smaller still
                    self.other += counts[new[j:]].sum(axis=0)
                    return
                self.other += self.counts[slot]
                del self.index[self.keys[slot]]
                self.keys[slot] = keys[i]
            self.index[keys[i]] = slot
            self.counts[slot] = counts[i]

    def text(self, key: bytes) -> Flow:
        flow = self._texts.get(key)
        if flow is None:
            if len(self._texts) >= TEXT_CACHE:
                self._texts.clear()
            flow = self._texts[key] = flow_of(key)
        return flow

    def top(self, n: int) -> list[tuple[Flow, dict[str, int]]]:
        """The n busiest flows with their non-zero counts ("packets" first)."""
        used = self.counts[: len(self.keys)]
        order = sorted(range(len(self.keys)), key=lambda i: (-int(used[i, 0]), self.text(self.keys[i]).text()))[:n]
        return [(self.text(self.keys[i]), self._row(used[i])) for i in order]

    def worst(self, columns: list[str]) -> Flow | None:
        """The flow with the most packets in `columns` (e.g. the bad kinds)."""
        if not self.keys:
            return None
        used = self.counts[: len(self.keys)][:, [self.col[c] for c in columns]].sum(axis=1)
        return self.text(self.keys[int(np.argmax(used))])

    def ports(self) -> set[int]:
        return {int.from_bytes(k[33:35], "big") for k in self.keys}

    def other_row(self) -> dict[str, int]:
        return self._row(self.other)

    def _row(self, row) -> dict[str, int]:
        return {c: int(v) for c, v in zip(self.columns, row.tolist()) if v or c == "packets"}
