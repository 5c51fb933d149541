"""`v6diag trace`: rebuild NS/NA, RS/RA and DHCPv6(-PD) exchanges and say why
addressing or prefix delegation fails."""

from __future__ import annotations

import random
import time
from typing import List, Optional

import typer

from v6diag.cli.app import Options, app, stderr, stdout
from v6diag.errors import EXIT_OK, EXIT_PROBLEMS, UsageError
from v6diag.model import Severity


@app.command()
def trace(
    ctx: typer.Context,
    pcap: Optional[str] = typer.Option(None, "--pcap", help="Read a pcap/pcapng file ('-' = stdin)."),
    iface: Optional[str] = typer.Option(None, "--iface", "-i", help="Listen (and probe) on this interface."),
    duration: float = typer.Option(5.0, "--duration", "-d", help="Seconds to listen live (Ctrl-C ends early)."),
    write: Optional[str] = typer.Option(None, "--write", "-w", help="Save what was seen and sent to a pcap."),
    solicit_router: bool = typer.Option(False, "--solicit-router", help="Send a Router Solicitation."),
    dhcpv6: bool = typer.Option(False, "--dhcpv6", help="Send a DHCPv6 Solicit (IA_NA; never Request)."),
    pd: Optional[int] = typer.Option(None, "--pd", help="With --dhcpv6: also ask for a prefix (IA_PD) of this length."),
    ns: List[str] = typer.Option([], "--ns", help="Send a Neighbor Solicitation for ADDR (repeatable)."),
    json_out: bool = typer.Option(False, "--json", help="JSON on stdout (schema in README)."),
) -> int:
    """Trace NS/NA, RS/RA and DHCPv6/PD exchanges; find why addressing or delegation fails."""
    import ipaddress

    opts: Options = ctx.obj
    as_json = json_out or opts.json
    probing = solicit_router or dhcpv6 or bool(ns)
    if pcap is None and iface is None:
        raise UsageError("give --pcap FILE to read a capture, or --iface IF to listen live")
    if pcap is not None and (probing or write):
        raise UsageError("--solicit-router, --dhcpv6, --ns and --write need a live --iface, not --pcap")
    if pd is not None and (not dhcpv6 or not 1 <= pd <= 128):
        raise UsageError("--pd LEN goes with --dhcpv6 and is a prefix length (1-128)")
    if not 0 < duration <= 86400:
        raise UsageError("--duration must be between 0 and 86400 seconds")
    for a in ns:
        try:
            ipaddress.IPv6Address(a)
        except ValueError:
            raise UsageError(f"--ns needs an IPv6 address, not {a!r}") from None
    if pcap is not None:
        report = _from_capture(pcap, iface)
    else:
        report = _live(iface, duration, write, solicit_router, dhcpv6, pd, ns, as_json)
    if as_json:
        from v6diag.render import json as jsonr

        print(jsonr.dumps(report), flush=True)
    else:
        from v6diag.render import trace_human

        trace_human.render(report, stdout())
    errors = any(f["severity"] == Severity.ERROR.value for f in report["findings"])
    return EXIT_PROBLEMS if errors else EXIT_OK


def _report(t, interface, source, duration, link_mtu=None, problem=None) -> dict:
    from v6diag.analyse.trace_findings import findings

    t.finish()
    found = findings(t, link_mtu)
    if problem:
        from v6diag.model import Finding

        found.append(Finding(Severity.WARNING, "capture-truncated", problem))
    return {
        "interface": interface, "source": source, "duration_s": round(duration, 3),
        "packets": t.packets, "messages": t.messages, "malformed_packets": t.malformed,
        "exchanges": t.public_exchanges(),
        "findings": [f.to_json() for f in found],
        "delegated_prefixes": t.delegated_prefixes(),
        "routers": list(t.routers.values()),
    }


def _from_capture(path: str, iface: str | None) -> dict:
    from v6diag.analyse.exchanges import TraceAnalysis
    from v6diag.sources.pcap import CaptureReader

    reader = CaptureReader(path)
    t = TraceAnalysis(iface)
    for frame in reader:
        t.feed(frame)
    t.interface = t.interface or reader.interface_name
    return _report(t, t.interface, "pcap", reader.span_s, problem=reader.problem)


def _live(iface, duration, write, solicit_router, dhcpv6, pd, ns_targets, as_json) -> dict:
    from v6diag.analyse.exchanges import TraceAnalysis
    from v6diag.sources import netlink, pcap as pcapio, probe, trace_probe
    from v6diag.sources.live import ETH_P_ALL, PacketSocket

    err = stderr()
    info = netlink.interface(iface)
    link_mtu = netlink.mtu(iface)
    owned = [f"{p}/64" for p in info.prefixes]
    t = TraceAnalysis(iface, owned, info.mac)
    writer = pcapio.CaptureWriter(write) if write else None
    port = None
    start = time.monotonic()
    # ETH_P_ALL: frames this host sends (a router's own RAs and DHCPv6 replies) reach
    # only ETH_P_ALL packet sockets (net/core/dev.c dev_queue_xmit_nit)

    def record(frame) -> None:  # what we receive, and (on_send) what we send
        t.feed(frame)
        if writer:
            writer.write(frame)

    with PacketSocket(iface, info.index, protocol=ETH_P_ALL, on_send=record) as sock:
        send = sock.send

        if dhcpv6:
            port = trace_probe.ClientPort(iface)
            send(trace_probe.dhcpv6_solicit(info.mac, info.link_local, random.randrange(1 << 24), pd))
        if solicit_router:
            send(trace_probe.router_solicitation(info.mac, info.link_local))
        for target in ns_targets:
            send(probe.neighbor_solicitation(info.mac, info.link_local, target))
        deadline = start + duration
        next_ns, tries = start + 1.0, 1
        err.print(f"listening on {iface} for {duration:g} s", highlight=False)  # scripts wait for this
        try:
            with err.status(f"listening on {iface}") as status:
                for frame in sock.frames(deadline):
                    if frame is not None:
                        record(frame)
                    now = time.monotonic()
                    if ns_targets and tries < 3 and now >= next_ns:  # retransmit like the kernel (RFC 4861 7.2.2)
                        tries, next_ns = tries + 1, now + 1.0
                        for target in ns_targets:
                            send(probe.neighbor_solicitation(info.mac, info.link_local, target))
                    status.update(f"listening on {iface}: {t.packets} packets, {t.messages} ND/DHCPv6 "
                                  f"messages, {now - start:.0f}/{duration:g} s (Ctrl-C to stop)")
                for frame in sock.queued():  # arrived before the deadline, not read yet
                    record(frame)
        except KeyboardInterrupt:
            pass  # Ctrl-C ends listening; the report follows
        finally:
            if port:
                port.close()
            if writer:
                writer.close()
    return _report(t, iface, "live", time.monotonic() - start, link_mtu)
