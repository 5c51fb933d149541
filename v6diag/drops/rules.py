"""Which firewall rule dropped what the kernel reported as NETFILTER_DROP (pure).

The drop reason says only that a netfilter hook returned NF_DROP. For every flow
the BPF source saw dropped so (family, protocol, addresses, destination port and
the device, in its namespace), the ruleset of that namespace is walked by
core/firewall on each hook the packet can cross (nf_hook_slow's callers in
net/ipv6/ip6_input.c, ip6_output.c and ip6_forward.c): the chain and rule that
drop it, with its handle, give the command that lets it through or removes the rule.
A NAT drop (nf_nat_oif_changed) has no rule: then nothing is blamed."""

from __future__ import annotations

import ipaddress
from collections import Counter
from typing import NamedTuple

from v6diag.core import firewall
from v6diag.core.constants import PROTO_NUMBERS
from v6diag.core.report import Finding

REASON = "NETFILTER_DROP"
FAMILIES = {"ipv6": ("ip6", "inet"), "ipv4": ("ip", "inet")}
# The hooks a packet meets, in order, by where it goes (net/ipv6/ip6_input.c,
# ip6_forward.c, ip6_output.c; IPv4 alike); the device the kernel names (skb->dev)
# is the incoming one up to forward, the outgoing one after.
PATHS = {
    "received": (("prerouting", "in"), ("input", "in")),
    "forwarded": (("prerouting", "in"), ("forward", "in"), ("postrouting", "out")),
    "sent": (("output", "out"), ("postrouting", "out")),
}
MAX_FLOWS = 16  # distinct flows kept for blaming (the busiest); the rest are counted only


class Flow(NamedTuple):
    netns: int | None
    family: str
    proto: str | None
    src: str | None
    dst: str | None
    dport: int | None
    ifname: str | None


class NamespaceFirewall(NamedTuple):
    ruleset: dict | None  # `nft -j list ruleset`; None: not read
    note: str  # why it was not read
    local: frozenset  # the namespace's own addresses: they tell received, sent and forwarded apart
    name: str | None = None  # its `ip netns` name


def path_of(flow: Flow, local: frozenset) -> str:
    if flow.src in local:
        return "sent"
    return "received" if flow.dst in local or _group(flow.dst) else "forwarded"


def _group(address: str | None) -> bool:
    """Multicast and the limited broadcast are delivered here (routed only by a multicast
    router). A subnet's broadcast address would need its prefix: taken as forwarded."""
    try:
        ip = ipaddress.ip_address(address or "")
    except ValueError:
        return False
    return ip.is_multicast or str(ip) == "255.255.255.255"


class NetfilterFlows:
    """The NETFILTER_DROP flows seen, bounded: the first MAX_FLOWS distinct ones
    are kept with their counts (a flood of distinct flows cannot grow this)."""

    def __init__(self) -> None:
        self.flows: Counter[Flow] = Counter()
        self.others = 0

    def add(self, ev: dict) -> None:
        if ev.get("reason") != REASON or ev.get("family") not in FAMILIES or not ev.get("src"):
            return
        flow = Flow(ev.get("netns"), ev["family"], ev.get("proto"), ev.get("src"), ev.get("dst"),
                    ev.get("dport"), ev.get("ifname"))
        if flow in self.flows or len(self.flows) < MAX_FLOWS:
            self.flows[flow] += 1
        else:
            self.others += 1

    def namespaces(self) -> set[int | None]:
        return {f.netns for f in self.flows}


def _packet(flow: Flow, direction: str) -> dict:
    return {"l4proto": PROTO_NUMBERS.get(flow.proto or ""), "dport": flow.dport, "saddr": flow.src,
            "daddr": flow.dst, "reply": False,
            "iifname" if direction == "in" else "oifname": flow.ifname}


def _where(flow: Flow) -> str:
    port = f" port {flow.dport}" if flow.dport is not None else ""
    dev = f" on {flow.ifname}" if flow.ifname else ""
    return f"{flow.proto or flow.family} {flow.src} -> {flow.dst}{port}{dev}"


def _fix(v: firewall.Verdict, flow: Flow, direction: str) -> str:
    proto = PROTO_NUMBERS.get(flow.proto or "")
    allow = firewall.allow_command(v, direction, flow.ifname, proto, flow.dport)
    if v.handle is None or v.iptables:
        return f"if it should pass: `{allow}`"
    fam, table, _ = v.chain.split(" ", 2)
    return (f"if it should pass: `nft delete rule {fam} {table} {v.rule_chain} handle {v.handle}`, or let it "
            f"through ahead of the rule: `{allow}`")


def blame(seen: NetfilterFlows, firewalls: dict) -> list[Finding]:
    """One finding per flow whose namespace's ruleset drops it, at the first hook
    on its path that does; firewalls maps a netns inode to its NamespaceFirewall."""
    findings: list[Finding] = []
    unread: dict[str, str] = {}
    for flow, count in seen.flows.most_common():
        fw = firewalls.get(flow.netns) or NamespaceFirewall(None, "not read", frozenset())
        where_ns = f"netns {fw.name}" if fw.name else f"netns inode {flow.netns}"
        if fw.ruleset is None:
            unread[where_ns] = fw.note
            continue
        path = path_of(flow, fw.local)
        for hook, direction in PATHS[path]:
            verdict, skipped = firewall.evaluate(fw.ruleset, hook, FAMILIES[flow.family], _packet(flow, direction))
            if verdict is None:
                continue
            rule = (f"its rule `{verdict.rule}` (handle {verdict.handle})" if verdict.handle is not None
                    else f"its {verdict.rule}")
            findings.append(Finding.warning(
                "firewall-rule",
                f"{count} packet(s) {_where(flow)} were dropped by netfilter: in {where_ns}, the {hook} chain "
                f"{verdict.chain} drops them with {rule}",
                f"a {path} packet, evaluated on the namespace's `nft -j list ruleset`"
                + (f" (the event names one device, {flow.ifname}: taken as the way in at prerouting and "
                   "forward and the way out at postrouting; the kernel does not say at which hook it dropped)"
                   if path == "forwarded" and flow.ifname else "")
                + (f"; rules passed over (they test what v6diag cannot judge): {'; '.join(skipped[:3])}"
                   if skipped else ""),
                _fix(verdict, flow, direction)))
            break
    for ns, note in sorted(unread.items()):
        findings.append(Finding.info("firewall-not-read", f"the ruleset of {ns} could not be read, so the rule "
                                     f"behind its NETFILTER_DROP drops is not named: {note}",
                                     fix="find it live: `nft insert rule inet t c meta nftrace set 1` in the "
                                     "chain's table, then `nft monitor trace`"))
    return findings
