"""Configuration checks of an IPv6 tunnel, client or server side (pure).

The short list of why "I can ping some addresses but not others" on a freshly
built 6in4/WireGuard tunnel: link down, wrong endpoints, no route, MTU too big,
forwarding off, no proxy NDP for the client's address, FORWARD policy DROP,
protocol 41 filtered. Each check returns the exact command that fixes it.
"""

from __future__ import annotations

import ipaddress

from v6diag.core.constants import IPV6_MIN_MTU as MIN_MTU
from v6diag.core.report import FAIL, PASS, SKIP, WARN, Finding, check
from v6diag.core import firewall as fw
from v6diag.tunnel.facts import HostFacts, Route, TunnelLink
WG_OVERHEAD = 8 + 32  # UDP + WireGuard data header (16) and Poly1305 tag (16), paper 5.4.6
HANDSHAKE_STALE_S = 180  # WireGuard re-handshakes every 120 s while traffic flows (REKEY_AFTER_TIME)
TUNNEL_KINDS = ("sit", "ip6tnl", "gre", "ip6gre", "gretap", "ip6gretap", "wireguard", "vxlan", "geneve", "ipip")


def overhead(t: TunnelLink) -> int:
    """Bytes the encapsulation adds in front of each IPv6 packet."""
    ip = 40 if t.underlay_family == 6 else 20
    limit = 8 if t.encap_limit else 0
    if t.kind in ("sit", "ipip"):
        return 20  # RFC 4213 3.2: one IPv4 header, no options
    if t.kind == "ip6tnl":
        return 40 + limit  # RFC 2473 4.1.1: the default encapsulation limit is a destination option
    if t.kind in ("gre", "ip6gre", "gretap", "ip6gretap"):
        return ip + limit + 4 + t.gre_extra + (14 if t.kind.endswith("tap") else 0)  # RFC 2784/2890
    if t.kind == "wireguard":
        return ip + WG_OVERHEAD
    if t.kind in ("vxlan", "geneve"):
        return ip + 8 + 8 + 14  # UDP, VXLAN/Geneve base header, inner Ethernet (RFC 7348 5)
    return 0


def encap_id(kind: str) -> str:
    """6in4 and ip6ip6 both carry IPv6 as IP protocol 41; the rest get `encap`."""
    return "proto41" if kind in ("sit", "ip6tnl") else "encap"


def encap_name(t: TunnelLink) -> str:
    if t.kind in ("sit", "ip6tnl"):
        return "protocol 41"
    if t.kind in ("gre", "ip6gre", "gretap", "ip6gretap"):
        return "GRE (protocol 47)"
    return f"{'WireGuard' if t.kind == 'wireguard' else t.kind.upper()} UDP {t.port or '?'}"


def _net(a) -> ipaddress.IPv6Network:
    return ipaddress.IPv6Network(f"{a.address}/{a.prefixlen}", strict=False)


def _global(addrs) -> list:
    return [a for a in addrs if not ipaddress.IPv6Address(a.address).is_link_local]


def lookup(routes: list[Route], addr: str) -> Route | None:
    """Longest-prefix match, as the kernel's FIB does."""
    ip = ipaddress.IPv6Address(addr)
    best, best_len = None, -1
    for r in routes:
        net = ipaddress.IPv6Network(r.dst, strict=False)
        if ip in net and net.prefixlen > best_len:
            best, best_len = r, net.prefixlen
    return best


def default_route(f: HostFacts) -> Route | None:
    return next((r for r in f.routes if r.dst == "::/0"), None)


def detect_role(f: HostFacts) -> str:
    """client: the default route leaves by the tunnel (or there is none);
    server: IPv6 reaches the world by another interface, the tunnel hangs off it."""
    d = default_route(f)
    return "server" if d and d.dev != f.tunnel.name else "client"


