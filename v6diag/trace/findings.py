"""What went wrong in the exchanges `TraceAnalysis` rebuilt, with the fix."""

from __future__ import annotations

import ipaddress

from v6diag.core.constants import IPV6_MIN_MTU as MIN_MTU
from v6diag.core.report import Finding
from v6diag.trace.exchanges import DHCPV6_TIMEOUT, RA_GRACE, TraceAnalysis
from v6diag.trace.report import DadExchange, NsExchange, RsExchange


def findings(t: TraceAnalysis, link_mtu: int | None = None) -> list[Finding]:
    out: list[Finding] = []
    out += _ra(t, link_mtu)
    out += _pd(t)
    out += _dhcp(t)
    out += _nd(t)
    if t.malformed:
        out.append(Finding.warning("malformed-packets",
                                   f"{t.malformed} ND/DHCPv6 packets could not be decoded and were ignored",
                                   evidence="; ".join(t.malformed_examples)))
    return out


def _ra(t: TraceAnalysis, link_mtu: int | None) -> list[Finding]:
    out = []
    for r in t.routers.values():
        announced = t.announced.get(r["address"], set())
        if any(lifetime == 0 for lifetime, _ in announced):
            out.append(Finding.warning("ra-lifetime-zero",
                                       f"router {r['address']} advertises lifetime 0: hosts will not use it as a "
                                       "default router (RFC 4861 4.2)",
                                       evidence=f"{r['advertisements']} RAs from {r['mac']}",
                                       fix="radvd: `AdvDefaultLifetime 1800;` (or remove `AdvDefaultLifetime 0`); "
                                           "on a router that should be default, give it IPv6 forwarding and a route out"))
        for mtu in sorted({m for _, m in announced if m is not None}):
            if not (mtu < MIN_MTU or (link_mtu and mtu > link_mtu)):
                continue
            why = f"below the IPv6 minimum {MIN_MTU}" if mtu < MIN_MTU else f"above the link MTU {link_mtu}"
            out.append(Finding.error("ra-mtu-invalid",
                                     f"router {r['address']} advertises MTU {mtu}, {why}: hosts ignore it "
                                     "(RFC 4861 6.3.4)", fix="radvd: `AdvLinkMTU <link MTU>;`"))
    for m, problem in t.problems:
        if m.proto == "nd":
            out.append(Finding.error("nd-hop-limit",
                                     f"{m.type.upper()} from {m.src} has {problem}",
                                     evidence=f"packet {m.index}",
                                     fix="ND must be sent with hop limit 255 (RFC 4861 7.1); it was forwarded "
                                         "by a router or forged"))
    return out


def _pd(t: TraceAnalysis) -> list[Finding]:
    out = []
    o_only = [r for r in t.routers.values() if r.get("o_flag") and not r.get("m_flag")]
    for duid, c in t.clients.items():
        if "information-request" in c["kinds"] and not c["pd_requested"] and "solicit" not in c["kinds"] and o_only:
            r = o_only[0]
            out.append(Finding.error(
                "ra-o-flag-only-no-pd",
                f"client {c['address']} followed the RA's O flag: it sent Information-request and never "
                "Solicit, so it never asked for a delegated prefix (IA_PD)",
                evidence=f"RA from {r['address']} M=0 O=1; client DUID {duid[:28]} sent "
                         f"{', '.join(sorted(c['kinds']))}",
                fix="on the router set the M flag (radvd: `AdvManagedFlag on;`), or make the client solicit "
                    "whatever the RA says: systemd-networkd `[IPv6AcceptRA] DHCPv6Client=always`; "
                    "dhcpcd: `ia_pd 1 <lan-interface>` in dhcpcd.conf"))
    for ex in t.dhcp.values():
        if not ex.ia_pd_requested or ex.kind not in ("solicit", "request", "renew", "rebind"):
            continue
        if ex.answered and not ex.prefixes:
            st = ", ".join(s["name"] for s in ex.status) or "no IA_PD prefix in the answer"
            out.append(Finding.error("pd-not-offered",
                                     f"client {ex.client} asked for a prefix (IA_PD) and the server gave none",
                                     evidence=f"{ex.kind} xid {ex.xid:#x}: {st}",
                                     fix="give the server a prefix-delegation pool for this link "
                                         "(kea: `pd-pools` in the subnet6), or check the pool is not exhausted"))
    for p in t.delegated_prefixes():
        ex = next(e for e in t.dhcp.values() if any(x["prefix"] == p for x in e.prefixes))
        out.append(Finding.info("pd-delegated", f"{p} delegated to {ex.client}",
                                evidence=f"{ex.kind} xid {ex.xid:#x}, server {ex.server}"))
    return out


