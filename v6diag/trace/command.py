"""`v6diag trace`: rebuild NS/NA, RS/RA and DHCPv6(-PD) exchanges and say why
addressing or prefix delegation fails.

options -> source (capture file, or probe.listen) -> decode -> exchanges ->
findings -> report -> render."""

from __future__ import annotations

import ipaddress
from typing import List, Optional

import typer

from v6diag.core.console import Options, stderr, stdout
from v6diag.core import options
from v6diag.core.errors import UsageError
from v6diag.core.report import exit_code


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
    opts: Options = ctx.obj
    as_json = json_out or opts.json
    probing = solicit_router or dhcpv6 or bool(ns)
    if pcap is None and iface is None:
        raise UsageError("give --pcap FILE to read a capture, or --iface IF to listen live")
    if pcap is not None and (probing or write):
        raise UsageError("--solicit-router, --dhcpv6, --ns and --write need a live --iface, not --pcap")
    if pd is not None and (not dhcpv6 or not 1 <= pd <= 128):
        raise UsageError("--pd LEN goes with --dhcpv6 and is a prefix length (1-128)")
    options.duration(duration)
    if iface == "any" and probing:
        raise UsageError("-i any only listens: --solicit-router, --dhcpv6 and --ns go out on one interface "
                         "(name it, e.g. -i eth0)")
    for a in ns:
        try:
            ipaddress.IPv6Address(a)
        except ValueError:
            raise UsageError(f"--ns needs an IPv6 address, not {a!r}") from None
    if pcap is not None:
        report = _from_capture(pcap, iface, as_json)
    else:
        report = _live(iface, duration, write, solicit_router, dhcpv6, pd, ns, opts.verbose)
    if as_json:
        from v6diag.core.jsonout import emit

        emit(report)
    else:
        from v6diag.trace import render

        render.render(report, stdout())
    return exit_code(report)


def _report(t, source, duration, link_mtu=None, problem=None):
    from v6diag.core.report import Finding
    from v6diag.trace.findings import findings
    from v6diag.trace.report import TraceReport

    t.finish()
    found = findings(t, link_mtu)
    if problem:
        found.append(Finding.warning("capture-truncated", problem))
    return TraceReport(t.interface, source, duration, t.packets, t.messages, t.malformed, t.exchanges, found,
                       t.delegated_prefixes(), list(t.routers.values()))


def _from_capture(path: str, iface: str | None, as_json: bool = False):
    from v6diag.core.progress import finish, open_capture
    from v6diag.trace.exchanges import TraceAnalysis

    reader, progress = open_capture(path, as_json)
    t = TraceAnalysis(iface)
    try:
        for batch in reader.batches():
            t.feed_batch(batch)
    finally:
        finish(reader, progress)
    t.interface = t.interface or reader.interface_name
    return _report(t, "pcap", reader.span_s, problem=reader.problem)


def _live(iface, duration, write, solicit_router, dhcpv6, pd, ns_targets, verbose):
    from v6diag.core import netlink, privilege
    from v6diag.trace import probe
    from v6diag.trace.exchanges import TraceAnalysis

    # a packet socket; holding UDP 546 for the Solicit's answer is a privileged port
    privilege.require(["CAP_NET_RAW"] + (["CAP_NET_BIND_SERVICE"] if dhcpv6 else []), f"listening on {iface}",
                      "`v6diag trace --pcap FILE` reads a capture (`tcpdump -w FILE icmp6 or udp port 546 or 547`)")

    if iface == "any":  # every interface, passively: no addresses or MTU of our own
        info, link_mtu = netlink.Interface("any", 0, "", "", False, [], []), None
        t = TraceAnalysis(None)
    else:
        info = netlink.interface(iface)
        link_mtu = netlink.mtu(iface)
        t = TraceAnalysis(iface, [f"{p}/64" for p in info.prefixes], info.mac)
    elapsed = probe.listen(info, t, duration, write, solicit_router, dhcpv6, pd, ns_targets, stderr(), verbose)
    t.interface = iface
    return _report(t, "live", elapsed, link_mtu)
