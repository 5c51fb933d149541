"""Human output for `trace`: routers, exchanges, delegated prefixes, findings."""

from __future__ import annotations

import time

from rich.console import Console
from rich.text import Text

from v6diag.core.console import Column, print_findings, print_table
from v6diag.trace.report import (
    DadExchange, Dhcpv6Exchange, Exchange, NsExchange, RsExchange, TraceReport,
)


def _when(ts: float) -> str:
    return time.strftime("%H:%M:%S", time.localtime(ts)) + f".{int(ts % 1 * 1000):03d}"


def _exchange_row(e: Exchange) -> tuple[str, str, str, str, Text]:
    ok = Text("answered", style="green") if getattr(e, "answered", False) else Text("no answer", style="bold red")
    latency = f"{e.latency_ms:.1f} ms" if getattr(e, "latency_ms", None) is not None else ""
    if isinstance(e, Dhcpv6Exchange):
        asked = "+".join(x for x, on in (("IA_NA", e.ia_na_requested), ("IA_PD", e.ia_pd_requested)) if on)
        got = ", ".join([*e.addresses, *(p["prefix"] for p in e.prefixes)] + [s["name"] for s in e.status])
        what = f"{e.kind} xid {e.xid:#x} {asked}".strip()
        who = f"{e.client} -> {e.server or '?'}"
        detail = f"{' '.join(e.replies)} {got}".strip()
        if e.retransmissions:
            detail += f" ({e.retransmissions} retransmissions)"
        return what, who, f"{e.requests}", f"{latency} {detail}".strip(), ok
    if isinstance(e, DadExchange):
        state = Text("DUPLICATE", style="bold red") if e.duplicate else Text("unique", style="green")
        return "DAD", e.target, str(e.probes), ", ".join(e.by), state
    if isinstance(e, NsExchange):
        who = f"{', '.join(e.solicited_by)} asks {e.target}"
        detail = f"{latency} by {e.answered_by}" + (" (router)" if e.router else "") if e.answered else ""
        return "NS/NA", who, str(e.requests), detail, ok
    if isinstance(e, RsExchange):
        return "RS/RA", f"{e.client} -> {e.router or '?'}", str(e.requests), latency, ok
    return e.type, e.router, "", f"{e.destination} via {e.target}", Text("")


ROUTER_COLUMNS = [Column("Router"), Column("Flags", 2), Column("Lifetime", 3), Column("Prefixes"),
                  Column("MTU", 4), Column("DNS", 2)]
EXCHANGE_COLUMNS = [Column("Time", 3), Column("Exchange"), Column("Who"), Column("Sent", 4), Column("Detail", 2),
                    Column("Result")]


def render(report: TraceReport, console: Console) -> None:
    console.print(f"[bold]{report.interface or 'capture'}[/] ({report.source}): {report.packets} packets, "
                  f"{report.messages} ND/DHCPv6 messages, {report.duration_s:.1f} s", highlight=False)
    if report.routers:
        rows = []
        for r in report.routers:
            flags = " ".join(f for f, on in (("M", r.get("m_flag")), ("O", r.get("o_flag")), ("H", r.get("h_flag"))) if on)
            prefixes = "\n".join(f"{p['prefix']} {'L' if p['on_link'] else ''}{'A' if p['autonomous'] else ''} "
                                 f"{p['valid']}/{p['preferred']} s" for p in r.get("prefixes", []))
            dns = "\n".join(s for x in r.get("rdnss", []) for s in x["servers"])
            rows.append([f"{r['address']}\n{r['mac']}", flags or "-", f"{r.get('router_lifetime')} s",
                         prefixes or "-", str(r.get("mtu") or "-"), dns or "-"])
        print_table(console, "Routers", ROUTER_COLUMNS, rows)
    if report.exchanges:
        rows = []
        for e in report.exchanges:
            what, who, sent, detail, result = _exchange_row(e)
            rows.append([_when(e.time), what, who, sent, detail, result])
        print_table(console, "Exchanges", EXCHANGE_COLUMNS, rows, spill=2)
    if report.delegated_prefixes:
        console.print("Delegated prefixes: " + ", ".join(report.delegated_prefixes), style="bold green",
                      soft_wrap=True)
    if report.findings:
        console.print()
        print_findings(report.findings, console)
    elif not report.exchanges:
        console.print("no ND or DHCPv6 exchanges seen", style="yellow")
