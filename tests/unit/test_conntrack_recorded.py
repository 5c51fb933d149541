"""The classifier on events RECORDED from real reproductions on the stock Debian
kernel (tests/kernel/test_conntrack.py wrote them; copied into
tests/fixtures/conntrack/). The expected cause is the scenario's, set by the
test that caused it, never the classifier's output."""

from __future__ import annotations

import copy
import io
import json
from pathlib import Path

import pytest
from rich.console import Console

from v6diag.conntrack.classify import explain
from v6diag.conntrack.render import EventPrinter

FIXTURES = sorted((Path(__file__).resolve().parents[1] / "fixtures" / "conntrack").glob("conntrack-*.json"))
EXPECTED_CONTEXT = {"userspace-delete": "process", "userspace-flush": "process", "tcp-rst": "softirq",
                    "nat-oif-changed": "softirq", "masquerade-cleanup": "kworker", "netns-exit": "kworker"}


def load(path: Path) -> dict:
    return json.loads(path.read_text())


def test_every_required_reproduction_is_recorded():
    causes = {load(p)["expected_cause"] for p in FIXTURES}
    assert causes >= {"nat-oif-changed", "userspace-delete", "userspace-flush", "timeout", "tcp-rst",
                      "masquerade-cleanup", "netns-exit", "tcp-reopen", "early-drop"}


@pytest.mark.parametrize("path", FIXTURES, ids=lambda p: p.stem)
def test_recorded_stack_gives_the_scenarios_cause(path):
    fx = load(path)
    assert fx["events"] and fx["kernel"].endswith("-amd64")
    for ev in fx["events"]:
        ev = explain(copy.deepcopy(ev))
        assert ev["cause"] == fx["expected_cause"], ev["stack"]
        if fx["expected_cause"] in EXPECTED_CONTEXT:
            assert ev["context"] == EXPECTED_CONTEXT[fx["expected_cause"]], ev["stack"]
        assert ev["explanation"]
        if fx["expected_cause"] in ("nat-oif-changed", "masquerade-cleanup", "tcp-rst", "tcp-reopen", "early-drop"):
            assert ev["evidence"], ev  # the entry's own state backs the cause


def test_human_output_explains_each_cause_once_and_hides_timeouts():
    events = []
    for p in FIXTURES:
        for ev in load(p)["events"]:
            events.append(explain(dict(ev, pid=1, netns=1, mode="kprobe")))
    buf = io.StringIO()
    printer = EventPrinter(Console(file=buf, width=300), as_json=False, show_all=False)
    for ev in events:
        printer.event(ev)
    out = buf.getvalue()
    assert "nat-oif-changed: tcp 192.168.1.10 -> 203.0.113.80" in out
    assert out.count("CONNMARK --save-mark") == 1  # the fix, once, however many kills
    assert "timeout:" not in out  # expected noise is counted, not printed
