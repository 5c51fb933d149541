"""drops/rules: the firewall rule behind NETFILTER_DROP flows, by where the packet
goes (received, forwarded, sent) and the hooks on that path. Rulesets are in the
shape `nft -j list ruleset` prints (tests/integration/test_drops.py reads real ones)."""

from __future__ import annotations

from v6diag.drops.rules import MAX_FLOWS, NamespaceFirewall, NetfilterFlows, blame

B6, A6, C6 = "fd00:77::2", "fd00:77::1", "fd00:99::9"


def chain(name: str, hook: str, policy: str = "accept", family: str = "inet", table: str = "t") -> dict:
    return {"chain": {"family": family, "table": table, "name": name, "handle": 1, "type": "filter",
                      "hook": hook, "prio": 0, "policy": policy}}


def rule(chain_name: str, handle: int, exprs: list, family: str = "inet", table: str = "t") -> dict:
    return {"rule": {"family": family, "table": table, "chain": chain_name, "handle": handle, "expr": exprs}}


def dport(proto: str, port: int) -> dict:
    return {"match": {"op": "==", "left": {"payload": {"protocol": proto, "field": "dport"}}, "right": port}}


RULESET = {"nftables": [
    {"table": {"family": "inet", "name": "t", "handle": 1}},
    chain("input", "input"),
    rule("input", 7, [dport("tcp", 5002), {"drop": None}]),
    rule("input", 8, [dport("udp", 5002), {"accept": None}]),
    chain("forward", "forward", policy="drop"),
    chain("output", "output"),
]}


def syn(dst: str = B6, src: str = A6, port: int = 5002, proto: str = "tcp", netns: int = 11) -> dict:
    return {"reason": "NETFILTER_DROP", "family": "ipv6", "proto": proto, "src": src, "dst": dst, "sport": 40002,
            "dport": port, "ifname": "eth0", "netns": netns, "source": "bpf"}


def blamed(events: list[dict], firewalls: dict) -> list:
    seen = NetfilterFlows()
    for ev in events:
        seen.add(ev)
    return blame(seen, firewalls)


def test_a_received_packet_is_blamed_on_the_input_rule_with_its_handle():
    fw = {11: NamespaceFirewall(RULESET, "", frozenset({B6}), "b")}
    [f] = blamed([syn()] * 3, fw)
    assert f.code == "firewall-rule" and f.severity.value == "warning"
    assert "3 packet(s) tcp fd00:77::1 -> fd00:77::2 port 5002 on eth0" in f.message
    assert "in netns b, the input chain inet t input drops them with its rule" in f.message
    assert "its rule `tcp dport 5002 drop` (handle 7)" in f.message and "a received packet" in f.evidence
    assert "`nft delete rule inet t input handle 7`" in f.fix
    assert 'nft insert rule inet t input iifname "eth0" tcp dport 5002 accept' in f.fix


def test_a_forwarded_packet_meets_the_forward_policy_not_the_input_rule():
    fw = {11: NamespaceFirewall(RULESET, "", frozenset({B6}), "b")}
    [f] = blamed([syn(dst=C6)], fw)  # not one of b's addresses: routed through
    assert "the forward chain inet t forward drops them with its policy drop" in f.message
    [mc] = blamed([syn(dst="ff02::fb")], fw)  # a group: delivered here, not forwarded
    assert "the input chain" in mc.message and "a received packet" in mc.evidence
    assert "a forwarded packet" in f.evidence and "handle" not in f.fix
    assert 'nft insert rule inet t forward iifname "eth0" tcp dport 5002 accept' in f.fix


def test_what_the_ruleset_accepts_is_not_blamed_a_nat_drop_has_no_rule():
    fw = {11: NamespaceFirewall(RULESET, "", frozenset({B6}), "b")}
    assert blamed([syn(proto="udp"), syn(port=22)], fw) == []
    sent = syn(src=B6, dst=C6)  # from b itself: output and postrouting accept
    assert blamed([sent], fw) == []


def test_iptables_made_chains_get_the_iptables_command():
    ruleset = {"nftables": [chain("INPUT", "input", policy="drop", family="ip6", table="filter")]}
    [f] = blamed([syn()], {11: NamespaceFirewall(ruleset, "", frozenset({B6}))})
    assert "in netns inode 11" in f.message and "its policy drop" in f.message
    assert f.fix == "if it should pass: `ip6tables -I INPUT -i eth0 -p tcp --dport 5002 -j ACCEPT`"


def test_an_unread_ruleset_says_why_once_per_namespace():
    fw = {11: NamespaceFirewall(None, "nft is not installed", frozenset(), "b")}
    [f] = blamed([syn(), syn(port=1)], fw)
    assert f.code == "firewall-not-read" and "netns b" in f.message and "nft is not installed" in f.message
    assert "nft monitor trace" in f.fix


def test_only_netfilter_drops_with_a_flow_count_and_the_table_is_bounded():
    seen = NetfilterFlows()
    seen.add({**syn(), "reason": "NO_SOCKET"})
    seen.add({"reason": "NETFILTER_DROP", "family": "ipv6", "source": "tracefs"})  # no flow
    assert not seen.flows
    for port in range(MAX_FLOWS + 5):
        seen.add(syn(port=port))
    seen.add(syn(port=0))
    assert len(seen.flows) == MAX_FLOWS and seen.others == 5 and seen.flows[max(seen.flows)] >= 1
    assert seen.namespaces() == {11}
