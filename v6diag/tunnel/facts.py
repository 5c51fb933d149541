"""Plain records of what a host's tunnel configuration is (read by host.py, or
written by hand in tests) and of one probe's outcome."""

from __future__ import annotations

from dataclasses import dataclass, field

@dataclass(frozen=True)
class Addr:
    address: str  # compressed IPv6
    prefixlen: int
    dynamic: bool = False  # SLAAC/DHCP (has a lifetime), not configured by hand


@dataclass(frozen=True)
class Route:
    dst: str  # "::/0", "2001:db8:1::/64"
    dev: str
    gateway: str | None = None
    proto: str = ""  # "kernel", "static", "ra", "boot"...


@dataclass(frozen=True)
class WgPeer:
    public_key: str
    endpoint: str | None  # "198.51.100.1:51820" / "[2001:db8::1]:51820"
    latest_handshake: float  # seconds since the epoch, 0 = never
    allowed_ips: tuple[str, ...] = ()


@dataclass
class TunnelLink:
    name: str
    kind: str  # IFLA_INFO_KIND: sit, wireguard, ip6tnl, gre, ip6gre, vxlan, geneve...
    up: bool  # IFF_UP
    lower_up: bool  # IFF_LOWER_UP (carrier)
    mtu: int
    local: str | None = None  # underlay source (None/"0.0.0.0" = any)
    remote: str | None = None
    port: int | None = None  # vxlan/geneve dstport, wireguard listen port
    underlay: str | None = None  # the interface the encapsulated packets leave by
    underlay_mtu: int | None = None
    underlay_family: int = 4  # 4 or 6
    remote_routed: bool = True  # the kernel has a route to `remote`
    local_owned: bool = True  # `local` is an address of this host
    gre_extra: int = 0  # GRE key/checksum/sequence bytes
    encap_limit: bool = False  # ip6tnl/ip6gre add an 8-byte destination option (RFC 2473 4.1.1)
    addresses: list[Addr] = field(default_factory=list)  # IPv6 on the tunnel
    peers: list[WgPeer] = field(default_factory=list)  # wireguard only


@dataclass
class HostFacts:
    tunnel: TunnelLink
    now: float
    routes: list[Route] = field(default_factory=list)  # IPv6 main table
    ext: str | None = None  # the server's external interface
    ext_addresses: list[Addr] = field(default_factory=list)
    sysctl: dict[str, dict[str, int]] = field(default_factory=dict)  # "all"/ifname -> {forwarding, proxy_ndp, accept_ra}
    proxies: list[tuple[str, str | None]] = field(default_factory=list)  # (address, dev or None)
    firewall: dict | None = None  # `nft -j list ruleset` as parsed JSON; None = unknown
    firewall_note: str = ""  # why the firewall could not be read
    target: str | None = None
    target_dev: str | None = None  # where the kernel routes --target


@dataclass
class ProbeResult:
    """One ICMPv6 echo probe (probe.py)."""

    dst: str
    size: int  # IPv6 packet length
    replied: bool
    rtt_ms: float | None = None
    error: str | None = None  # "EMSGSIZE", "unreachable", "ptb", "timeout"...
    mtu: int | None = None  # from a Packet Too Big or EMSGSIZE's path MTU
