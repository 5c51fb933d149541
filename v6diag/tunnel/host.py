"""Read a host's tunnel configuration into facts.py records:
rtnetlink (pyroute2) for links, addresses, routes; /proc/sys for the sysctls;
`ip -j -6 neigh show proxy` and `nft -j list ruleset` for what pyroute2 cannot
ask; WireGuard's genetlink family (pyroute2.WireGuard) for peers."""

from __future__ import annotations

import ipaddress
import json
import shutil
import socket
import subprocess
import time

from v6diag.core import nft
from v6diag.core.errors import UnavailableError, UsageError
from v6diag.tunnel import host_kinds
from v6diag.tunnel.checks import TUNNEL_KINDS
from v6diag.tunnel.facts import Addr, HostFacts, Route, TunnelLink, WgPeer

IFF_UP, IFF_LOWER_UP = 0x1, 0x10000
IFA_F_PERMANENT = 0x80
IP6_TNL_F_IGN_ENCAP_LIMIT = 0x1
GRE_CSUM, GRE_KEY, GRE_SEQ = 0x8000, 0x2000, 0x1000
RT_PROTOS = {2: "kernel", 3: "boot", 4: "static", 9: "ra", 16: "dhcp"}
RT_TABLE_MAIN, RTN_UNICAST = 254, 1
# IFLA_INFO_DATA attribute prefix per kind (pyroute2 names them after the kind)
_PREFIX = {"sit": "SIT", "ipip": "IPIP", "ip6tnl": "IP6TNL", "gre": "GRE", "gretap": "GRE", "ip6gre": "GRE",
           "ip6gretap": "GRE", "vxlan": "VXLAN", "geneve": "GENEVE"}


def _iproute():
    from pyroute2 import IPRoute  # lazy: keeps `--help` fast

    return IPRoute()


def missing_interface(name: str, kind: str | None) -> Exception:
    """The error for an --iface that does not exist: when the kind it should be
    (--kind, or its name) is one this kernel cannot make, say that instead."""
    kind = kind or host_kinds.kind_from_name(name)
    if kind:
        ok, why = host_kinds.available(kind)
        module = host_kinds.MODULES.get(kind, (kind,))[0]
        if ok is False:
            have = [k for k in ("sit", "wireguard", "ip6tnl", "gre", "vxlan", "geneve")
                    if k != kind and host_kinds.available(k)[0]]
            hint = f"boot a kernel with {module} (Debian's stock kernel has it)"
            if have:
                hint += f", or use a kind this kernel has ({', '.join(have)})"
            return UnavailableError(f"no interface {name}, and this kernel has no {module} module ({why}): "
                                    f"it cannot make {kind} tunnels", hint=hint)
    return UsageError(f"no such interface: {name}", hint="list tunnels with `ip -d link show`")


def _data(info, kind: str, key: str):
    data = info.get_attr("IFLA_INFO_DATA") if info else None
    if data is None or not hasattr(data, "get_attr"):
        return None
    p = _PREFIX.get(kind, kind.upper())
    for name in (f"IFLA_{p}_{key}", f"IFLA_{p}_{key}6"):
        v = data.get_attr(name)
        if v not in (None, "0.0.0.0", "::"):
            return v
    return None


def _route_get(ipr, dst: str) -> tuple[int | None, int | None]:
    """(output ifindex, route MTU metric) the kernel would use for dst."""
    from pyroute2.netlink.exceptions import NetlinkError

    try:
        r = ipr.route("get", dst=dst)[0]
    except NetlinkError:
        return None, None
    metrics = r.get_attr("RTA_METRICS")
    return r.get_attr("RTA_OIF"), metrics.get_attr("RTAX_MTU") if metrics else None


def _addresses(ipr, index: int) -> list[Addr]:
    out = []
    for a in ipr.get_addr(family=socket.AF_INET6, index=index):
        flags = a.get_attr("IFA_FLAGS") or a["flags"]
        out.append(Addr(ipaddress.IPv6Address(a.get_attr("IFA_ADDRESS")).compressed, a["prefixlen"],
                        dynamic=not flags & IFA_F_PERMANENT))
    return out