def peer_addresses(f: HostFacts, role: str) -> list[str]:
    """The far end's tunnel address(es): the other half of a /127 (RFC 6164),
    the default gateway via the tunnel, /128 routes and WireGuard /128 AllowedIPs."""
    t, found = f.tunnel, []
    d = default_route(f)
    if role == "client" and d and d.dev == t.name and d.gateway:
        found.append(d.gateway)
    for a in _global(t.addresses):
        if a.prefixlen == 127:
            net = _net(a)
            other = net[1] if ipaddress.IPv6Address(a.address) == net[0] else net[0]
            found.append(other.compressed)
    for r in f.routes:
        if r.dev == t.name and r.dst.endswith("/128"):
            found.append(r.dst[:-4])
        if r.dev == t.name and r.gateway and not ipaddress.IPv6Address(r.gateway).is_link_local:
            found.append(r.gateway)
    for p in t.peers:
        found += [ip[:-4] for ip in p.allowed_ips if ip.endswith("/128") and ":" in ip]
    own = {a.address for a in t.addresses}
    return [x for i, x in enumerate(found) if x not in found[:i] and x not in own]


# -- every role -------------------------------------------------------------
def link_up(t: TunnelLink) -> Finding:
    if not t.up:
        return check("link-up", FAIL, f"{t.name} is down", f"ip link set dev {t.name} up")
    if not t.lower_up:
        return check("link-up", FAIL, f"{t.name} is up but has no carrier (lower layer down)",
                     f"ip link show {t.name}; check {t.underlay or 'the underlay interface'}")
    return check("link-up", PASS, f"{t.name} is up")


def endpoints(t: TunnelLink) -> Finding:
    if t.kind == "wireguard":
        eps = ", ".join(p.endpoint or "(none)" for p in t.peers) or "no peers"
        return check("endpoints", PASS, f"wireguard, listen port {t.port}, peer endpoints {eps}")
    what = f"{t.kind} {t.local or 'any'} -> {t.remote or 'any'}"
    where = f" via {t.underlay} (MTU {t.underlay_mtu})" if t.underlay else ""
    if not t.remote or t.remote in ("0.0.0.0", "::"):
        return check("endpoints", WARN, f"{what}: no fixed remote (6to4/ISATAP-style), not a point-to-point tunnel",
                     f"ip tunnel change {t.name} remote <SERVER-IPV4>")
    if not t.local_owned:
        return check("endpoints", FAIL, f"{what}: local {t.local} is not an address of this host "
                     "(behind NAT, use the private address)", f"ip tunnel change {t.name} local <THIS-HOST-IPV4>")
    if not t.remote_routed:
        return check("endpoints", FAIL, f"{what}: no route to remote {t.remote}", f"ip route get {t.remote}")
    return check("endpoints", PASS, what + where)


def addresses(f: HostFacts, role: str) -> Finding:
    t = f.tunnel
    glob = _global(t.addresses)
    peers = peer_addresses(f, role)
    peer_txt = f", peer {', '.join(peers)}" if peers else ""
    if glob:
        mine = ", ".join(f"{a.address}/{a.prefixlen}" for a in glob)
        return check("addresses", PASS, f"{mine}{peer_txt}")
    if t.addresses:
        return check("addresses", WARN, f"only link-local addresses on {t.name}{peer_txt}: fine for a routed "
                     "link, but nothing global to source from", f"ip addr add <TUNNEL-IPV6>/127 dev {t.name}")
    return check("addresses", FAIL, f"no IPv6 address on {t.name}", f"ip addr add <TUNNEL-IPV6>/127 dev {t.name}")


def route(f: HostFacts, role: str) -> Finding:
    t = f.tunnel
    if role == "client":
        d = default_route(f)
        if d and d.dev == t.name:
            return check("route", PASS, f"default route via {t.name}" + (f" ({d.gateway})" if d.gateway else ""))
        if f.target and f.target_dev == t.name:
            return check("route", PASS, f"{f.target} is routed via {t.name} (no default route through it)")
        through = [r.dst for r in f.routes if r.dev == t.name and r.dst != "::/0"]
        if through and not d:  # e.g. the peer's /64, connected, and no default route elsewhere either
            return check("route", PASS, f"{', '.join(through)} routed via {t.name}; no default route through it, "
                         "so only those addresses use the tunnel")
        peers = peer_addresses(f, role)
        # sit/wireguard are point-to-point: `dev` is enough; vxlan/gre-tap need a next hop
        via = f" via {peers[0]}" if peers and t.kind in ("vxlan", "geneve", "gretap", "ip6gretap") else ""
        why = f"the default route leaves by {d.dev}" if d else "there is no IPv6 default route"
        return check("route", FAIL, f"nothing is routed via {t.name}: {why}",
                     f"ip -6 route {'replace' if d else 'add'} default{via} dev {t.name}")
    clients = peer_addresses(f, role)
    if not clients:
        return check("route", SKIP, f"cannot tell the client's address on {t.name} (not a /127, no /128 route)")
    wrong = [c for c in clients if (lookup(f.routes, c) or Route("", "")).dev != t.name]
    if wrong:
        return check("route", FAIL, f"{', '.join(wrong)} not routed via {t.name}",
                     "; ".join(f"ip -6 route add {c}/128 dev {t.name}" for c in wrong))
    routed = [r.dst for r in f.routes if r.dev == t.name and r.proto not in ("kernel",) and r.dst != "::/0"]
    return check("route", PASS, f"client {', '.join(clients)} routed via {t.name}"
                 + (f"; routed prefixes {', '.join(routed)}" if routed else ""))


