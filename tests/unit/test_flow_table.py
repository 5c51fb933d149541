"""checksum's per-flow table: bounded whatever the number of flows, totals exact
(table + other flows), the busiest flows exact."""

from __future__ import annotations

import random

import numpy as np

from v6diag.checksum.flows import FlowTable


def key(i: int) -> bytes:
    return bytes([4]) + i.to_bytes(4, "big") + bytes(12) + bytes([10, 0, 0, 1]) + bytes(12) + (4789).to_bytes(2, "big") \
        + (i % 50).to_bytes(3, "big") + b"\0\0"


def test_many_flows_stay_bounded_with_exact_totals_and_heavy_hitters():
    rng = random.Random(1)
    table = FlowTable(("clean", "outer_udp_bad"), capacity=64)
    truth: dict[bytes, int] = {}
    heavy = [key(i) for i in range(5)]
    for _ in range(200):  # batches
        batch: dict[bytes, int] = {}
        for k in heavy:  # five flows carry most of the traffic
            batch[k] = batch.get(k, 0) + rng.randint(50, 100)
        for _ in range(500):  # and 100k-ish others, a packet or two each
            k = key(rng.randint(10, 200_000))
            batch[k] = batch.get(k, 0) + 1
        keys = list(batch)
        counts = np.zeros((len(keys), 3), np.int64)
        counts[:, 0] = counts[:, 1] = [batch[k] for k in keys]
        table.merge(keys, counts)
        for k, n in batch.items():
            truth[k] = truth.get(k, 0) + n
    assert len(table.keys) <= 64 and len(truth) > 50_000
    tracked = int(table.counts[: len(table.keys), 0].sum())
    assert tracked + table.other_row()["packets"] == sum(truth.values())  # nothing lost, nothing doubled
    top = table.top(5)
    assert {(f.src, f.vni) for f, _ in top} == {("0.0.0.%d" % i if i else "0.0.0.0", i) for i in range(5)}
    for f, row in top:
        i = int(f.src.split(".")[-1])
        assert row["packets"] == row["clean"] == truth[key(i)]  # the busiest are exact
