"""`v6diag conntrack`: explain why the kernel destroys conntrack entries.

options -> source (host.open_source: BPF on nf_ct_delete, or ctnetlink; or a
recording) -> classify -> events + summary -> render."""

from __future__ import annotations

import ipaddress
import time
from collections import Counter
from pathlib import Path
from typing import Optional

import typer

from v6diag.core.console import Options, stderr, stdout
from v6diag.core.constants import PROTO_NAMES, PROTO_NUMBERS
from v6diag.core import options
from v6diag.core.errors import EXIT_OK, UsageError


def conntrack(
    ctx: typer.Context,
    src: Optional[str] = typer.Option(None, "--src", help="Only entries from this address."),
    dst: Optional[str] = typer.Option(None, "--dst", help="Only entries to this address."),
    port: Optional[int] = typer.Option(None, "--port", help="Only entries with this port on either side."),
    proto: Optional[str] = typer.Option(None, "--proto", help="tcp, udp, icmp, icmpv6..."),
    mark: Optional[int] = typer.Option(None, "--mark", help="Only entries with this conntrack mark."),
    netns: Optional[str] = typer.Option(None, "--netns", help="Only this network namespace (ip netns name)."),
    show_all: bool = typer.Option(False, "--all", help="Also print expected noise (timeouts) line by line."),
    duration: Optional[float] = typer.Option(None, "--duration", "-d", help="Seconds to watch (default: until Ctrl-C)."),
    ready_file: Optional[Path] = typer.Option(None, "--ready-file", help="Create this file once probes are attached."),
    probe: str = typer.Option("auto", "--probe", help="auto, kprobe, fentry, or netlink (no cause)."),
    replay: Optional[Path] = typer.Option(None, "--from", help="Explain events recorded earlier with --json (no root)."),
    summary_only: bool = typer.Option(False, "--summary", help="No line per event: only the totals per cause "
                                      "(counted in the kernel with the BPF probe: cheap at any rate)."),
    buffer: str = typer.Option("auto", "--buffer", hidden=True, help="auto, ring or perf: the BPF event buffer."),
    buffer_pages: Optional[int] = typer.Option(None, "--buffer-pages", hidden=True,
                                               help="Pages of event buffer (power of two; perf: per CPU)."),
    ebpf: bool = typer.Option(False, "--ebpf", hidden=True, help="Print the BPF C file and cflags, then exit."),
    json_out: bool = typer.Option(False, "--json", help="NDJSON: one object per event, then a summary."),
) -> int:
    """Watch conntrack entries being destroyed and say why."""
    from v6diag.conntrack import bpf, host
    from v6diag.conntrack.classify import Filter, explain_in_mode
    from v6diag.conntrack.render import EventPrinter
    from v6diag.conntrack.report import Summary

    opts: Options = ctx.obj
    as_json = json_out or opts.json
    options.duration(duration)
    options.port(port)
    if mark is not None and not 0 <= mark < 1 << 32:
        raise UsageError("--mark must fit in 32 bits")
    if probe not in host.PROBES:
        raise UsageError(f"--probe must be one of {', '.join(host.PROBES)}")
    options.event_buffer(buffer, buffer_pages)
    for name, value in (("--src", src), ("--dst", dst)):
        if value is not None:
            try:
                ipaddress.ip_address(value)
            except ValueError:
                raise UsageError(f"{name} needs an IPv4 or IPv6 address, not {value!r}") from None
    proto = proto.lower() if proto else None
    if proto and proto not in PROTO_NUMBERS and not proto.isdigit():
        raise UsageError(f"unknown protocol {proto!r}", hint="tcp, udp, icmp, icmpv6, sctp, udplite, gre or a number")
    proto_number = int(proto) if proto and proto.isdigit() else PROTO_NUMBERS.get(proto)
    proto = PROTO_NAMES.get(proto_number, proto)  # events name protocols as the kernel tables do
    netns_inode = host.netns_inode(netns) if netns else None
    kfilter = bpf.KernelFilter(port=port, mark=mark, netns=netns_inode, proto=proto_number, src=src, dst=dst)
    if ebpf:
        print(f"# {bpf.source()}\n# cflags: {' '.join(bpf.cflags('kprobe', kfilter))}")
        print(bpf.source().read_text(), end="")
        return EXIT_OK
    err = stderr()
    if replay:
        from v6diag.conntrack.recorded import RecordedEvents

        source, mode, missing = RecordedEvents(replay), "recorded", []
    else:
        source, mode, missing = host.open_source(probe, kfilter, netns, err, buffer=buffer,
                                                 summary_only=summary_only, pages=buffer_pages)
    flt = Filter(port=port, proto=proto, mark=mark, src=src, dst=dst)
    printer = EventPrinter(stdout(), as_json=as_json, show_all=show_all, quiet=summary_only)
    summary = Summary(mode=mode, missing=missing)
    start = time.monotonic()
    try:
        if ready_file:
            ready_file.write_text(mode + "\n")
        if not replay:
            err.print(f"watching conntrack ({mode}){' in ' + netns if netns else ''}" +
                      (f" for {duration:g} s" if duration else "; Ctrl-C to stop"), highlight=False)
        for ev in source.events(None if duration is None or replay else start + duration):
            if ev is None or not flt.match(ev):
                continue
            explain_in_mode(ev, mode)
            printer.event(ev)
            summary.add(ev["cause"])  # after printing: `reported` counts what was shown
    except KeyboardInterrupt:
        pass  # Ctrl-C ends watching; the summary follows, probes are detached in finally
    finally:
        try:
            if isinstance(source, bpf.BpfDeleteEvents):
                summary.from_kernel_counts(kernel_causes(source.counts()), source.uncounted(), source.dropped(),
                                           "none" if summary_only else source.buffer)
            else:
                summary.lost = source.lost
        finally:
            source.close()
    summary.duration_s = time.monotonic() - start
    if mode == "netlink":
        summary.findings += host.netlink_blind_spots()
    printer.summary(summary)
    return EXIT_OK


def kernel_causes(counts) -> Counter:
    """The program's (stack, expired, reply seen) counts as totals per cause."""
    from v6diag.conntrack.classify import classify

    causes: Counter = Counter()
    for stack, expired, seen_reply, n in counts:
        causes[classify(stack, expired, tcp_seen_reply=seen_reply)] += n
    return causes
