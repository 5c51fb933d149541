"""Human output of `addrsel`: the order, the rule behind each step, the fix."""

from __future__ import annotations

from rich.console import Console

from v6diag.addrsel.report import AddrselReport
from v6diag.core.console import Column, print_findings, print_table

COLUMNS = [Column("#", 1, "right"), Column("Destination"), Column("Source"), Column("Labels", 2),
           Column("Prec", 3, "right"), Column("Scope", 4, "right")]


def report(r: AddrselReport, console: Console) -> None:
    by_addr = {d.address: d for d in r.destinations}
    rows = []
    for i, a in enumerate(r.order, 1):
        d = by_addr[a]
        src = d.source or "(no route)"
        if d.source_deprecated:
            src += " deprecated"
        rows.append([str(i), a, src, f"{d.dest_label}/{'-' if d.source_label is None else d.source_label}",
                     str(d.precedence), str(d.scope)])
    if rows:
        print_table(console, f"{r.query}: the order programs try (policy: {r.policy})", COLUMNS, rows)
    for d in r.decisions:
        console.print(f"  {d['a']} before {d['b']}: rule {d['rule']}, {d['why']}", highlight=False, soft_wrap=True)
    if r.system_order is not None:
        same = r.system_order == r.order
        console.print(f"  this system's getaddrinfo: {', '.join(r.system_order)}"
                      + (" (the same)" if same else " (DIFFERENT)"), highlight=False, soft_wrap=True)
    if r.findings:
        console.print()
        print_findings(r.findings, console)
    if r.gai_conf:
        console.print("\nsuggested /etc/gai.conf:", style="bold")
        console.print(r.gai_conf, highlight=False, markup=False, end="")
