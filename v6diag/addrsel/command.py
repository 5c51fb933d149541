"""`v6diag addrsel`: which address programs will use to reach a host, by which
RFC 6724 rule (as glibc applies it), and the gai.conf or routing fix.

arguments -> resolve (getaddrinfo) + sources (connect/getsockname, rtnetlink)
-> sort (glibc's rules and policy table) -> findings -> render."""

from __future__ import annotations

import ipaddress
import socket
from pathlib import Path
from typing import Optional

import typer

from v6diag.core.console import Options, stdout
from v6diag.core.errors import EXIT_OK, InputError, UsageError

FAMILIES = {"any": socket.AF_UNSPEC, "4": socket.AF_INET, "6": socket.AF_INET6}
GAI_CONF = Path("/etc/gai.conf")


def addrsel(
    ctx: typer.Context,
    targets: list[str] = typer.Argument(..., help="Host names (each its own question) or addresses (one set)."),
    family: str = typer.Option("any", "--family", help="any, 4 or 6: as a program's getaddrinfo hints."),
    gai_conf: Optional[Path] = typer.Option(None, "--gai-conf", help="Sort with this gai.conf instead of /etc/gai.conf."),
    netns: Optional[str] = typer.Option(None, "--netns", help="Answer for this network namespace (ip netns name)."),
    json_out: bool = typer.Option(False, "--json", help="JSON on stdout, one object per question (schema in README)."),
) -> int:
    """Which address programs will use to reach a host, by which rule, and the fix."""
    from v6diag.core import gai_policy as policy_mod

    opts: Options = ctx.obj
    as_json = json_out or opts.json
    if family not in FAMILIES:
        raise UsageError("--family must be any, 4 or 6")
    if gai_conf is not None:
        try:
            policy = policy_mod.parse(gai_conf.read_text(), str(gai_conf))
        except OSError as e:
            raise InputError(f"cannot read {gai_conf}: {e.strerror}") from e
    else:
        policy = policy_mod.load(str(GAI_CONF))
    if netns:
        from v6diag.core import netns as ns

        ns.enter(netns)
    addresses, names = [], []
    for t in targets:
        try:
            addresses.append(ipaddress.ip_address(t).compressed)
        except ValueError:
            names.append(t)
    queries = [(n, None) for n in names] + ([(" ".join(addresses), addresses)] if addresses else [])
    reports = [run(q, given, FAMILIES[family], policy, gai_conf is not None) for q, given in queries]
    if as_json:
        from v6diag.core.jsonout import emit

        for r in reports:
            emit(r, stream=len(reports) > 1)
    else:
        from v6diag.addrsel import render

        for r in reports:
            render.report(r, stdout())
    from v6diag.core.report import exit_code

    return max([exit_code(r) for r in reports] + [EXIT_OK])


def run(query: str, given: list[str] | None, family: int, policy, other_policy: bool):
    from v6diag.addrsel import analyse, host
    from v6diag.addrsel.report import AddrselReport, Destination
    from v6diag.core.rfc6724 import decisions, sort
    from v6diag.core.report import Finding

    system = None
    if given is None:
        system = host.resolve(query, family)
        if not system:
            return AddrselReport(query, policy.source, [], [], [], [], [Finding.error(
                "not-resolved", f"{query} does not resolve", fix=f"check the name; `getent ahosts {query}`")])
        nss = host.hosts_file_order(query)
        order_in = nss if nss and set(nss) == set(system) else system
    else:
        order_in = [a for a in given if family == socket.AF_UNSPEC or
                    (ipaddress.ip_address(a).version == 6) == (family == socket.AF_INET6)]
    candidates, own = host.candidates(order_in)
    ordered = sort(candidates, policy)
    by_addr = {c.address: c for c in candidates}
    names = {h.address: h.ifname for h in own}
    dests = [Destination(c.address, "ipv6" if c.family == 6 else "ipv4", c.source,
                         policy.label(c.source) if c.source else None, policy.label(c.address),
                         policy.precedence_of(c.address), policy.scope(c.address), c.source is not None,
                         c.deprecated, names.get(c.source)) for c in candidates]
    findings = []
    first, text = analyse.ipv4_wins(ordered, by_addr, policy, query)
    if first:
        findings.append(first)
    disabled, tunnel = {}, False
    for c in candidates:
        if c.family == 6:
            dev = host.route_device(c.address)
            if dev and host.sysctl(f"{dev}/disable_ipv6") == "1":
                disabled[dev] = "1"
            tunnel = tunnel or not c.native
    findings += analyse.host_findings(own, candidates, disabled, host.sysctl("all/use_tempaddr"), tunnel)
    order = [c.address for c in ordered]
    if system is not None and not other_policy and system != order:
        findings.append(Finding.warning(
            "system-order-differs", "this system's getaddrinfo returned another order than glibc's rules give",
            evidence=f"system: {', '.join(system)}; rules: {', '.join(order)}",
            fix="another resolver sorts (nss-resolve, nscd, a non-glibc libc), or gai.conf changed since programs "
                "started; `getent ahosts NAME` shows what programs get"))
    return AddrselReport(query, policy.source, dests, order, decisions(ordered, policy), system, findings, text)
