"""`v6diag discover`: find every IPv6 device on a link and say how to reach it.

options -> source (capture file, or probe.discover_live) -> analyse -> report -> render."""

from __future__ import annotations

import random
import sys
import time
from pathlib import Path
from typing import Optional

import typer

from v6diag.core.console import Options, stderr, stdout
from v6diag.core.errors import EXIT_OK, UsageError
from v6diag.core.report import exit_code


def discover(
    ctx: typer.Context,
    iface: Optional[str] = typer.Option(None, "--iface", "-i", help="Interface to probe (live; needs CAP_NET_RAW)."),
    pcap: Optional[Path] = typer.Option(None, "--pcap", help="Discover passively from a pcap/pcapng file ('-' = stdin)."),
    timeout: float = typer.Option(1.0, "--timeout", "-t", help="Seconds to collect replies after the probe burst."),
    write: Optional[Path] = typer.Option(None, "--write", "-w", help="Save probes and replies to this pcap file."),
    watch: bool = typer.Option(False, "--watch", help="Keep listening and print devices as they appear, until Ctrl-C."),
    user: str = typer.Option("<user>", "--user", help="User name for the printed ssh commands."),
    mldv1: bool = typer.Option(False, "--mldv1", help="Also send an MLDv1 query (puts Linux hosts in MLDv1 mode for ~260 s)."),
    names: bool = typer.Option(True, "--names/--no-names", help="Ask devices their names (mDNS, LLMNR, Node Information)."),
    ipv4: bool = typer.Option(False, "--ipv4", help="Also ARP-sweep the interface's IPv4 subnets (at most a /22)."),
    json_out: bool = typer.Option(False, "--json", help="JSON on stdout (schema in README)."),
) -> int:
    """Find every device on a link (echo, unknown-option probes, MLD, NS, neighbour table)."""
    opts: Options = ctx.obj
    as_json = json_out or opts.json
    if pcap is None and iface is None:
        raise UsageError("give --iface IF to probe a link, or --pcap FILE to read a capture")
    if pcap is not None and (write or watch or ipv4):
        raise UsageError("--write, --watch and --ipv4 work on a live --iface, not with --pcap")
    if not 0 < timeout <= 3600:
        raise UsageError("--timeout must be between 0 and 3600 seconds")
    if iface == "any" and pcap is None:
        raise UsageError("discover probes one link at a time: name it, e.g. -i eth0 (see `ip -br link`); "
                         "-i any works with checksum and trace, which only listen")
    out = stdout()
    if pcap is not None:
        report = _from_capture(str(pcap), iface, as_json)
    else:
        report = _live(iface, timeout, write, watch, user, mldv1, as_json, out, opts.verbose, names, ipv4)
    if opts.verbose:
        from v6diag.core.vendor import describe

        stderr().print(describe(report.vendor_data), highlight=False, soft_wrap=True)
    _render(report, as_json, out, user)
    return exit_code(report)


def _render(report, as_json: bool, out, user: str, stream: bool = False) -> None:
    from v6diag.core.jsonout import emit
    from v6diag.discover import render

    if as_json:
        emit(report, stream=stream)
    else:
        render.discovery(report, out, user)


def _from_capture(path: str, iface: str | None, as_json: bool = False):
    from v6diag.core.progress import finish, open_capture
    from v6diag.discover.analyse import DiscoveryAnalysis

    reader, progress = open_capture(path, as_json)
    analysis = DiscoveryAnalysis()
    try:
        for batch in reader.batches():
            analysis.feed_batch(batch)
    finally:
        finish(reader, progress)
    return analysis.report(iface or reader.interface_name, reader.span_s, "pcap", reader.problem)


def _live(iface, timeout, write, watch, user, mldv1, as_json, out, verbose, names=True, ipv4=False):
    from v6diag.core import netlink, privilege
    from v6diag.core.capture import CaptureWriter
    from v6diag.core.jsonout import emit
    from v6diag.discover import probe, render
    from v6diag.discover.analyse import DiscoveryAnalysis
    from v6diag.discover.report import WatchEvent

    err = stderr()
    privilege.require(["CAP_NET_RAW"], f"probing {iface} (discover -i)",
                      "`v6diag discover --pcap FILE` reads a capture of the link (`tcpdump -w FILE ip6`)")
    info = netlink.interface(iface)
    analysis = DiscoveryAnalysis(exclude_macs=frozenset({info.mac}))
    sweep = None
    if ipv4:
        from v6diag.discover.naming import SWEEP_MAX_PREFIX, ArpSweep

        if not info.ipv4:
            raise UsageError(f"--ipv4 sweeps the IPv4 subnets of {iface}, and it has no IPv4 address",
                             hint=f"passive ARP is always on; give {iface} an address to sweep from")
        sweep = ArpSweep(info)
        for net in sweep.narrowed:
            err.print(f"v6diag: {net} is larger than a /{SWEEP_MAX_PREFIX}: sweeping only the "
                      f"/{SWEEP_MAX_PREFIX} around this host's address", highlight=False)
    writer = CaptureWriter(str(write)) if write else None
    window = {"open": True}

    def on_changes(changes):
        if window["open"] and changes and verbose:  # -v: the window's progress, device by device
            err.print(f"  {len(analysis.book)} devices heard", highlight=False)
        if window["open"] or not changes:
            return
        hosts = {h.mac: h for h in analysis.book.hosts()}
        for c in changes:
            h = hosts[c.mac]
            if as_json:
                emit(WatchEvent(c.kind, time.time(), c.address, h), stream=True)
            else:
                what = {"host": "new device", "address": f"new address {c.address} of",
                        "name": f"name {c.address} for", "service": f"service {c.address} on",
                        "ipv4": f"IPv4 {c.address} of"}[c.kind]
                out.print(f"{time.strftime('%H:%M:%S')} {what} {render.host_line(h)}", highlight=False, soft_wrap=True)
                # the hint comes with the first link-local address, which a device booting
                # with DAD only shows after its first sightings (MLD reports from ::)
                hint = render.ssh_hint(h, iface, user)
                if hint and c.address is not None and (c.address == h.link_local or
                                                       (c.kind == "name" and c.address == render.mdns_name(h))):
                    out.print("    " + hint, highlight=False, soft_wrap=True)

    def on_window_end(elapsed: float) -> None:
        _render(analysis.report(iface, elapsed, "live"), as_json, out, user, stream=True)
        if not as_json:
            err.print(f"watching {iface} for new devices; Ctrl-C to stop")
        window["open"] = False

    if verbose:
        err.print(f"probing {iface} from {info.link_local} and {len(info.addresses)} other sources "
                  f"for {timeout:.2f} s")
    ident = random.randrange(1, 0xFFFF)
    try:
        duration = probe.discover_live(
            info, analysis, timeout, ident, watch=watch, mldv1=mldv1,
            on_frame=writer.write if writer else None, on_changes=on_changes,
            on_window_end=on_window_end if watch else None, names=names, sweep=sweep,
        )
    except KeyboardInterrupt:
        if not watch:
            raise
        err.print(f"stopped; {len(analysis.book)} devices seen")
        sys.exit(EXIT_OK)  # Ctrl-C is how --watch ends
    finally:
        if writer:
            writer.close()
    return analysis.report(iface, duration, "live")
