"""What each drop reason means and what to do, by the kernel's own name (enum
skb_drop_reason, include/net/dropreason-core.h): names are stable, numbers are not.
IPv6, checksums and tunnels first; a name this table lacks still gets words from
its family (TCP_*, NEIGH_*, QDISC_*, ...), and is always shown by its own name."""

from __future__ import annotations

CHECKSUM_FIX = ("run `v6diag checksum -i IF` on the receiving interface: `partial` checksums are an offload "
                "artefact of a capture, `bad` ones were really damaged (a NIC, a middlebox or a double NAT "
                "rewriting packets, as flannel/kube-proxy can with VXLAN)")

REASONS: dict[str, tuple[str, str]] = {
    "UDP_CSUM": ("a UDP datagram arrived with a wrong checksum", CHECKSUM_FIX),
    "TCP_CSUM": ("a TCP segment arrived with a wrong checksum", CHECKSUM_FIX),
    "IP_CSUM": ("an IPv4 header arrived with a wrong checksum", CHECKSUM_FIX),
    "ICMP_CSUM": ("an ICMP/ICMPv6 message arrived with a wrong checksum", CHECKSUM_FIX),
    "SKB_CSUM": ("the packet's checksum could not be completed or verified", CHECKSUM_FIX),
    "NETFILTER_DROP": ("a firewall rule or conntrack state dropped it (nftables/iptables DROP, or an INVALID "
                       "conntrack state; NAT drops the packet whose entry it kills when the outgoing interface "
                       "changes)",
                       "find the rule: `nft add rule inet t trace_chain meta nftrace set 1` then `nft monitor trace`"
                       " (or `iptables -t raw -A PREROUTING -j TRACE`); `v6diag conntrack` says why entries die"),
    "NO_SOCKET": ("nothing listens on the destination port (or protocol) on this host",
                  "start the service, or check the port: for a tunnel this is its UDP port (VXLAN 4789/8472, "
                  "WireGuard 51820) with no device bound to it (`ss -ulpn`)"),
    "SOCKET_FILTER": ("a socket filter (BPF on the socket, e.g. a capture) rejected it", ""),
    "SOCKET_RCVBUFF": ("the receiving socket's buffer was full", "the application reads too slowly: raise "
                       "SO_RCVBUF (`sysctl -w net.core.rmem_max=...`) or speed the reader up"),
    "SOCKET_CLOSE": ("the socket was closed with data still queued", ""),
    "PKT_TOO_SMALL": ("the packet is shorter than its headers say", "a truncating device or a broken sender"),
    "PKT_TOO_BIG": ("the packet is bigger than the path MTU and could not be fragmented (IPv6 never fragments "
                    "in the network)", "check the tunnel MTU: `v6diag tunnel -i TUN`; clamp TCP MSS or lower the "
                    "interface MTU"),
    "OTHERHOST": ("the frame was addressed to another host's MAC (promiscuous mode, or a switch flooding)",
                  "expected on a bridge or in promiscuous mode; otherwise check for MAC flapping"),
    "IP_INHDR": ("the IP header was invalid (version, length, TTL/hop limit)", "a broken sender or a middlebox"),
    "IP_RPFILTER": ("reverse-path filtering: the source is not reachable back through the interface it came in on",
                    "asymmetric routing (dual WAN, policy routing): `sysctl -w net.ipv4.conf.IF.rp_filter=2` "
                    "(loose), or fix the routes; for IPv6 check `nft` fib rules"),
    "UNICAST_IN_L2_MULTICAST": ("an IP unicast packet came in a link-layer multicast/broadcast frame", ""),
    "XFRM_POLICY": ("an IPsec policy refused it", "check `ip xfrm policy`"),
    "IP_NOPROTO": ("no handler for the IP protocol number (e.g. protocol 41 with no sit tunnel)",
                   "for 6in4: create the sit tunnel, or load its module (`modprobe sit`)"),
    "IP_OUTNOROUTES": ("no route to send it", "check `ip -6 route get DEST`; add the missing (default) route"),
    "IP_INNOROUTES": ("no route to forward it", "check `ip -6 route`: a missing route towards the destination, "
                      "or forwarding without a route back"),
    "IPV6DISABLED": ("IPv6 is disabled on the interface (disable_ipv6, or an MTU below 1280 removed it)",
                     "sysctl -w net.ipv6.conf.IF.disable_ipv6=0; keep the MTU at 1280 or more"),
    "NEIGH_CREATEFAIL": ("no neighbour entry could be created (table full?)",
                         "raise net.ipv6.neigh.default.gc_thresh3"),
    "NEIGH_FAILED": ("the neighbour does not answer Neighbor Solicitations (address resolution failed)",
                     "is it there? `v6diag discover -i IF`; `v6diag trace -i IF` shows the unanswered NS"),
    "NEIGH_QUEUEFULL": ("packets queued while resolving a neighbour overflowed (it answers too slowly or not at "
                        "all)", "`v6diag trace -i IF` shows the unanswered NS; raise unres_qlen if it is just slow"),
    "NEIGH_DEAD": ("the neighbour entry was being removed", ""),
    "IPV6_BAD_EXTHDR": ("an IPv6 extension header was malformed or not allowed", ""),
    "IPV6_NDISC_FRAG": ("a Neighbor Discovery message arrived fragmented (RFC 6980 forbids it)", ""),
    "IPV6_NDISC_HOP_LIMIT": ("an ND message had a hop limit other than 255 (RFC 4861: off-link or forged)",
                             "find the sender: `v6diag trace -i IF` flags it"),
    "IPV6_NDISC_BAD_CODE": ("an ND message had a non-zero ICMPv6 code", ""),
    "IPV6_NDISC_BAD_OPTIONS": ("an ND message's options were malformed (zero length, overlong, ...)",
                               "`v6diag trace -i IF` decodes and names the bad option"),
    "IPV6_NDISC_NS_OTHERHOST": ("a Neighbor Solicitation for an address that is not this host's",
                                "expected on a shared link; for a tunnel server answering for clients, enable "
                                "proxy NDP"),
    "VXLAN_INVALID_HDR": ("a VXLAN packet had an invalid header (flags)", "check both ends' VXLAN settings"),
    "VXLAN_VNI_NOT_FOUND": ("a VXLAN packet's VNI matches no local VXLAN device",
                            "compare the VNI on both ends (`ip -d link show`)"),
    "VXLAN_ENTRY_EXISTS": ("a VXLAN FDB entry already exists", ""),
    "IP_TUNNEL_ECN": ("the tunnel's ECN decapsulation rules refused it (RFC 6040)", ""),
    "TUNNEL_TXINFO": ("the tunnel had no route or metadata to send it", "check the tunnel's remote and routes"),
    "NO_TX_TARGET": ("no target to transmit to (a tunnel or bridge with nowhere to send)", ""),
    "MAC_INVALID_SOURCE": ("the source MAC was invalid (multicast or zero)", ""),
    "NOT_SPECIFIED": ("dropped without a specific reason: the location names the function",
                      "look the function up; `v6diag drops --probe bpf` shows the flow"),
    "NOMEM": ("out of memory for the packet", ""),
    "CPU_BACKLOG": ("the CPU's input backlog was full", "raise net.core.netdev_max_backlog; spread receive load"),
    "QDISC_DROP": ("the queueing discipline dropped it (queue full)", "check `tc -s qdisc`"),
    "FRAG_REASM_TIMEOUT": ("fragments never completed a packet in time", "path MTU or lost fragments"),
    "DUP_FRAG": ("a duplicate fragment", ""),
    "FRAG_TOO_FAR": ("a fragment too far out of order", ""),
    "TC_INGRESS": ("a tc ingress filter dropped it", "check `tc filter show dev IF ingress`"),
    "TC_EGRESS": ("a tc egress filter dropped it", "check `tc filter show dev IF egress`"),
    "XDP": ("an XDP program dropped it", "check `ip link show` for an attached xdp program"),
    "BPF_CGROUP_EGRESS": ("a cgroup BPF program refused the packet", ""),
    "UNHANDLED_PROTO": ("no handler for the link-layer protocol", ""),
    "HDR_TRUNC": ("the headers were truncated", ""),
    "IP_LOCAL_SOURCE": ("the source address is one of this host's", "a loop, or spoofing"),
    "IP_INVALID_SOURCE": ("the source address is invalid (multicast, loopback...)", ""),
    "IP_INVALID_DEST": ("the destination address is invalid", ""),
    "IP_INADDRERRORS": ("the destination address is not this host's and forwarding is off",
                        "sysctl -w net.ipv6.conf.all.forwarding=1 on a router"),
}

# reasons of the same family share words when the name itself is new to this table
FAMILIES = [
    ("TCP_", "the TCP state machine refused the segment", ""),
    ("NEIGH_", "neighbour (address) resolution failed", "`v6diag discover -i IF`"),
    ("QDISC_", "the queueing discipline dropped it", "check `tc -s qdisc`"),
    ("IPV6_NDISC_", "Neighbor Discovery refused the message", "`v6diag trace -i IF`"),
    ("VXLAN_", "the VXLAN device refused the packet", "check both ends' VXLAN settings"),
    ("FRAG_", "fragment reassembly failed", ""),
    ("SOCKET_", "the receiving socket refused it", ""),
    ("IP_", "the IP layer refused it", ""),
]


def explain(name: str) -> tuple[str, str]:
    """(why, fix) for a kernel reason name; never raises, whatever the name."""
    known = REASONS.get(name)
    if known:
        return known
    for prefix, why, fix in FAMILIES:
        if name.startswith(prefix):
            return f"{why} ({name})", fix
    return f"the kernel dropped it for reason {name} (not in v6diag's table: see include/net/dropreason-core.h)", ""
