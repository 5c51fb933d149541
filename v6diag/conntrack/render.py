"""Conntrack destructions as they happen: NDJSON, or one line each with the
cause's explanation and fix printed the first time that cause appears, then a
summary table. Timeouts are expected noise: counted, printed only with --all."""

from __future__ import annotations

import time

from rich.console import Console

from v6diag.conntrack.classify import CAUSES
from v6diag.conntrack.report import DestroyEvent, Summary
from v6diag.core.console import Column, print_findings, print_table
from v6diag.core.jsonout import emit

QUIET = {"timeout"}
STACK_SHOWN = 8  # frames printed for causes v6diag has no name for
SUMMARY_COLUMNS = [Column("Count", justify="right"), Column("Cause"), Column("What happened", priority=2)]


class EventPrinter:
    def __init__(self, out: Console, as_json: bool, show_all: bool, quiet: bool = False):
        self.out, self.as_json, self.show_all, self.quiet = out, as_json, show_all, quiet
        self._explained: set[str] = set()

    def event(self, ev: DestroyEvent) -> None:
        if self.quiet:  # --summary
            return
        if self.as_json:
            emit(ev, stream=True)
            return
        if ev["cause"] in QUIET and not self.show_all:
            return
        self.out.print(line(ev), highlight=False, markup=False, soft_wrap=True)
        cause = ev["cause"]
        if ev.get("evidence"):
            self.out.print(f"    evidence: {ev['evidence']}", highlight=False, markup=False, soft_wrap=True)
        if cause == "other":
            self.out.print("    stack: " + " <- ".join(ev["stack"][:STACK_SHOWN]), highlight=False, markup=False, soft_wrap=True)
        if cause not in self._explained and cause != "unknown":
            self._explained.add(cause)
            self.out.print(f"    why: {CAUSES[cause][0]}", highlight=False, markup=False, soft_wrap=True)
            if CAUSES[cause][1]:
                self.out.print(f"    fix: {CAUSES[cause][1]}", highlight=False, markup=False, soft_wrap=True)

    def summary(self, result: Summary) -> None:
        if self.as_json:
            emit(result, stream=True)
            return
        self.out.print(totals_line(result), highlight=False)
        if result.findings:
            print_findings(result.findings, self.out)
        if not result.causes:
            return
        # the shared table (as drops' summary): at any width no word is broken
        print_table(self.out, "By cause", SUMMARY_COLUMNS,
                    [[str(n), cause, CAUSES[cause][0]] for cause, n in sorted(result.causes.items(),
                                                                               key=lambda kv: -kv[1])])
        hidden = sum(n for c, n in result.causes.items() if c in QUIET)
        if hidden and not self.show_all:
            self.out.print(f"({hidden} timeouts not shown line by line: --all shows them)", highlight=False)


def totals_line(result: Summary) -> str:
    if not result.counted_in_kernel:
        lost = f", {result.lost} events lost (kernel buffer full)" if result.lost else ""
        return f"{result.events} entries destroyed{lost}"
    out = f"{result.events} entries destroyed (counted in the kernel: exact)"
    if result.lost:
        out += (f"; {result.lost} of their events did not fit the {result.buffer} buffer, so "
                f"{result.reported} were shown one by one")
    if result.unread:
        out += f"; {result.unread} were still in the buffer, unread, when watching ended"
    if result.uncounted:
        out += f"; {result.uncounted} could not be given a cause (count table full)"
    return out


def line(ev: DestroyEvent) -> str:
    o, r = ev["orig"], ev["reply"]
    ports = f" {o.get('sport')}->{o.get('dport')}" if o.get("sport") is not None else ""
    nat = (f" (reply {r.get('src')} -> {r.get('dst')})"
           if r and (r.get("src"), r.get("dst")) != (o.get("dst"), o.get("src")) else "")
    pid = f"[{ev['pid']}]" if ev.get("pid") else ""
    who = f" by {ev['comm']}{pid} ({ev.get('context')})" if ev.get("comm") else ""
    state = f" {ev['tcp_state']}" if ev.get("tcp_state") else ""
    when = time.strftime("%H:%M:%S", time.localtime(ev.get("time") or 0))
    return (f"{when} {ev['cause']}: {ev['proto']} {o.get('src')} -> {o.get('dst')}{ports}{nat}{state} "
            f"mark={ev['mark']} [{','.join(ev['status'])}]{who}")