def mtu(t: TunnelLink) -> Finding:
    if t.mtu < MIN_MTU:
        return check("mtu", FAIL, f"{t.name} MTU {t.mtu} is below IPv6's minimum {MIN_MTU} (RFC 8200 5)",
                     f"ip link set dev {t.name} mtu {MIN_MTU}")
    if not t.underlay_mtu:
        return check("mtu", WARN, f"MTU {t.mtu}; underlay MTU unknown (no route to the remote yet?)")
    best = t.underlay_mtu - overhead(t)
    if t.mtu > best:
        fix = f"ip link set dev {t.name} mtu {max(best, MIN_MTU)}"
        if best < MIN_MTU:
            fix += f" (and raise {t.underlay}'s MTU to {MIN_MTU + overhead(t)})"
        return check("mtu", FAIL, f"{t.name} MTU {t.mtu} > {t.underlay} MTU {t.underlay_mtu} - {overhead(t)} "
                     f"({t.kind} overhead) = {best}: full-size packets are dropped or fragmented", fix)
    return check("mtu", PASS, f"MTU {t.mtu} fits {t.underlay} {t.underlay_mtu} - {overhead(t)} ({t.kind} overhead)")


def wireguard(f: HostFacts, role: str) -> list[Finding]:
    """Peers, handshake and cryptokey routing: WireGuard drops a packet whose
    destination no peer's AllowedIPs covers (wireguard.com/papers 2)."""
    t = f.tunnel
    if not t.peers:
        return [check("wg-peer", FAIL, f"{t.name} has no peer", f"wg set {t.name} peer <PUBKEY> allowed-ips ::/0 "
                      "endpoint <HOST>:<PORT>")]
    out = []
    no_ep = [p for p in t.peers if not p.endpoint]
    if no_ep and role == "client":
        out.append(check("wg-peer", FAIL, f"peer {no_ep[0].public_key} has no endpoint",
                         f"wg set {t.name} peer {no_ep[0].public_key} endpoint <SERVER>:<PORT>"))
    else:
        out.append(check("wg-peer", PASS, f"{len(t.peers)} peer(s)"))
    ages = [f.now - p.latest_handshake for p in t.peers if p.latest_handshake]
    if not ages:
        out.append(check("wg-handshake", FAIL, "no handshake ever completed: wrong keys, wrong endpoint, or the "
                         "UDP port is blocked", f"wg show {t.name}; check both sides' public keys and that UDP "
                         f"{t.port} reaches the server"))
    elif min(ages) > HANDSHAKE_STALE_S:
        out.append(check("wg-handshake", WARN, f"latest handshake {min(ages):.0f} s ago (idle, or the peer is gone)"))
    else:
        out.append(check("wg-handshake", PASS, f"latest handshake {min(ages):.0f} s ago"))
    nets = [ipaddress.ip_network(a, strict=False) for p in t.peers for a in p.allowed_ips]
    need = [r.dst for r in f.routes if r.dev == t.name and r.proto != "kernel"]
    need += [f"{a}/128" for a in peer_addresses(f, role)]
    uncovered = [d for d in dict.fromkeys(need) if not any(
        ipaddress.ip_network(d).version == n.version and ipaddress.ip_network(d).subnet_of(n) for n in nets)]
    if uncovered:
        key = t.peers[0].public_key
        allowed = ",".join([*(a for p in t.peers[:1] for a in p.allowed_ips), *uncovered])
        out.append(check("wg-allowed-ips", FAIL, f"{', '.join(uncovered)} routed into {t.name} but no peer's "
                         "AllowedIPs covers it: WireGuard drops those packets",
                         f"wg set {t.name} peer {key} allowed-ips {allowed}"))
    else:
        out.append(check("wg-allowed-ips", PASS, "AllowedIPs cover every route via the tunnel"))
    return out


