"""What the underlay showed while the tunnel was probed (live), or what a capture
of it holds (--pcap): encapsulated packets each way, echo answered or not, ICMP
errors and Packet Too Big. Pure: fed Underlay records, returns Checks."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field

from v6diag.analyse.tunnel import MIN_MTU, encap_id, encap_name
from v6diag.analyse.tunnel_facts import FAIL, PASS, SKIP, WARN, Check, ProbeResult, TunnelLink
from v6diag.decode.encap import Underlay

ENCAP_KINDS = ("6in4", "ip6ip6", "gre", "vxlan", "wireguard")


@dataclass
class EncapTally:
    """Counts per direction (outer src, dst) and per kind; inner echo pairing."""

    flows: Counter = field(default_factory=Counter)  # (kind, src, dst) -> packets
    echo_requests: dict = field(default_factory=dict)  # (src, dst, id, seq) -> first ts
    echo_replies: set = field(default_factory=set)  # (src, dst, id, seq) of the *request*
    icmp_errors: Counter = field(default_factory=Counter)  # (from, error, quoted kind, quoted dst, mtu) -> n
    ptb: Counter = field(default_factory=Counter)  # inner ICMPv6 Packet Too Big: (from, mtu) -> n
    arp: Counter = field(default_factory=Counter)  # (op, target/sender) -> n
    wg_types: Counter = field(default_factory=Counter)
    packets: int = 0

    def feed(self, u: Underlay, ts: float = 0.0) -> None:
        self.packets += 1
        if u.kind in ENCAP_KINDS:
            self.flows[(u.kind, u.src, u.dst)] += 1
            if u.wg_type:
                self.wg_types[u.wg_type] += 1
            i = u.inner
            if i is not None and i.icmp_type == 128:
                self.echo_requests.setdefault((i.src, i.dst, i.echo_id, i.echo_seq), ts)
            elif i is not None and i.icmp_type == 129:
                self.echo_replies.add((i.dst, i.src, i.echo_id, i.echo_seq))
            elif i is not None and i.icmp_type == 2:
                self.ptb[(i.src, i.mtu)] += 1
        elif u.kind == "icmp-error":
            self.icmp_errors[(u.src, u.error, u.quoted_kind, u.quoted_dst, u.mtu)] += 1
        elif u.kind == "arp":
            # requests counted by the address asked for, replies by who answered
            self.arp[(u.arp_op, u.dst if u.arp_op == 1 else u.src)] += 1

    def sent_to(self, remote: str) -> int:
        return sum(n for (_, _, dst), n in self.flows.items() if dst == remote)

    def came_from(self, remote: str) -> int:
        return sum(n for (_, src, _), n in self.flows.items() if src == remote)

    def unanswered_echo(self) -> int:
        return sum(1 for k in self.echo_requests if k not in self.echo_replies)

    def to_json(self) -> dict:
        return {
            "packets": self.packets,
            "flows": [{"kind": k, "src": s, "dst": d, "packets": n} for (k, s, d), n in sorted(self.flows.items())],
            "echo_requests": len(self.echo_requests),
            "echo_answered": sum(1 for k in self.echo_requests if k in self.echo_replies),
            "icmp_errors": [{"from": s, "error": e, "about": q, "to": d, "mtu": m, "count": n}
                            for (s, e, q, d, m), n in sorted(self.icmp_errors.items(), key=str)],
            "packet_too_big": [{"from": s, "mtu": m, "count": n} for (s, m), n in sorted(self.ptb.items(), key=str)],
            "wireguard_messages": dict(self.wg_types),
        }


def encap_live(t: TunnelLink, tally: EncapTally, remote: str | None, underlay: str | None) -> Check:
    """Encapsulated packets out and back on the underlay during the probes."""
    cid, what = encap_id(t.kind), encap_name(t)
    if not remote or not underlay:
        return Check(cid, SKIP, "no remote endpoint known to watch the underlay for")
    out, back = tally.sent_to(remote), tally.came_from(remote)
    errors = [(k, n) for k, n in tally.icmp_errors.items() if k[3] == remote and k[1] != "frag-needed"]
    if out and back:
        return Check(cid, PASS, f"{out} {what} packets to {remote} and {back} back on {underlay}")
    if out and errors:
        (src, err, _, _, _), n = errors[0]
        fix = (f"on {src}: its tunnel's remote must be this host's {t.local or 'address'} "
               f"(`ip tunnel change <TUNNEL> remote {t.local or '<THIS-HOST-IPV4>'}`), "
               f"or here `ip tunnel change {t.name} remote <SERVER-IPV4>`" if cid == "proto41" else
               f"on {src}: check the {what} endpoint listens there, or here set the right remote")
        return Check(cid, FAIL, f"{out} {what} packets sent to {remote}, none came back; {src} answered {n}x "
                     f"ICMP {err}: it has no tunnel for us (wrong remote or local on one side)", fix)
    if out:
        where = "the server" if cid == "proto41" else "the remote side"
        return Check(cid, FAIL, f"{out} {what} packets sent to {remote} on {underlay}, none came back: {where}, "
                     f"a NAT or a firewall drops {what} (or the remote's tunnel points elsewhere)",
                     f"on {remote}: allow {what} from this host (e.g. "
                     + (f"`iptables -I INPUT -p 41 -j ACCEPT`" if cid == "proto41" else
                        f"`iptables -I INPUT -p udp --dport {t.port} -j ACCEPT`")
                     + "); a NAT in between must pass it (6in4 cannot cross most NATs: use WireGuard)")
    asked = sum(n for (op, who), n in tally.arp.items() if op == 1 and who == remote)
    answered = sum(n for (op, who), n in tally.arp.items() if op == 2 and who == remote)
    if asked and not answered:
        return Check(cid, FAIL, f"no {what} packet left {underlay}: {asked} ARP requests for {remote} unanswered "
                     "(wrong remote address?)", f"ip tunnel change {t.name} remote <SERVER-IPV4>"
                     if cid == "proto41" else f"check the remote address of {t.name}: `ip -d link show {t.name}`")
    return Check(cid, FAIL, f"no {what} packet to {remote} left {underlay} during the probes",
                 f"ip route get {remote}; ip -d link show {t.name}")


def reach(cid: str, target: str | None, probes: list[ProbeResult], peer_ok: bool | None = None,
          role: str = "client", tunnel: str = "") -> Check:
    if not target:
        return Check(cid, SKIP, "no address to ping" + (" (give --target ADDR)" if cid == "reach-target" else ""))
    got = [p for p in probes if p.replied]
    if got:
        best = min(p.rtt_ms for p in got if p.rtt_ms is not None)
        return Check(cid, PASS, f"{target} answered {len(got)}/{len(probes)} pings (rtt {best:.1f} ms)")
    errs = sorted({p.error for p in probes if p.error})
    why = f" ({', '.join(errs)})" if errs else ""
    if cid == "reach-target" and peer_ok:
        fix = ("on the server: `v6diag tunnel --iface <TUNNEL> --role server` (forwarding, proxy NDP, FORWARD "
               "policy)" if role == "client" else f"check the route from {target} back to the client")
        return Check(cid, FAIL, f"the peer answers but {target} does not{why}: the far side does not forward "
                     "or proxy for us", fix)
    return Check(cid, FAIL, f"{target} did not answer {len(probes)} pings{why}",
                 f"ping -6 -c3 {target}; see the other failed checks" + (f" of {tunnel}" if tunnel else ""))


def pmtu(t: TunnelLink, peer: str | None, full: ProbeResult | None, largest: int | None) -> Check:
    """`full` is a don't-fragment probe the size of the tunnel MTU; `largest` the
    biggest size that got an answer when it did not."""
    if not peer or full is None:
        return Check("pmtu", SKIP, "peer not reachable: path MTU not probed")
    if full.replied:
        return Check("pmtu", PASS, f"{full.size}-byte packets (the {t.name} MTU) cross the tunnel unfragmented")
    seen = f" (Packet Too Big: MTU {full.mtu})" if full.mtu else f" ({full.error})" if full.error else ""
    if largest:
        return Check("pmtu", FAIL, f"{full.size}-byte packets do not cross the tunnel{seen}; {largest} bytes do",
                     f"ip link set dev {t.name} mtu {max(largest, MIN_MTU)}")
    return Check("pmtu", WARN, f"{full.size}-byte packets got no answer{seen}, and neither did smaller ones")


def pcap_checks(tally: EncapTally) -> list[Check]:
    """Without the host's configuration: per tunnel flow, did anything come back;
    were inner echoes answered; was a Packet Too Big / frag-needed seen."""
    pairs: dict[tuple[str, str, str], tuple[int, int]] = {}
    for (kind, src, dst), n in tally.flows.items():
        key = (kind, *sorted((src, dst)))
        a_to_b, b_to_a = pairs.get(key, (0, 0))
        pairs[key] = (a_to_b + n, b_to_a) if src == key[1] else (a_to_b, b_to_a + n)
    out: list[Check] = []
    if not pairs:
        out.append(Check("encap", FAIL, f"no encapsulated packets among {tally.packets} "
                         "(6in4, ip6ip6, GRE, VXLAN 4789/8472, WireGuard 51820)"))
    for (kind, a, b), (ab, ba) in sorted(pairs.items()):
        cid = "proto41" if kind in ("6in4", "ip6ip6") else "encap"
        errs = [(s, e, n) for (s, e, q, d, m), n in tally.icmp_errors.items() if d in (a, b) and e != "frag-needed"]
        if ab and ba:
            out.append(Check(cid, PASS, f"{kind}: {a} -> {b} {ab} packets, {b} -> {a} {ba}"))
        else:
            src, dst, n = (a, b, ab) if ab else (b, a, ba)
            note = "; ".join(f"{s} answered {k}x ICMP {e}" for s, e, k in errs)
            out.append(Check(cid, FAIL, f"{kind}: {src} sent {n} packets to {dst}, none came back"
                             + (f" ({note})" if note else ""),
                             f"on {dst}: check its tunnel's remote is {src} and its firewall passes {kind}"))
    asked = len(tally.echo_requests)
    if asked:
        missing = tally.unanswered_echo()
        status = PASS if not missing else FAIL if missing == asked else WARN
        out.append(Check("reach-peer", status, f"{asked - missing}/{asked} inner ICMPv6 echo requests answered"))
    else:
        out.append(Check("reach-peer", SKIP, "no inner ICMPv6 echo in the capture"))
    too_big = [(s, m, n) for (s, m), n in tally.ptb.items()] + \
              [(s, m, n) for (s, e, q, d, m), n in tally.icmp_errors.items() if e in ("frag-needed", "ptb")]
    if too_big:
        s, m, n = min(too_big, key=lambda x: x[1] or 1 << 30)
        out.append(Check("pmtu", FAIL, f"{sum(x[2] for x in too_big)} Packet Too Big / fragmentation-needed "
                         f"messages, smallest MTU {m} from {s}", "ip link set dev <TUNNEL> mtu <that MTU minus "
                         "the tunnel overhead> (v6diag tunnel --iface <TUNNEL> says which)"))
    else:
        out.append(Check("pmtu", PASS, "no Packet Too Big or fragmentation-needed seen"))
    return out