def _routes(ipr, names: dict[int, str]) -> list[Route]:
    out = []
    for r in ipr.get_routes(family=socket.AF_INET6, table=RT_TABLE_MAIN):
        if r["type"] != RTN_UNICAST:
            continue
        dst = r.get_attr("RTA_DST") or "::"
        if ipaddress.IPv6Address(dst).is_link_local or ipaddress.IPv6Address(dst).is_multicast:
            continue
        oif, gw = r.get_attr("RTA_OIF"), r.get_attr("RTA_GATEWAY")
        mp = r.get_attr("RTA_MULTIPATH")
        if oif is None and mp:  # ECMP: the first next hop stands for the route
            oif, gw = mp[0]["oif"], mp[0].get_attr("RTA_GATEWAY")
        out.append(Route(f"{ipaddress.IPv6Address(dst).compressed}/{r['dst_len']}", names.get(oif, str(oif)),
                         gw, RT_PROTOS.get(r["proto"], str(r["proto"]))))
    return out


def _wg_peers(name: str) -> tuple[int | None, list[WgPeer]]:
    """Peers from WireGuard's genetlink family; `wg show IF dump` when that fails
    (pyroute2's WireGuard needs CAP_NET_ADMIN just like wg, so this is only for
    pyroute2 versions whose decoder breaks)."""
    try:
        from contextlib import closing

        from pyroute2 import WireGuard

        with closing(WireGuard()) as wg:  # not a context manager in pyroute2 0.7
            msgs = wg.info(name)
        port, peers = None, []
        for m in msgs:
            port = m.get_attr("WGDEVICE_A_LISTEN_PORT") or port
            for p in m.get_attr("WGDEVICE_A_PEERS") or []:
                ep = p.get_attr("WGPEER_A_ENDPOINT")
                endpoint = None
                if ep and ep.get("addr") not in (None, "0.0.0.0", "::") and ep.get("port"):
                    endpoint = f"[{ep['addr']}]:{ep['port']}" if ":" in ep["addr"] else f"{ep['addr']}:{ep['port']}"
                hs = p.get_attr("WGPEER_A_LAST_HANDSHAKE_TIME")
                ips = [a["addr"] for a in p.get_attr("WGPEER_A_ALLOWEDIPS") or [] if a.get("addr")]
                key = p.get_attr("WGPEER_A_PUBLIC_KEY")  # pyroute2 0.9: base64 bytes
                key = key.get("value", b"") if isinstance(key, dict) else key
                key = key.decode() if isinstance(key, bytes) else str(key)
                peers.append(WgPeer(key, endpoint, float(hs["tv_sec"]) if hs else 0.0, tuple(ips)))
        return port, peers
    except Exception:  # noqa: BLE001 - fall back to the tool; its errors are reported below
        pass
    if not shutil.which("wg"):
        raise UnavailableError(f"cannot read {name}'s WireGuard peers", hint="run as root, or install wireguard-tools")
    r = subprocess.run(["wg", "show", name, "dump"], capture_output=True, text=True)
    if r.returncode:
        raise UnavailableError(f"cannot read {name}'s WireGuard peers: {r.stderr.strip()}", hint="run as root")
    lines = [line.split("\t") for line in r.stdout.splitlines()]
    port = int(lines[0][2]) if lines and lines[0][2].isdigit() else None
    peers = [WgPeer(p[0], None if p[2] == "(none)" else p[2], float(p[4]),
                    tuple(x for x in p[3].split(",") if x and x != "(none)")) for p in lines[1:] if len(p) >= 8]
    return port, peers


def _proxies() -> list[tuple[str, str | None]]:
    # pyroute2 0.9's neigh dump filters NTF_PROXY in userspace, so the kernel never
    # sees the flag and returns no proxy entries: ask iproute2 instead.
    r = subprocess.run(["ip", "-j", "-6", "neigh", "show", "proxy"], capture_output=True, text=True)
    try:
        return [(ipaddress.IPv6Address(e["dst"]).compressed, e.get("dev")) for e in json.loads(r.stdout or "[]")]
    except (ValueError, KeyError):
        return []


def _sysctls(names: list[str]) -> dict[str, dict[str, int]]:
    out: dict[str, dict[str, int]] = {}
    for dev in names:
        for key in ("forwarding", "proxy_ndp", "accept_ra"):
            try:
                with open(f"/proc/sys/net/ipv6/conf/{dev}/{key}") as f:
                    out.setdefault(dev, {})[key] = int(f.read().strip())
            except (OSError, ValueError):
                pass
    return out