# -- server -----------------------------------------------------------------
def _sysctl(f: HostFacts, dev: str, key: str) -> int | None:
    return f.sysctl.get(dev, {}).get(key)


def _clients_needing_proxy(f: HostFacts) -> list[str]:
    """Client addresses inside an on-link prefix of the external interface: the
    upstream router will Neighbor-Solicit for them there (the seed's case)."""
    onlink = [_net(a) for a in _global(f.ext_addresses)]
    return [c for c in peer_addresses(f, "server") if any(ipaddress.IPv6Address(c) in n for n in onlink)]


def forwarding(f: HostFacts) -> Finding:
    # net/ipv6/ip6_output.c ip6_forward(): only conf/all/forwarding decides whether
    # IPv6 is forwarded; the per-interface value changes host/router behaviour.
    if _sysctl(f, "all", "forwarding") != 1:
        return check("forwarding", FAIL, "IPv6 forwarding is off (net.ipv6.conf.all.forwarding=0): the server "
                     "drops its client's traffic", "sysctl -w net.ipv6.conf.all.forwarding=1")
    # net/ipv6/ndisc.c ndisc_recv_ns(): a proxied NS is answered only when the
    # receiving interface itself has forwarding on.
    if f.ext and _clients_needing_proxy(f) and _sysctl(f, f.ext, "forwarding") != 1:
        return check("forwarding", FAIL, f"forwarding is off on {f.ext}: the kernel answers proxied Neighbor "
                     f"Solicitations only on interfaces with forwarding on",
                     f"sysctl -w net.ipv6.conf.{f.ext}.forwarding=1")
    return check("forwarding", PASS, "IPv6 forwarding on" + (f" (all, {f.ext})" if f.ext else ""))


def ndp_proxy(f: HostFacts) -> Finding:
    if not f.ext:
        return check("ndp-proxy", SKIP, "no external interface (give --ext-iface)")
    need = _clients_needing_proxy(f)
    if not need:
        return check("ndp-proxy", PASS, f"not needed: no client address lies in {f.ext}'s on-link prefixes "
                     "(the upstream must route them to this server)")
    proxy_on = _sysctl(f, f.ext, "proxy_ndp") == 1 or _sysctl(f, "all", "proxy_ndp") == 1
    missing = [c for c in need if not any(a == c and d in (None, f.ext) for a, d in f.proxies)]
    fixes = ([] if proxy_on else [f"sysctl -w net.ipv6.conf.{f.ext}.proxy_ndp=1"])
    fixes += [f"ip -6 neigh add proxy {c} dev {f.ext}" for c in missing]
    if fixes:
        why = ([] if proxy_on else [f"proxy_ndp is off on {f.ext}"]) + [f"no proxy entry for {c} on {f.ext}"
                                                                       for c in missing]
        return check("ndp-proxy", FAIL, "; ".join(why) + ": the upstream router's Neighbor Solicitations for the "
                     "client go unanswered and its traffic is dropped", "; ".join(fixes))
    return check("ndp-proxy", PASS, f"{f.ext} answers Neighbor Solicitations for {', '.join(need)}")


def forward_policy(f: HostFacts) -> Finding:
    if f.firewall is None:
        return check("forward-policy", SKIP, f"firewall not read: {f.firewall_note or 'unknown'}")
    t = f.tunnel.name
    for direction, pkt in (("in", {"iifname": t, "oifname": f.ext, "l4proto": 58}),
                           ("out", {"iifname": f.ext, "oifname": t, "l4proto": 58, "reply": True})):
        v, _ = fw.evaluate(f.firewall, "forward", ("ip6", "inet"), pkt)
        if v:
            return check("forward-policy", FAIL, f"{v.chain} drops IPv6 forwarded {'from' if direction == 'in' else 'to'} "
                         f"{t} ({v.rule})", "; ".join(fw.allow_command(v, d, t) for d in ("in", "out")))
    return check("forward-policy", PASS, f"the firewall forwards IPv6 to and from {t}")