def _dhcp(t: TraceAnalysis) -> list[Finding]:
    out, seen = [], set()
    for ex in t.dhcp.values():
        waited = max(t.last_ts, t.end_ts) - ex.last  # to the end of the window or capture
        if not ex.answered and (ex.requests >= 2 or waited >= DHCPV6_TIMEOUT) and ex.kind != "release":
            out.append(Finding.error("dhcpv6-no-reply",
                                     f"no DHCPv6 server answered {ex.client}'s {ex.kind} "
                                     f"({ex.requests} sent)",
                                     evidence=f"xid {ex.xid:#x}; {waited:.1f} s after the last one (a client "
                                              "retransmits after 1 s, RFC 8415 7.6)",
                                     fix="start a DHCPv6 server on this link (or a relay to one); check that "
                                         "UDP 547 is not filtered on the server"))
        for st in ex.status:
            code = f"dhcpv6-status-{st['name'].lower()}"
            if (code, ex.client) in seen:
                continue
            seen.add((code, ex.client))
            out.append(Finding.warning(code,
                                       f"server answered {ex.client}'s {ex.kind} with status {st['name']}",
                                       evidence=f"{st['in']} ({st['where']}): {st['message']!r}"))
    return out


def _nd(t: TraceAnalysis) -> list[Finding]:
    out = []
    for ex in t.exchanges:
        if isinstance(ex, DadExchange) and ex.duplicate:
            out.append(Finding.error("dad-duplicate",
                                     f"{ex.target} is already in use on this link: DAD failed for {', '.join(ex.by)}",
                                     evidence=f"defended by {ex.duplicate_by}",
                                     fix="give one of the devices another address (or interface ID)"))
        if isinstance(ex, NsExchange) and not ex.answered and ex.requests >= 2:
            out.append(_ns_unanswered(t, ex))
        waited = max(t.last_ts, t.end_ts) - ex.last if isinstance(ex, RsExchange) else 0
        if isinstance(ex, RsExchange) and not ex.answered and (ex.requests >= 2 or waited >= RA_GRACE) \
                and not t.routers:
            sent = f"{ex.requests} Router Solicitation{'s' if ex.requests != 1 else ''}"
            out.append(Finding.warning("no-router", f"{sent} from {ex.client} got no Router Advertisement",
                                       evidence=f"{waited:.1f} s after the last one; routers answer within 0.5 s "
                                                "(RFC 4861 10, MAX_RA_DELAY_TIME)",
                                       fix="start a router advertisement daemon (radvd) on the router's interface, "
                                           "with IPv6 forwarding on"))
    return out


def _ns_unanswered(t: TraceAnalysis, ex: NsExchange) -> Finding:
    target = ipaddress.IPv6Address(ex.target)
    owned = [n for n in t.owned + _ra_prefixes(t) if target in n]
    # Another host asked on our link: we are the router that must answer (tunnel server).
    # We asked ourselves: the proxy belongs on the router in front of the target.
    dev = "<its-interface-on-this-link>" if ex.asked_by_us else (t.interface or "<external-interface>")
    where = "on the router that leads to it" if ex.asked_by_us else "on this host, if it routes to it"
    if owned:
        fix = (f"{target} lies in {owned[0]}, on-link here, but nobody answers for it. If it lives behind a "
               f"router on this link (a tunnel client), that router must answer for it ({where}): "
               f"`sysctl -w net.ipv6.conf.{dev}.proxy_ndp=1`, `ip -6 neigh add proxy {target} dev {dev}`, "
               "and forward to it: `sysctl -w net.ipv6.conf.all.forwarding=1`")
    else:
        fix = f"{target} does not answer: check that it is up and has this address (`ip -6 addr`)"
    return Finding.error("ns-unanswered",
                         f"{ex.requests} Neighbor Solicitations for {target} got no answer",
                         evidence=f"asked by {', '.join(ex.solicited_by)}", fix=fix)


def _ra_prefixes(t: TraceAnalysis) -> list:
    nets = []
    for r in t.routers.values():
        for p in r.get("prefixes", []):
            if p["on_link"]:
                nets.append(ipaddress.IPv6Network(p["prefix"], strict=False))
    return nets
