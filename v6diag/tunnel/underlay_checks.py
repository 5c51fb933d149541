"""What the underlay showed while the tunnel was probed (live), or what a capture
of it holds (--pcap): encapsulated packets each way, echo answered or not, ICMP
errors and Packet Too Big. Pure: fed Underlay records, returns Checks."""

from __future__ import annotations

from v6diag.core.report import FAIL, PASS, SKIP, WARN, Finding, check
from v6diag.tunnel.checks import MIN_MTU, encap_id, encap_name, overhead
from v6diag.tunnel.facts import ProbeResult, TunnelLink
from v6diag.tunnel.tally import ANSWERS, ASKS, EncapTally


def remote_fix(t: TunnelLink, role: str = "client") -> str:
    """The command that points this side's tunnel at the right remote."""
    far = "SERVER" if role == "client" else "CLIENT"
    if t.kind == "wireguard":
        return f"wg set {t.name} peer {t.peers[0].public_key if t.peers else '<PUBKEY>'} endpoint <{far}-IP>:<PORT>"
    if t.kind in ("vxlan", "geneve"):
        return f"ip link set dev {t.name} type {t.kind} remote <{far}-IP>"
    return f"ip tunnel change {t.name} remote <{far}-IPV4>"


def encap_live(t: TunnelLink, tally: EncapTally, remote: str | None, underlay: str | None,
               role: str = "client") -> Finding:
    """Encapsulated packets out and back on the underlay during the probes. When
    the inner packets are visible (all but WireGuard) our echo requests and their
    replies decide: the far side's own packets (ND, its pings) are no answer."""
    cid, what = encap_id(t.kind), encap_name(t)
    if not remote or not underlay:
        return check(cid, SKIP, "no remote endpoint known to watch the underlay for")
    out, back = tally.sent_to(remote), tally.came_from(remote)
    asked, answered = tally.echo(None, remote, ASKS), tally.echo(remote, None, ANSWERS)
    errors = [(k, n) for k, n in tally.icmp_errors.items() if k[3] == remote and k[1] != "frag-needed"]
    if asked and answered or (not asked and out and back):
        detail = f"{asked} echo/NS out, {answered} replies back" if asked else f"{out} out, {back} back"
        return check(cid, PASS, f"{what} to and from {remote} on {underlay}: {detail}")
    if out and errors:
        (src, err, _, _, _), n = errors[0]
        fix = (f"on {src}: its tunnel's remote must be this host's {t.local or 'address'} "
               f"(`ip tunnel change <TUNNEL> remote {t.local or '<THIS-HOST-IPV4>'}`), or here: {remote_fix(t, role)}")
        return check(cid, FAIL, f"{out} {what} packets sent to {remote}, none answered; {src} sent back {n}x "
                     f"ICMP {err}: it has no tunnel for us (wrong remote or local on one side)", fix)
    if out:
        where = "the server" if cid == "proto41" else "the remote side"
        seen = f"{asked} encapsulated echo requests/NS left {underlay} for {remote} and no answer came back" if asked \
            else f"{out} {what} packets sent to {remote} on {underlay}, none came back"
        other = f" ({back} packets of its own did arrive: the path works only towards us)" if back else ""
        allow = "iptables -I INPUT -p 41 -j ACCEPT" if cid == "proto41" else \
            f"iptables -I INPUT -p {'gre' if 'GRE' in what else 'udp'}" + (f" --dport {t.port}" if t.port else "") \
            + " -j ACCEPT"
        return check(cid, FAIL, f"{seen}{other}: {where}, a NAT or a firewall drops {what}, or the remote's "
                     "tunnel points elsewhere", f"on {remote}: allow {what} from this host (e.g. `{allow}`); a NAT "
                     "in between must pass it" + (" (6in4 cannot cross most NATs: use WireGuard)" if cid == "proto41" else ""))
    asked_arp = sum(n for (op, who), n in tally.arp.items() if op == 1 and who == remote)
    answered_arp = sum(n for (op, who), n in tally.arp.items() if op == 2 and who == remote)
    if asked_arp and not answered_arp:
        return check(cid, FAIL, f"no {what} packet left {underlay}: {asked_arp} ARP requests for {remote} "
                     "unanswered (wrong remote address?)", remote_fix(t, role))
    others = sorted({d for (_, s, d) in tally.flows if d != remote and s != remote and d != t.local})
    if others:
        return check(cid, WARN, f"{what} went to {', '.join(others)}, not the configured remote {remote} "
                     "(learned forwarding entries hide the wrong remote)", remote_fix(t, role))
    return check(cid, FAIL, f"no {what} packet to {remote} left {underlay} during the probes",
                 f"ip route get {remote}; ip -d link show {t.name}")


