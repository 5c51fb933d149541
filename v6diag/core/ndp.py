"""Neighbor Discovery frames more than one command sends (discover, trace)."""

from __future__ import annotations

import ipaddress
import struct

from v6diag.core.constants import ETH_IPV6, ND_HOP_LIMIT, PROTO_ICMPV6
from v6diag.core.inet import fold, multicast_mac, ones_sum, solicited_node

ND_NS = 135  # RFC 4861 4.3
OPT_SOURCE_LLADDR = 1


def neighbor_solicitation(src_mac: str, link_local: str, target: str) -> bytes:
    """NS for `target` to its solicited-node group, with our link-layer address
    (RFC 4861 4.3). Packed by hand, not by scapy: discovery sends one per address
    heard, and at ~5 ms apiece scapy kept the loop from reading replies."""
    group = solicited_node(target)
    src, dst, tgt = (ipaddress.IPv6Address(a).packed for a in (link_local, group, target))
    mac = bytes.fromhex(src_mac.replace(":", ""))
    icmp = struct.pack("!BBHI16sBB6s", ND_NS, 0, 0, 0, tgt, OPT_SOURCE_LLADDR, 1, mac)
    pseudo = src + dst + struct.pack("!IxxxB", len(icmp), PROTO_ICMPV6)  # RFC 8200 8.1
    csum = 0xFFFF - fold(ones_sum(pseudo + icmp))
    icmp = icmp[:2] + struct.pack("!H", csum) + icmp[4:]
    eth = bytes.fromhex(multicast_mac(group).replace(":", "")) + mac + struct.pack("!H", ETH_IPV6)
    return eth + struct.pack("!IHBB16s16s", 6 << 28, len(icmp), PROTO_ICMPV6, ND_HOP_LIMIT, src, dst) + icmp
