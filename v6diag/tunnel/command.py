"""`v6diag tunnel`: check a 6in4/WireGuard/... tunnel end to end, client or
server side, and print the command that fixes each failure.

options -> host facts (netlink, sysctl, nft) -> checks -> live probes with the
underlay captured (probe.py) -> underlay checks -> report -> render;
or a capture of the underlay -> decode -> tally -> checks."""

from __future__ import annotations

import ipaddress
from dataclasses import replace
from typing import List, Optional

import typer

from v6diag.core.console import Options, stdout
from v6diag.core.constants import VXLAN_PORTS, WIREGUARD_PORTS
from v6diag.core.errors import UsageError
from v6diag.core.report import exit_code


def tunnel(
    ctx: typer.Context,
    iface: Optional[str] = typer.Option(None, "--iface", "-i", help="The tunnel interface (sit, wireguard, ...)."),
    role: Optional[str] = typer.Option(None, "--role", help="client | server (detected from the routes if not given)."),
    ext_iface: Optional[str] = typer.Option(None, "--ext-iface", help="Server: the external interface (default: "
                                            "the one with the IPv6 default route)."),
    target: Optional[str] = typer.Option(None, "--target", help="An IPv6 address beyond the tunnel to ping."),
    kind: Optional[str] = typer.Option(None, "--kind", help="The kind IF should be (sit, wireguard...): if IF does "
                                       "not exist, say whether this kernel can make it."),
    pcap: Optional[str] = typer.Option(None, "--pcap", help="Read a capture of the underlay instead ('-' = stdin)."),
    udp_port: List[int] = typer.Option([], "--udp-port", help="--pcap: VXLAN/WireGuard UDP port (repeatable; "
                                       "default 4789, 8472 and 51820)."),
    no_live: bool = typer.Option(False, "--no-live", help="Configuration checks only: no pings, no capture."),
    json_out: bool = typer.Option(False, "--json", help="JSON on stdout (schema in README)."),
) -> int:
    """Check an IPv6 tunnel (6in4/sit, WireGuard, ip6tnl, GRE, VXLAN): link, MTU, routes,
    forwarding, proxy NDP, firewall, reachability, path MTU; print the fix for each failure."""
    opts: Options = ctx.obj
    as_json = json_out or opts.json
    if role not in (None, "client", "server"):
        raise UsageError(f"--role is client or server, not {role!r}")
    if target:
        try:
            target = ipaddress.IPv6Address(target).compressed
        except ValueError:
            raise UsageError(f"--target needs an IPv6 address, not {target!r}") from None
    if pcap is not None:
        if iface or role or target or ext_iface:
            raise UsageError("--pcap reads a capture: --iface, --role, --ext-iface and --target need a live system")
        report = _from_capture(pcap, tuple(udp_port), as_json)
    elif iface is None:
        raise UsageError("give --iface IF (the tunnel), or --pcap FILE (a capture of its underlay)")
    else:
        report = _check(iface, role, ext_iface, target, kind, not no_live)
    if as_json:
        from v6diag.core.jsonout import emit

        emit(report)
    else:
        from v6diag.tunnel import render

        render.render(report, stdout())
    return exit_code(report)


def _from_capture(path: str, ports: tuple[int, ...], as_json: bool = False):
    from v6diag.core.progress import finish, open_capture
    from v6diag.core.report import WARN, check
    from v6diag.tunnel.decode import underlay
    from v6diag.tunnel.report import TunnelReport
    from v6diag.tunnel.tally import EncapTally
    from v6diag.tunnel.underlay_checks import pcap_checks

    vx, wg = (ports, ports) if ports else (VXLAN_PORTS, WIREGUARD_PORTS)
    tally = EncapTally()
    reader, progress = open_capture(path, as_json)
    try:
        for frame in reader:  # streamed: constant memory whatever the capture's size
            tally.feed(underlay(frame.linktype, frame.data, vx, wg), frame.ts)
    finally:
        finish(reader, progress)
    checks = pcap_checks(tally)
    if reader.problem:
        checks.append(check("capture", WARN, reader.problem))
    return TunnelReport.of("unknown", reader.interface_name, None, "pcap", checks, tally.report())


def _check(iface, role, ext, target, kind, live):
    from v6diag.core.report import SKIP, check
    from v6diag.tunnel import checks as an
    from v6diag.tunnel import host
    from v6diag.tunnel import underlay_checks as lv
    from v6diag.tunnel.report import TunnelReport

    facts = host.read(iface, kind, ext, target)
    if live:
        from v6diag.core import privilege

        privilege.require(["CAP_NET_RAW"], f"pinging through {iface} and watching its underlay",
                          f"`v6diag tunnel -i {iface} --no-live` checks the configuration without privileges")
    role = role or an.detect_role(facts)
    t = facts.tunnel
    checks = an.config_checks(facts, role)
    if role == "client":  # the host whose programs use the tunnel
        checks.append(an.apps_prefer_ipv6(*host.address_preference(target)))
    static = an.encap_firewall(facts)
    peers = an.peer_addresses(facts, role)
    peer = peers[0] if peers else None
    underlay = None
    if live:
        from v6diag.tunnel import probe

        vx = (t.port,) if t.kind in ("vxlan", "geneve") and t.port else VXLAN_PORTS
        wg = (t.port,) + tuple(int(p.endpoint.rsplit(":", 1)[1]) for p in t.peers if p.endpoint) \
            if t.kind == "wireguard" else WIREGUARD_PORTS
        r = probe.run(peer, target, t.mtu, t.underlay, vx, wg)
        underlay = r.tally.report() if r.captured else None
        if peer or target:
            encap = lv.encap_live(t, r.tally, t.remote, t.underlay if r.captured else None, role)
        else:  # nothing was sent through the tunnel: the underlay cannot have shown anything
            encap = check(an.encap_id(t.kind), SKIP, "no probe sent: no peer address is known "
                          "(give --target ADDR, an address beyond the tunnel)")
        if static:  # the firewall verdict names the rule; the capture is the evidence
            encap = replace(static, message=f"{static.message}; underlay: {encap.message}")
        peer_ok = any(p.replied for p in r.peer)
        checks += [encap, lv.reach("reach-peer", peer, r.peer),
                   lv.reach("reach-target", target, r.target, peer_ok, role, iface),
                   lv.pmtu(t, r.sized, r.full, r.largest, sum(r.tally.fragmented.values()))]
    else:
        checks.append(static or check(an.encap_id(t.kind), SKIP, "--no-live: underlay not watched"))
        checks += [check(i, SKIP, "--no-live") for i in ("reach-peer", "reach-target", "pmtu")]
    return TunnelReport.of(role, iface, t.kind, "live" if live else "config", checks, underlay)