def reach(cid: str, target: str | None, probes: list[ProbeResult], peer_ok: bool | None = None,
          role: str = "client", tunnel: str = "") -> Finding:
    if not target:
        return check(cid, SKIP, "no address to ping" + (" (give --target ADDR)" if cid == "reach-target" else ""))
    got = [p for p in probes if p.replied]
    if got:
        best = min(p.rtt_ms for p in got if p.rtt_ms is not None)
        return check(cid, PASS, f"{target} answered {len(got)}/{len(probes)} pings (rtt {best:.1f} ms)")
    errs = sorted({p.error for p in probes if p.error})
    why = f" ({', '.join(errs)})" if errs else ""
    if cid == "reach-target" and peer_ok:
        fix = ("on the server: `v6diag tunnel --iface <TUNNEL> --role server` (forwarding, proxy NDP, FORWARD "
               "policy)" if role == "client" else f"check the route from {target} back to the client")
        return check(cid, FAIL, f"the peer answers but {target} does not{why}: the far side does not forward "
                     "or proxy for us", fix)
    return check(cid, FAIL, f"{target} did not answer {len(probes)} pings{why}",
                 f"ping -6 -c3 {target}; see the other failed checks" + (f" of {tunnel}" if tunnel else ""))


def pmtu(t: TunnelLink, peer: str | None, full: ProbeResult | None, largest: int | None,
         fragmented: int = 0) -> Finding:
    """`peer` is the address probed (the peer, or --target when only it answered);
    `full` is a don't-fragment probe the size of the tunnel MTU; `largest` the
    biggest size that got an answer when it did not; `fragmented` how many
    encapsulated packets the underlay split (the inner DF says nothing about the
    outer header: VXLAN's default `df unset` lets IPv4 fragment it)."""
    if not peer or full is None:
        return check("pmtu", SKIP, "neither the peer nor --target answered: path MTU not probed")
    if full.replied and fragmented:
        best = (t.underlay_mtu or 0) - overhead(t)
        return check("pmtu", WARN, f"{full.size}-byte packets cross only because the underlay fragments them "
                     f"({fragmented} fragmented): slower, and lost wherever fragments are dropped",
                     f"ip link set dev {t.name} mtu {max(best, MIN_MTU)}" if best > 0 else "")
    if full.replied:
        return check("pmtu", PASS, f"{full.size}-byte packets (the {t.name} MTU) cross the tunnel unfragmented")
    seen = f" (Packet Too Big: MTU {full.mtu})" if full.mtu else f" ({full.error})" if full.error else ""
    if largest:
        return check("pmtu", FAIL, f"{full.size}-byte packets do not cross the tunnel{seen}; {largest} bytes do",
                     f"ip link set dev {t.name} mtu {max(largest, MIN_MTU)}")
    return check("pmtu", WARN, f"{full.size}-byte packets got no answer{seen}, and neither did smaller ones")


