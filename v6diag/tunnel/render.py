"""Human output for `tunnel`: a checklist, one line per check, the fix under
each failure. Built only from the report (the same one --json prints)."""

from __future__ import annotations

from rich.console import Console
from rich.text import Text

from v6diag.tunnel.report import TunnelReport

_MARK = {"pass": ("PASS", "green"), "fail": ("FAIL", "bold red"), "warn": ("WARN", "yellow"), "skip": ("skip", "dim")}


def render(report: TunnelReport, console: Console) -> None:
    what = report.interface or "capture"
    head = f"{what}" + (f" ({report.kind})" if report.kind else "") + f", role {report.role}, {report.source}"
    console.print(Text(head, style="bold"))
    width = max((len(c.code) for c in report.findings), default=0)
    for c in report.findings:
        label, style = _MARK[c.status]
        console.print(Text.assemble((f"  {label} ", style), (c.code.ljust(width + 2), "bold"), c.message))
        if c.fix and c.status in ("fail", "warn"):
            console.print(Text(" " * (width + 9) + "fix: " + c.fix))
    u = report.underlay
    if u and u.flows:
        flows = ", ".join(f"{f.src} -> {f.dst} {f.packets}" for f in u.flows)
        console.print(Text(f"underlay: {u.packets} frames; encapsulated {flows}", style="dim"))
    failed = sum(c.status == "fail" for c in report.findings)
    console.print(Text("all checks passed" if report.ok else f"{failed} check(s) failed",
                       style="green" if report.ok else "bold red"))
