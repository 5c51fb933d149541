"""`v6diag drops`: which packets the kernel drops, where and why, with the fix.

options -> source (host.open_source: BPF on skb:kfree_skb, tracefs, or the SNMP
counters; or a recording) -> explain -> events + summary -> render."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Optional

import typer

from v6diag.core.console import Options, stderr, stdout
from v6diag.core.constants import PROTO_NUMBERS
from v6diag.core import options
from v6diag.core.errors import EXIT_OK, UsageError


def drops(
    ctx: typer.Context,
    netns: Optional[str] = typer.Option(None, "--netns", help="Only this network namespace (ip netns name)."),
    iface: Optional[str] = typer.Option(None, "--iface", "-i", help="Only packets on this device."),
    reason: list[str] = typer.Option([], "--reason", "-r", help="Only this drop reason (repeatable): UDP_CSUM..."),
    proto: Optional[str] = typer.Option(None, "--proto", help="Only this protocol: tcp, udp, icmpv6..."),
    port: Optional[int] = typer.Option(None, "--port", help="Only this port, source or destination."),
    duration: Optional[float] = typer.Option(None, "--duration", "-d", help="Seconds to watch (default: until Ctrl-C)."),
    summary_only: bool = typer.Option(False, "--summary", help="No line per drop: only the totals at the end."),
    ready_file: Optional[Path] = typer.Option(None, "--ready-file", help="Create this file once watching has begun."),
    probe: str = typer.Option("auto", "--probe", help="auto, bpf, tracefs or counters."),
    replay: Optional[Path] = typer.Option(None, "--from", help="Explain drops recorded earlier with --json (no root)."),
    list_reasons: bool = typer.Option(False, "--list-reasons", help="Print this kernel's drop reasons and exit."),
    with_conntrack: Optional[Path] = typer.Option(None, "--with-conntrack", help="NDJSON from `v6diag conntrack "
                                                  "--json` (may still be growing): tell drops whose flow's entry "
                                                  "was just destroyed, and why."),
    buffer: str = typer.Option("auto", "--buffer", hidden=True, help="auto, ring or perf: the BPF event buffer."),
    buffer_pages: Optional[int] = typer.Option(None, "--buffer-pages", hidden=True, help="Pages of event buffer."),
    json_out: bool = typer.Option(False, "--json", help="NDJSON: one object per drop, then a summary."),
) -> int:
    """Watch the packets the kernel drops and say why (skb:kfree_skb drop reasons)."""
    from v6diag.drops import host
    from v6diag.drops.render import DropPrinter
    from v6diag.drops.report import Summary
    from v6diag.drops.rules import NetfilterFlows

    opts: Options = ctx.obj
    as_json = json_out or opts.json
    options.duration(duration)
    options.port(port)
    if probe not in host.PROBES:
        raise UsageError(f"--probe must be one of {', '.join(host.PROBES)}")
    options.event_buffer(buffer, buffer_pages)
    proto_number = None
    if proto is not None:
        p = proto.lower()
        proto_number = int(p) if p.isdigit() else PROTO_NUMBERS.get(p)
        if proto_number is None or not 0 <= proto_number < 256:
            raise UsageError(f"unknown protocol {proto!r}", hint="tcp, udp, icmp, icmpv6, gre or a number")
    reasons = [r.upper().removeprefix("SKB_DROP_REASON_") for r in reason]
    if list_reasons:
        return _list_reasons(as_json)
    wanted = host.Wanted(reasons, netns, iface, proto_number, port, summary_only)
    err = stderr()
    if replay:
        from v6diag.drops.recorded import RecordedDrops

        if netns or iface or proto_number is not None or port is not None:
            raise UsageError("--from replays a recording as it is: filter it with --reason only")
        source, missing = RecordedDrops(replay), []
    else:
        source, missing = host.open_source(probe, wanted, err, buffer, buffer_pages)
    deaths = None
    if with_conntrack:
        from v6diag.drops.correlate import ConntrackDeaths

        deaths = ConntrackDeaths(with_conntrack)
    summary = Summary(source=source.name, missing=missing)
    # live NETFILTER_DROP flows are held against their namespace's ruleset at the end;
    # a recording's namespaces are another machine's
    netfilter = None if replay else NetfilterFlows()
    printer = DropPrinter(stdout(), as_json=as_json, quiet=summary_only)
    start = time.monotonic()
    try:
        if ready_file:
            ready_file.write_text(source.name + "\n")
        if not replay:
            err.print(f"watching drops ({source.name})" + (f" for {duration:g} s" if duration else "; Ctrl-C to stop"),
                      highlight=False)
        for ev in source.events(None if duration is None or replay else start + duration):
            if ev is None:
                printer.tick()
                continue
            _one(ev, reasons, printer, summary, deaths, netfilter)
    except KeyboardInterrupt:
        # Ctrl-C ends watching; what the kernel already handed over is still shown
        for ev in getattr(source, "drain", lambda: ())():
            _one(ev, reasons, printer, summary, deaths, netfilter)
    finally:
        try:
            _totals(source, summary, reasons)
        finally:
            source.close()
            if deaths:
                deaths.close()
    summary.duration_s = time.monotonic() - start
    if netfilter is not None and netfilter.flows:
        from v6diag.drops.rules import blame

        summary.findings += blame(netfilter, host.firewalls(netfilter.namespaces()))
    summary.finish()
    printer.summary(summary)
    return EXIT_OK


def _one(ev, reasons, printer, summary, deaths=None, netfilter=None) -> None:
    if reasons and ev["reason"] not in reasons:
        return
    explain(ev)
    if deaths is not None:
        related = deaths.match(ev)
        if related:
            ev["conntrack"] = related
    printer.event(ev)
    summary.add(ev)
    if netfilter is not None:
        netfilter.add(ev)


def explain(ev) -> None:
    from v6diag.drops.reasons import explain as words

    ev["why"], ev["fix"] = words(ev["reason"])


def _totals(source, summary, reasons: list[str]) -> None:
    """The kernel's own counts where the source has them (exact whatever was lost)."""
    summary.lost = source.dropped()
    name = getattr(source, "name", "")
    if name == "bpf":
        by_reason, by_location = source.counts()
        summary.by_reason, summary.by_location = by_reason, by_location
        summary.events = sum(by_reason.values())
        summary.counted_in_kernel = True
    elif name == "counters":
        by_reason = source.counts()
        if reasons:
            by_reason = type(by_reason)({r: n for r, n in by_reason.items() if r in reasons})
        summary.by_reason, summary.events = by_reason, sum(by_reason.values())
        summary.counted_in_kernel = True


def _list_reasons(as_json: bool) -> int:
    from v6diag.core import tracefs
    from v6diag.drops.reasons import explain as words

    fmt = tracefs.read_format(tracefs.mount())
    rows = [{"number": n, "reason": name, "why": words(name)[0]} for n, name in sorted(fmt.reasons.items())]
    if as_json:
        from v6diag.core.jsonout import emit

        emit(rows)
    else:
        out = stdout()
        for r in rows:
            out.print(f"{r['number']:>4}  {r['reason']:<28} {r['why']}", highlight=False, soft_wrap=True)
    return EXIT_OK