def _pair_check(tally: EncapTally, kind: str, a: str, b: str) -> Finding:
    """One tunnel flow between underlay addresses a and b, judged like the live
    check: inner echo/NS that got no echo reply/NA decide; else packet counts."""
    cid = "proto41" if kind in ("6in4", "ip6ip6") else "encap"
    what = "protocol 41" if cid == "proto41" else kind
    ab, ba = tally.flows[(kind, a, b)], tally.flows[(kind, b, a)]
    errs = "; ".join(f"{s} sent back {n}x ICMP {e}" for (s, e, q, d, m), n in tally.icmp_errors.items()
                     if d in (a, b) and e not in ("frag-needed", "ptb"))
    if kind == "wireguard" and tally.wg_types["handshake-initiation"] and not tally.wg_types["handshake-response"]:
        errs = "; ".join(filter(None, [f"{tally.wg_types['handshake-initiation']} handshake initiations, "
                                       "no response", errs]))
    note = f" ({errs})" if errs else ""
    for src, dst in ((a, b), (b, a)):
        asked, answered = tally.echo(src, dst, ASKS), tally.echo(dst, src, ANSWERS)
        if asked and not answered:
            own = tally.flows[(kind, dst, src)]
            return check(cid, FAIL, f"{kind}: {src} sent {asked} echo requests/NS to {dst}, no answer came back"
                         + (f" ({own} packets of {dst}'s own did arrive: one-way)" if own else "") + note,
                         f"on {dst}: check its tunnel's remote is {src} and its firewall passes {what}")
    if ab and ba:
        return check(cid, PASS, f"{kind}: {a} -> {b} {ab} packets, {b} -> {a} {ba}")
    src, dst, n = (a, b, ab) if ab else (b, a, ba)
    return check(cid, FAIL, f"{kind}: {src} sent {n} packets to {dst}, none came back{note}",
                 f"on {dst}: check its tunnel's remote is {src} and its firewall passes {what}")


def pcap_checks(tally: EncapTally) -> list[Finding]:
    """Without the host's configuration: per tunnel flow, did anything come back;
    were inner echoes answered; was a Packet Too Big / frag-needed seen, or did
    the underlay fragment the tunnel's packets."""
    pairs = sorted({(k, *sorted((s, d))) for (k, s, d) in tally.flows})
    out: list[Finding] = [_pair_check(tally, k, a, b) for k, a, b in pairs]
    if not pairs:
        out.append(check("encap", FAIL, f"no encapsulated packets among {tally.packets} "
                         "(6in4, ip6ip6, GRE, VXLAN 4789/8472, WireGuard 51820)"))
    asked = len(tally.echo_requests)
    if asked:
        missing = tally.unanswered_echo()
        status = PASS if not missing else FAIL if missing == asked else WARN
        out.append(check("reach-peer", status, f"{asked - missing}/{asked} inner ICMPv6 echo requests answered"))
    else:
        hidden = " (WireGuard encrypts it)" if any(k == "wireguard" for k, _, _ in pairs) else ""
        out.append(check("reach-peer", SKIP, f"no inner ICMPv6 echo visible in the capture{hidden}"))
    too_big = [(s, m, n) for (s, m), n in tally.ptb.items()] + \
              [(s, m, n) for (s, e, q, d, m), n in tally.icmp_errors.items() if e in ("frag-needed", "ptb")]
    split = sum(tally.fragmented.values())
    if too_big:
        s, m, n = min(too_big, key=lambda x: x[1] or 1 << 30)
        out.append(check("pmtu", FAIL, f"{sum(x[2] for x in too_big)} Packet Too Big / fragmentation-needed "
                         f"messages, smallest MTU {m} from {s}", "ip link set dev <TUNNEL> mtu <that MTU minus "
                         "the tunnel overhead> (v6diag tunnel --iface <TUNNEL> says which)"))
    elif split:
        out.append(check("pmtu", WARN, f"the underlay fragmented {split} encapsulated packets: the tunnel MTU is "
                         "larger than the underlay can carry", "ip link set dev <TUNNEL> mtu <underlay MTU minus "
                         "the tunnel overhead> (v6diag tunnel --iface <TUNNEL> says which)"))
    else:
        out.append(check("pmtu", PASS, "no Packet Too Big, fragmentation-needed or fragmented tunnel packets seen"))
    return out
