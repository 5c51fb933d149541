"""discover and trace read captures a batch at a time (numpy picks the frames
worth decoding); the reports are the same as feeding every frame one by one:
on every bundled capture, on a generated busy LAN with batches cut at odd
places, and on hostile frames (tests/unit/test_fuzz.py runs its frames
through both paths too)."""

from __future__ import annotations

import pytest

from bench.lan_capture import generate, truth
from tests.conftest import PCAPS
from v6diag.core.capture import CaptureReader
from v6diag.core.frames import Batch, Frame
from v6diag.core.report import to_json
from v6diag.discover.analyse import DiscoveryAnalysis
from v6diag.trace.command import _report
from v6diag.trace.exchanges import TraceAnalysis


def discover_json(batches: list[Batch], one_by_one: bool) -> dict:
    a = DiscoveryAnalysis()
    for b in batches:
        if one_by_one:
            for f in b.frames():
                a.feed(f)
        else:
            a.feed_batch(b)
    return to_json(a.report(None, 1.0, "pcap"))


def trace_json(batches: list[Batch], one_by_one: bool) -> dict:
    t = TraceAnalysis()
    for b in batches:
        if one_by_one:
            for f in b.frames():
                t.feed(f)
        else:
            t.feed_batch(b)
    return to_json(_report(t, "pcap", 1.0))


def both_paths_agree(batches: list[Batch]) -> tuple[dict, dict]:
    d, t = discover_json(batches, False), trace_json(batches, False)
    assert d == discover_json(batches, True)
    assert t == trace_json(batches, True)
    return d, t


@pytest.mark.parametrize("capture", sorted(p.name for p in PCAPS.glob("*.pcap*")))
@pytest.mark.parametrize("chunk", [4096, 1 << 20])
def test_bundled_captures_give_the_same_reports(capture, chunk):
    batches = list(CaptureReader(str(PCAPS / capture), chunk_size=chunk).batches())
    assert sum(len(b) for b in batches) >= 3
    both_paths_agree(batches)


@pytest.fixture(scope="module")
def lan(tmp_path_factory):
    path = tmp_path_factory.mktemp("lan") / "lan.pcap"
    generate(str(path), frames=6000, hosts=40)
    return path


@pytest.mark.parametrize("chunk", [3000, 65536])
def test_busy_lan_gives_the_same_reports_and_every_device(lan, chunk):
    batches = list(CaptureReader(str(lan), chunk_size=chunk).batches())
    assert len(batches) > 3
    d, t = both_paths_agree(batches)
    assert sorted(h["mac"] for h in d["hosts"]) == truth(40)["macs"]
    assert {e["type"] for e in t["exchanges"]} >= {"ns", "dad", "rs", "dhcpv6"}
    assert t["delegated_prefixes"]


def test_damaged_and_foreign_frames_in_one_batch():
    good = next(iter(CaptureReader(str(PCAPS / "discover-lan.pcap"))))
    frames = [good,
              Frame(1.0, 1, good.data[:30]),  # IPv6 header cut short: malformed for discover
              Frame(1.0, 1, b"\x33\x33\0\0\0\1" + b"\x01\0\0\0\0\1" + good.data[12:]),  # multicast source MAC
              Frame(1.0, 101, good.data[14:]),  # raw IP link type
              Frame(1.0, 276, bytes(20)), Frame(1.0, 1, b""), good]
    d, _ = both_paths_agree([Batch.of(frames, 0)])
    assert d["malformed_packets"] == 1 and d["packets"] == len(frames)