def read(name: str, kind_hint: str | None, ext: str | None, target: str | None) -> HostFacts:
    with _iproute() as ipr:
        idx = ipr.link_lookup(ifname=name)
        if not idx:
            raise missing_interface(name, kind_hint)
        link = ipr.get_links(idx[0])[0]
        info = link.get_attr("IFLA_LINKINFO")
        kind = info.get_attr("IFLA_INFO_KIND") if info else None
        if kind not in TUNNEL_KINDS:
            raise UsageError(f"{name} is not a tunnel (kind {kind or 'none, a plain device'})",
                             hint=f"name a tunnel interface ({', '.join(TUNNEL_KINDS)}): `ip -d link show`")
        names = {l["index"]: l.get_attr("IFLA_IFNAME") for l in ipr.get_links()}
        t = TunnelLink(name, kind, bool(link["flags"] & IFF_UP), bool(link["flags"] & IFF_LOWER_UP),
                       link.get_attr("IFLA_MTU"), addresses=_addresses(ipr, idx[0]))
        t.local, t.remote = _data(info, kind, "LOCAL"), _data(info, kind, "REMOTE") or _data(info, kind, "GROUP")
        t.port = _data(info, kind, "PORT")
        if kind in ("ip6tnl", "ip6gre", "ip6gretap"):
            flags = _data(info, kind, "FLAGS") or 0
            t.encap_limit = not flags & IP6_TNL_F_IGN_ENCAP_LIMIT
        if kind.startswith(("gre", "ip6gre")):
            oflags = _data(info, kind, "OFLAGS") or 0
            oflags = oflags if isinstance(oflags, int) else getattr(oflags, "value", 0)  # pyroute2 gre_flags
            t.gre_extra = 4 * sum(1 for bit in (GRE_CSUM, GRE_KEY, GRE_SEQ) if oflags & bit)
        if kind == "wireguard":
            t.port, t.peers = _wg_peers(name)
            ep = next((p.endpoint for p in t.peers if p.endpoint), None)
            t.remote = ep.rsplit(":", 1)[0].strip("[]") if ep else None
        if t.remote:
            t.underlay_family = 6 if ":" in t.remote else 4
            oif, route_mtu = _route_get(ipr, t.remote)
            lower = _data(info, kind, "LINK") or oif
            t.remote_routed = oif is not None
            t.underlay = names.get(lower)
            if lower:
                t.underlay_mtu = route_mtu or ipr.get_links(lower)[0].get_attr("IFLA_MTU")
        if t.local:
            fam = socket.AF_INET6 if ":" in t.local else socket.AF_INET
            t.local_owned = any(a.get_attr("IFA_ADDRESS") == t.local for a in ipr.get_addr(family=fam))
        routes = _routes(ipr, names)
        d = next((r for r in routes if r.dst == "::/0" and r.dev != name), None)
        ext = ext or (d.dev if d else None)
        if ext and not ipr.link_lookup(ifname=ext):
            raise UsageError(f"no such interface: {ext} (--ext-iface)", hint="list interfaces with `ip -br link`")
        ext_addrs = _addresses(ipr, ipr.link_lookup(ifname=ext)[0]) if ext else []
        target_dev = names.get(_route_get(ipr, target)[0]) if target else None
    fw, note = nft.ruleset()
    return HostFacts(t, time.time(), routes, ext, ext_addrs, _sysctls(["all", name] + ([ext] if ext else [])),
                     _proxies(), fw, note, target, target_dev)


def address_preference(target: str | None):
    """How glibc would order a dual-stack name on this host (IPv4 answered first,
    as resolvers often do): the sorted candidates and the policy table in force.
    Only routes are looked up (connect() of a UDP socket sends nothing)."""
    from v6diag.core import gai_policy, rfc6724, source_address

    v6 = target or "2001:db8:ffff::1"  # any global destination: what matters is the route and source
    cands, _ = source_address.candidates(["198.51.100.1", v6])
    policy = gai_policy.load()
    return rfc6724.sort(cands, policy), policy
