"""Drops as they happen: NDJSON, or a line per drop with its explanation and fix
printed the first time a reason appears; at high rates one line per second of
totals instead. Then a summary table by reason, location and flow."""

from __future__ import annotations

import time
from collections import Counter

from rich.console import Console

from v6diag.core.console import Column, print_findings, print_table
from v6diag.core.jsonout import emit
from v6diag.drops.reasons import explain
from v6diag.drops.report import DropEvent, Summary

SUMMARY_COLUMNS = [Column("Count", justify="right"), Column("Reason"), Column("Why", priority=2)]

LINES_PER_SECOND = 20  # above this, a line per second of totals


class DropPrinter:
    def __init__(self, out: Console, as_json: bool, quiet: bool = False):
        self.out, self.as_json, self.quiet = out, as_json, quiet
        self._explained: set[str] = set()
        self._second = int(time.monotonic())
        self._shown = 0
        self._held: Counter = Counter()

    def event(self, ev: DropEvent) -> None:
        if self.quiet:
            return
        if self.as_json:
            emit(ev, stream=True)
            return
        self.tick()
        self._shown += 1
        if self._shown > LINES_PER_SECOND:
            self._held[ev["reason"]] += 1
            return
        self.out.print(line(ev), highlight=False, markup=False, soft_wrap=True)
        related = ev.get("conntrack")
        if related:
            self.out.print(f"    because: its conntrack entry was destroyed {related['delta_ms']:g} ms before "
                           f"({related['cause']}): {related['explanation']}", highlight=False, markup=False,
                           soft_wrap=True)
            if related.get("fix") and ("conntrack", related["cause"]) not in self._explained:
                # the cause's fix, not the reason's generic one: it is what ends these drops
                self._explained.add(("conntrack", related["cause"]))
                self.out.print(f"    fix: {related['fix']}", highlight=False, markup=False, soft_wrap=True)
        if ev["reason"] not in self._explained:
            self._explained.add(ev["reason"])
            self.out.print(f"    why: {ev['why']}", highlight=False, markup=False, soft_wrap=True)
            if ev["fix"]:
                self.out.print(f"    fix: {ev['fix']}", highlight=False, markup=False, soft_wrap=True)

    def tick(self) -> None:
        now = int(time.monotonic())
        if now == self._second:
            return
        if self._held and not self.as_json:
            self.out.print(f"{time.strftime('%H:%M:%S')} +{sum(self._held.values())} more drops in the last second: "
                           + ", ".join(f"{r} {n}" for r, n in self._held.most_common()), highlight=False)
        self._second, self._shown, self._held = now, 0, Counter()

    def summary(self, s: Summary) -> None:
        self.tick()
        if self.as_json:
            emit({"summary": s}, stream=True)
            return
        lost = f", {s.lost} events lost (buffer full)" if s.lost else ""
        exact = " (counted in the kernel)" if s.counted_in_kernel else ""
        self.out.print(f"{s.events} drops in {s.duration_s:.1f} s from {s.source}{exact}{lost}", highlight=False)
        if s.findings:
            print_findings(s.findings, self.out)
        if not s.by_reason:
            return
        # the shared table: at any width no word (a reason name) is broken
        print_table(self.out, "By reason", SUMMARY_COLUMNS,
                    [[str(n), reason, explain(reason)[0]] for reason, n in s.by_reason.most_common()])
        if s.by_location:
            self.out.print("where: " + ", ".join(f"{loc} {n}" for loc, n in s.by_location.most_common(8)),
                           highlight=False, soft_wrap=True)
        for f in s.by_flow[:8]:
            self.out.print(f"  {f['count']:>6}  {f['reason']:<16} {f['flow']}", highlight=False, soft_wrap=True)


def line(ev: DropEvent) -> str:
    when = time.strftime("%H:%M:%S", time.localtime(ev.get("time") or 0))
    flow = ""
    if ev.get("src"):
        ports = f" {ev.get('sport')}->{ev.get('dport')}" if ev.get("sport") is not None else ""
        flow = f" {ev.get('proto')} {ev['src']} -> {ev.get('dst')}{ports}"
    elif ev.get("family"):
        flow = f" {ev['family']}"
    inner = ev.get("inner") or {}
    if inner.get("src"):
        flow += f" (inner {inner.get('proto')} {inner['src']} -> {inner.get('dst')})"
    dev = f" on {ev['ifname']}" if ev.get("ifname") else ""
    at = f" at {ev['location'].split('/')[0]}" if ev.get("location") else ""
    return f"{when} {ev['reason']}:{flow}{dev}{at}"