def accept_ra(f: HostFacts) -> Finding:
    """A router (forwarding on) ignores RAs unless accept_ra=2, so an external
    interface configured by SLAAC loses its address and default route when they expire."""
    ext = f.ext
    if not ext:
        return check("accept-ra", SKIP, "no external interface")
    d = default_route(f)
    dynamic = any(a.dynamic for a in _global(f.ext_addresses)) or (d is not None and d.dev == ext and d.proto == "ra")
    value = _sysctl(f, ext, "accept_ra")
    if not dynamic:
        return check("accept-ra", PASS, f"{ext} is configured statically (accept_ra={value} is fine)")
    if value == 2 or _sysctl(f, ext, "forwarding") != 1:
        return check("accept-ra", PASS, f"{ext} uses SLAAC and accepts RAs (accept_ra={value})")
    return check("accept-ra", FAIL, f"{ext} got its address/default route from RAs but forwarding is on and "
                 f"accept_ra={value}: they will expire and not be renewed", f"sysctl -w net.ipv6.conf.{ext}.accept_ra=2")


def encap_firewall(f: HostFacts) -> Finding | None:
    """Does this host's INPUT hook drop the encapsulated packets themselves?"""
    t = f.tunnel
    if f.firewall is None:
        return None
    proto = {"sit": 41, "ip6tnl": 41, "gre": 47, "ip6gre": 47, "gretap": 47, "ip6gretap": 47}.get(t.kind, 17)
    src = t.remote if t.remote and t.remote not in ("0.0.0.0", "::") else None
    pkt = {"l4proto": proto, "iifname": t.underlay, "dport": t.port if proto == 17 else None, "saddr": src,
           "reply": False}
    fam = ("ip6", "inet") if t.underlay_family == 6 else ("ip", "inet")
    v, _ = fw.evaluate(f.firewall, "input", fam, pkt)
    if not v:
        return None
    return check(encap_id(t.kind), FAIL, f"{v.chain} drops incoming {encap_name(t)} ({v.rule}): nothing comes "
                 "out of the tunnel", fw.allow_command(v, "in", None, proto,
                                                        t.port if proto == 17 else None, src))


def config_checks(f: HostFacts, role: str) -> list[Finding]:
    t = f.tunnel
    out = [link_up(t), endpoints(t), addresses(f, role), route(f, role), mtu(t)]
    if t.kind == "wireguard":
        out += wireguard(f, role)
    if role == "server":
        out += [forwarding(f), ndp_proxy(f), forward_policy(f), accept_ra(f)]
    return out


def apps_prefer_ipv6(ordered, policy) -> Finding:
    """Do programs on this host use IPv6 for dual-stack names (glibc's address
    selection with the policy table in force)?"""
    from v6diag.core.rfc6724 import RULES, compare

    v4 = next((c for c in ordered if c.family == 4), None)
    v6 = next((c for c in ordered if c.family == 6), None)
    if v6 is None or v6.source is None:
        return check("apps-prefer-ipv6", SKIP, "no IPv6 route for programs to prefer (see the route check)")
    if v4 is None or v4.source is None:
        return check("apps-prefer-ipv6", PASS, f"IPv6 only: programs reach dual-stack names from {v6.source}")
    if ordered[0].family == 6:
        _, rule = compare(v6, v4, policy)
        return check("apps-prefer-ipv6", PASS, f"dual-stack names go over IPv6 from {v6.source} ({RULES[rule]}, "
                     f"rule {rule})")
    _, rule = compare(v4, v6, policy)
    ula = ipaddress.ip_address(v6.source) in ipaddress.IPv6Network("fc00::/7")
    return check("apps-prefer-ipv6", WARN,
                 f"programs will still use IPv4 for dual-stack names: {RULES[rule]} (rule {rule}), IPv6 source "
                 f"{v6.source}" + (" is a ULA (label 6 against the destination's 1)" if ula and rule == 5 else ""),
                 "`v6diag addrsel NAME` shows the order and prints the complete /etc/gai.conf that fixes it"
                 if rule in (5, 6) else "`v6diag addrsel NAME` shows which rule and why")
