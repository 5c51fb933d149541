"""Why the order is what it is, and the fix: a gai.conf when the policy table is
what puts IPv4 ahead of an IPv6 path that works (the seed's ULA case: rule 5),
the routing fix when IPv6 has no route or source, and what else on this host
bends address selection (deprecated or tentative addresses, temporary
addresses, IPv6 disabled on the way out, a ULA-only host behind NPTv6)."""

from __future__ import annotations

import ipaddress

from v6diag.core import gai_policy as policy_mod
from v6diag.core.rfc6724 import RULES, Candidate, compare
from v6diag.core.report import Finding

ULA = ipaddress.IPv6Network("fc00::/7")
RELOAD = ("programs read /etc/gai.conf when they start (glibc re-reads it only with `reload yes`): "
          "restart them, or log in again")


def ipv4_wins(order: list[Candidate], by_addr: dict[str, Candidate], policy, query: str):
    """(finding, gai.conf text) when IPv4 comes first although an IPv6 destination
    could be reached; (None, None) otherwise."""
    if not order or order[0].family != 4:
        return None, None
    v6 = [c for c in order if c.family == 6]
    if not v6:
        return None, None
    best = v6[0]
    first = order[0]
    _, rule = compare(first, best, policy)
    head = f"programs reaching {query} try IPv4 ({first.address}) before IPv6 ({best.address})"
    if rule == 1:
        return Finding.warning(
            "ipv4-first-no-ipv6-route", f"{head}: this host has no route (no source address) to {best.address}",
            evidence=f"connect() to {best.address} fails: {RULES[1]}",
            fix=f"give the host an IPv6 route: `ip -6 route get {best.address}` says what is missing (a default route "
                "from a Router Advertisement, or `ip -6 route add default via ROUTER dev IF`)"), None
    if rule == 5 and best.source and ipaddress.ip_address(best.source) in ULA:
        prefix = _prefix_of(best)
        labels = [(p, v) for p, v in policy_mod.DEFAULT_LABELS if p != "::/0"] + [(prefix, 1), ("::/0", 1)] \
            if policy.source == "glibc defaults" else _current_labels(policy) + [(prefix, 1)]
        text = policy_mod.render(labels, note=f"treat {prefix} like global IPv6 (label of ::/0)")
        return Finding.warning(
            "ipv4-first-ula-source",
            f"{head}: the only IPv6 source is the ULA {best.source}, whose label ({policy.label(best.source)}) differs "
            f"from the destination's ({policy.label(best.address)}), while IPv4 matches itself (RFC 6724 rule 5, "
            "as glibc applies it)",
            evidence=f"label({best.source}) = {policy.label(best.source)}, label({best.address}) = "
                     f"{policy.label(best.address)}; label({first.address}) = label({first.source}) = "
                     f"{policy.label(first.address)}",
            fix=f"install the gai.conf below as /etc/gai.conf (the complete label table plus `label {prefix} 1`: "
                f"one line alone would replace every default); {RELOAD}"), text
    return Finding.warning(
        "ipv4-first", f"{head}: {RULES.get(rule, 'rule ' + str(rule))} (rule {rule})",
        evidence=f"policy table: {policy.source}",
        fix="check /etc/gai.conf: a `precedence` or `label` line may be the cause" if rule in (5, 6) else ""), None


def _prefix_of(c: Candidate) -> str:
    plen = c.prefixlen if 0 < c.prefixlen <= 128 else 64
    return str(ipaddress.IPv6Network(f"{c.source}/{plen}", strict=False))


def _current_labels(policy) -> list[tuple[str, int]]:
    return [(str(net), value) for net, value in policy.labels]


def host_findings(own, candidates: list[Candidate], disabled: dict[str, str], tempaddr: str | None,
                  v6_egress_tunnel: bool) -> list[Finding]:
    out: list[Finding] = []
    tentative = [h for h in own if h.flags & 0x40]
    if tentative:
        out.append(Finding.warning("tentative-addresses",
                                   "addresses still in Duplicate Address Detection cannot be used as sources",
                                   evidence=", ".join(f"{h.address} on {h.ifname}" for h in tentative),
                                   fix="wait a second; if they stay tentative, another host has the same address"))
    deprecated = [c for c in candidates if c.deprecated]
    if deprecated:
        out.append(Finding.warning(
            "deprecated-source", "destinations reached from a deprecated (or optimistic) source address come last "
            "(rule 3)", evidence=", ".join(f"{c.address} from {c.source}" for c in deprecated),
            fix="the prefix's preferred lifetime ran out: check the Router Advertisements (`v6diag trace -i IF`)"))
    temporary = [h for h in own if h.flags & 0x01]
    if temporary:
        out.append(Finding.info(
            "temporary-addresses", f"this host has {len(temporary)} temporary (privacy, RFC 8981) addresses; "
            f"use_tempaddr={tempaddr}: the kernel picks them as sources when it is 2; glibc's sort ignores them",
            evidence=", ".join(h.address for h in temporary[:4])))
    for ifname, value in disabled.items():
        out.append(Finding.error("ipv6-disabled", f"IPv6 is disabled on {ifname}, the interface IPv6 would leave by",
                                 evidence=f"net.ipv6.conf.{ifname}.disable_ipv6 = {value}",
                                 fix=f"sysctl -w net.ipv6.conf.{ifname}.disable_ipv6=0"))
    sources6 = {ipaddress.ip_address(h.address) for h in own if ":" in h.address}
    usable = [a for a in sources6 if not a.is_link_local and not a.is_loopback]
    if usable and all(a in ULA for a in usable):
        out.append(Finding.info(
            "ula-only-ipv6", "the only IPv6 addresses here are ULA (fc00::/7): behind NPTv6/NAT66"
            + (" and a tunnel" if v6_egress_tunnel else "") + " that is normal, and glibc then prefers IPv4 for "
            "every dual-stack name unless gai.conf gives the ULA prefix the label of ::/0",
            evidence=", ".join(str(a) for a in sorted(usable)[:4])))
    return out
