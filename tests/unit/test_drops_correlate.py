"""--with-conntrack: a drop is told with the destruction of its flow's conntrack
entry (same flow, either direction, within half a second), from a conntrack
NDJSON file that may still be growing. Destructions are the kernel tier's
recorded dual-WAN case (tests/fixtures/conntrack)."""

from __future__ import annotations

import json
from pathlib import Path

from v6diag.drops.correlate import ConntrackDeaths

FIXTURE = Path(__file__).resolve().parents[1] / "fixtures" / "conntrack" / "conntrack-dual-wan-oif-changed.json"


def death():
    ev = dict(json.loads(FIXTURE.read_text())["events"][0])
    ev.update(cause="nat-oif-changed", explanation="NAT killed it", fix="save the mark last")
    return ev


def drop_of(ev, dt=0.00002, reverse=False):
    o = ev["orig"]
    src, dst, sport, dport = (o["dst"], o["src"], o["dport"], o["sport"]) if reverse else \
        (o["src"], o["dst"], o["sport"], o["dport"])
    return {"time": ev["time"] + dt, "reason": "NETFILTER_DROP", "src": src, "dst": dst, "sport": sport,
            "dport": dport, "proto": o["proto"]}


def test_a_drop_is_told_with_its_flows_destruction(tmp_path):
    ev = death()
    path = tmp_path / "ct.ndjson"
    path.write_text(json.dumps(ev) + "\n")
    deaths = ConntrackDeaths(path)
    got = deaths.match(drop_of(ev))
    assert got["cause"] == "nat-oif-changed" and abs(got["delta_ms"] - 0.02) < 1e-6
    assert got["fix"] == "save the mark last"  # the cause's fix travels with it
    assert deaths.match(drop_of(ev, reverse=True))["cause"] == "nat-oif-changed"
    assert deaths.match(drop_of(ev, dt=2.0)) is None  # too far apart
    other = drop_of(ev)
    other["dport"] = (other["dport"] or 0) + 1
    assert deaths.match(other) is None
    assert deaths.match({"time": ev["time"], "reason": "UDP_CSUM", "src": None}) is None


def test_a_growing_file_is_followed_line_by_line(tmp_path):
    ev = death()
    path = tmp_path / "ct.ndjson"
    path.write_text("")
    deaths = ConntrackDeaths(path)
    assert deaths.match(drop_of(ev)) is None
    with open(path, "a") as f:
        line = json.dumps(ev)
        f.write(line[:20])  # half a line: not read yet
        f.flush()
        assert deaths.match(drop_of(ev)) is None
        f.write(line[20:] + "\n" + "not json\n" + json.dumps({"summary": True}) + "\n")
    assert deaths.match(drop_of(ev))["cause"] == "nat-oif-changed"
