"""Cause and effect across two views: a drop whose flow had its conntrack entry
destroyed a moment before. `v6diag conntrack --json` writes destructions as
NDJSON (to a file, possibly still being written); each drop of the same flow
within WINDOW_S of a destruction is told with it: NAT kills the entry and drops
the packet in the same softirq when a masqueraded flow's output interface
changes (nf_nat_oif_changed, net/netfilter/nf_nat_core.c)."""

from __future__ import annotations

import json
from collections import deque
from pathlib import Path

from v6diag.core.errors import InputError

WINDOW_S = 0.5
KEEP = 4096  # destructions remembered (the newest)


def _key(src, dst, sport, dport, proto) -> tuple:
    return (src, dst, sport, dport, proto)


class ConntrackDeaths:
    """Destructions read from a growing NDJSON file, indexed by flow."""

    def __init__(self, path: Path):
        try:
            self._file = open(path, encoding="utf-8", errors="replace")
        except OSError as e:
            raise InputError(f"cannot read {path}: {e.strerror}",
                             hint="give the file `v6diag conntrack --json` writes") from e
        self._recent: deque = deque(maxlen=KEEP)
        self._partial = ""

    def refresh(self) -> None:
        """Read what was appended since the last call (a complete line at a time)."""
        data = self._partial + self._file.read()
        *lines, self._partial = data.split("\n")
        for line in lines:
            try:
                ev = json.loads(line)
            except ValueError:
                continue
            if not isinstance(ev, dict) or ev.get("summary") or not isinstance(ev.get("orig"), dict):
                continue
            keys = set()
            for t in (ev.get("orig") or {}, ev.get("reply") or {}):
                if isinstance(t, dict):
                    k = _key(t.get("src"), t.get("dst"), t.get("sport"), t.get("dport"), t.get("proto"))
                    keys.add(k)
                    keys.add(_key(k[1], k[0], k[3], k[2], k[4]))  # the other direction of the same flow
            self._recent.append((ev.get("time") or 0.0, keys, ev))

    def match(self, drop: dict) -> dict | None:
        """The destruction of this drop's flow within WINDOW_S, if there is one."""
        if not drop.get("src"):
            return None
        self.refresh()
        k = _key(drop.get("src"), drop.get("dst"), drop.get("sport"), drop.get("dport"), drop.get("proto"))
        t = drop.get("time") or 0.0
        best = None
        for when, keys, ev in self._recent:
            if k in keys and abs(t - when) <= WINDOW_S and (best is None or abs(t - when) < abs(t - best[0])):
                best = (when, ev)
        if best is None:
            return None
        when, ev = best
        return {"cause": ev.get("cause"), "explanation": ev.get("explanation"), "time": when,
                "delta_ms": round((t - when) * 1000, 3), "fix": ev.get("fix")}

    def close(self) -> None:
        self._file.close()
