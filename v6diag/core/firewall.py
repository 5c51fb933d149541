"""Would this host's firewall pass a packet? Read from `nft -j list ruleset`
(iptables-nft, Debian's default since buster, lands there too), pure.

A packet is a dict of what we know about it: {"iifname", "oifname", "l4proto",
"dport", "saddr", "daddr", "reply"}. Rules are walked in order through jumps; a rule decides only
when every match in it is one we can evaluate and it is true (a rule with a match
we cannot judge, e.g. on a source address, is passed over, and noted). All base
chains on a hook must accept (a drop in any is final, nft(8) "BASE CHAINS").
"""

from __future__ import annotations

from dataclasses import dataclass

from v6diag.core.constants import PROTO_NUMBERS

_TERMINAL = ("accept", "drop", "reject")
# the protocols a port match is written for ({number: nft's name}); `th` is any of them
PORT_PROTOCOLS = {PROTO_NUMBERS[name]: name for name in ("tcp", "udp", "sctp")}


@dataclass(frozen=True)
class Verdict:
    verdict: str  # accept | drop
    chain: str  # "ip6 filter FORWARD" (family table chain) that decided
    rule: str  # a short text of the deciding rule, or "policy drop"
    iptables: bool  # the chain is iptables-made (table filter, chain in capitals)
    handle: int | None = None  # the deciding rule's handle (`nft delete rule ... handle N`); None: the policy
    rule_chain: str = ""  # the chain holding that rule (a chain jumped to from the base chain, or the base chain)


def _items(fw: dict, key: str) -> list[dict]:
    return [x[key] for x in fw.get("nftables", []) if key in x]


def _value(v):
    if isinstance(v, dict) and "set" in v:
        return [_value(x) for x in v["set"]]
    return PROTO_NUMBERS.get(v, v) if isinstance(v, str) else v


def _left_key(left) -> str | None:
    if not isinstance(left, dict):
        return None
    if "meta" in left:
        key = left["meta"].get("key")
        return {"iifname": "iifname", "oifname": "oifname", "l4proto": "l4proto", "iif": "iifname",
                "oif": "oifname"}.get(key)
    if "payload" in left:
        p = left["payload"]
        if (p.get("protocol"), p.get("field")) in (("ip", "protocol"), ("ip6", "nexthdr")):
            return "l4proto"
        if p.get("field") == "dport" and (p.get("protocol") == "th" or p.get("protocol") in PORT_PROTOCOLS.values()):
            return "dport"
        if p.get("field") in ("saddr", "daddr") and p.get("protocol") in ("ip", "ip6"):
            return p["field"]
    if "ct" in left and left["ct"].get("key") == "state":
        return "ct"
    return None


def _implied_protocol(left) -> int | None:
    if isinstance(left, dict) and "payload" in left and left["payload"].get("protocol") in PORT_PROTOCOLS.values():
        return PROTO_NUMBERS[left["payload"]["protocol"]]
    return None


def _match(m: dict, pkt: dict) -> bool | None:
    """True/False, or None when this match is about something we do not know."""
    key = _left_key(m.get("left"))
    if key is None:
        return None
    implied = _implied_protocol(m.get("left"))
    if implied is not None:  # `tcp dport 22` implies `meta l4proto tcp` (nft(8) PAYLOAD EXPRESSION)
        if pkt.get("l4proto") is None:
            return None
        if pkt["l4proto"] != implied:
            return False  # whatever the operator: the dependency fails first
    right, op = _value(m.get("right")), m.get("op", "==")
    if key == "ct":  # our probes' return traffic is established; the first packet is new
        states = right if isinstance(right, list) else [right]
        hit = ("established" in states) if pkt.get("reply") else ("new" in states)
    else:
        have = pkt.get(key)
        if have is None:
            return None
        hit = any(_equal(key, have, r) for r in (right if isinstance(right, list) else [right]))
    return (not hit) if op == "!=" else hit


def _equal(key: str, have, right) -> bool:
    if key in ("saddr", "daddr"):  # an address, or {"prefix": {"addr", "len"}}
        import ipaddress

        try:
            net = f"{right['prefix']['addr']}/{right['prefix']['len']}" if isinstance(right, dict) else str(right)
            return ipaddress.ip_address(have) in ipaddress.ip_network(net, strict=False)
        except (ValueError, KeyError, TypeError):
            return False
    return have == right


def _xt(xt: dict, pkt: dict) -> bool | None:
    """iptables-nft rules nft cannot translate show only the xt module's name.
    `-m state/conntrack` is nearly always ESTABLISHED,RELATED: true for replies."""
    if xt.get("name") in ("state", "conntrack"):
        return bool(pkt.get("reply"))
    return None


def _describe(exprs: list[dict]) -> str:
    """The rule as `nft list ruleset` writes it, near enough to find it there:
    `iifname "eth0" tcp dport 5002 drop`."""
    parts = []
    for e in exprs:
        if "match" in e:
            m = e["match"]
            op = "" if m.get("op", "==") in ("==", "in") else m["op"] + " "
            left, right = _left_text(m.get("left")), _right_text(m.get("right"))
            if left in ("iifname", "oifname") and isinstance(m.get("right"), str):
                right = f'"{m["right"]}"'  # as nft writes interface names
            parts.append(f"{left} {op}{right}")
        elif "xt" in e:
            parts.append(f"xt {e['xt'].get('type', 'match')} {e['xt'].get('name', '?')}")
        else:
            parts.extend(k if k != "jump" and k != "goto" else f"{k} {e[k].get('target')}"
                         for k in e if k in _TERMINAL + ("jump", "goto"))
    return " ".join(parts)


def _left_text(left) -> str:
    if isinstance(left, dict):
        if "payload" in left:
            return f"{left['payload'].get('protocol', '?')} {left['payload'].get('field', '?')}"
        if "meta" in left:
            key = left["meta"].get("key", "?")
            return key if key in ("iifname", "oifname", "iif", "oif") else f"meta {key}"
        if "ct" in left:
            return f"ct {left['ct'].get('key', '?')}"
    return str(left)


def _right_text(right) -> str:
    if isinstance(right, dict) and "set" in right:
        return "{ " + ", ".join(_right_text(x) for x in right["set"]) + " }"
    if isinstance(right, dict) and "prefix" in right:
        return f"{right['prefix'].get('addr')}/{right['prefix'].get('len')}"
    if isinstance(right, list):
        return ", ".join(_right_text(x) for x in right)
    return str(right)


def _walk(fw, family, table, chain, pkt, depth, skipped) -> tuple[str, str, str, int | None] | None:
    """(verdict, the rule in words, its chain, its handle) of the first rule that
    decides, following jumps; None when the chain falls through."""
    rules = [r for r in _items(fw, "rule") if (r.get("family"), r.get("table"), r.get("chain")) == (family, table, chain)]
    for r in rules:
        exprs = r.get("expr", [])
        results = [_match(e["match"], pkt) if "match" in e else _xt(e["xt"], pkt) for e in exprs
                   if "match" in e or ("xt" in e and e["xt"].get("type") == "match")]
        if None in results:
            if any(k in e for e in exprs for k in ("drop", "reject")):
                skipped.append(f"{family} {table} {chain}: {_describe(exprs)}")
            continue
        if not all(results):
            continue
        for e in exprs:
            if "accept" in e:
                return "accept", _describe(exprs), chain, r.get("handle")
            if "drop" in e or "reject" in e:
                return "drop", _describe(exprs), chain, r.get("handle")
            for jump in ("jump", "goto"):
                if jump in e and depth < 8:
                    got = _walk(fw, family, table, e[jump]["target"], pkt, depth + 1, skipped)
                    if got or jump == "goto":
                        return got
    return None


def evaluate(fw: dict, hook: str, families: tuple[str, ...], pkt: dict) -> tuple[Verdict | None, list[str]]:
    """The first base chain on `hook` that drops `pkt` (None: all accept),
    and the drop rules passed over because they test things we cannot judge."""
    skipped: list[str] = []
    for c in _items(fw, "chain"):
        if c.get("hook") != hook or c.get("family") not in families:
            continue
        fam, table, name = c["family"], c["table"], c["name"]
        got = _walk(fw, fam, table, name, pkt, 0, skipped)
        verdict, rule, chain, handle = got if got else (c.get("policy", "accept"),
                                                         f"policy {c.get('policy', 'accept')}", name, None)
        if verdict != "accept":
            return Verdict("drop", f"{fam} {table} {name}", rule, table == "filter" and name.isupper(), handle,
                           chain), skipped
    return None, skipped


def allow_command(v: Verdict, direction: str, ifname: str | None, l4proto: int | None = None,
                  dport: int | None = None, source: str | None = None) -> str:
    """The command that inserts an accept rule ahead of what dropped, in the
    dialect of the chain (ip6tables for iptables-made chains, else nft)."""
    fam, table, chain = v.chain.split(" ", 2)
    if v.iptables:
        tool = "ip6tables" if fam == "ip6" else "iptables"
        parts = [tool, "-I", chain]
        if ifname:
            parts += ["-i" if direction == "in" else "-o", ifname]
        if source:
            parts += ["-s", source]
        if l4proto is not None:
            parts += ["-p", PORT_PROTOCOLS.get(l4proto, str(l4proto))]
        if dport is not None:
            parts += ["--dport", str(dport)]
        return " ".join(parts + ["-j", "ACCEPT"])
    parts = ["nft", "insert", "rule", fam, table, chain]
    if ifname:
        parts += ["iifname" if direction == "in" else "oifname", f'"{ifname}"']
    if source:
        parts += ["ip6 saddr" if ":" in source else "ip saddr", source]
    if l4proto in PORT_PROTOCOLS and dport is not None:
        parts += [PORT_PROTOCOLS[l4proto], "dport", str(dport)]
    elif l4proto is not None:
        parts += ["meta", "l4proto", str(l4proto)]
    return " ".join(parts + ["accept"])
