"""Internet checksum arithmetic and IPv6 address facts shared by the commands."""

from __future__ import annotations

import ipaddress
import socket
import struct


def ones_sum(b: bytes) -> int:
    """RFC 1071 sum of 16-bit big-endian words (odd tail padded with zero), unfolded."""
    if len(b) % 2:
        b += b"\0"
    return sum(struct.unpack(f"!{len(b) // 2}H", b))


def fold(s: int) -> int:
    while s >> 16:
        s = (s & 0xFFFF) + (s >> 16)
    return s


def same16(a: int, b: int) -> bool:
    """Equal in ones' complement arithmetic (0x0000 and 0xffff are both zero)."""
    return a % 0xFFFF == b % 0xFFFF


def ipv4_text(b: bytes) -> str:
    return ".".join(str(x) for x in b)


def ipv6_text(b: bytes) -> str:
    return socket.inet_ntop(socket.AF_INET6, b)  # RFC 5952 text, ~10x faster than ipaddress


def ip_text(b: bytes) -> str:
    return ipv4_text(b) if len(b) == 4 else ipv6_text(b)


def solicited_node(address: str) -> str:
    """RFC 4291 2.7.1: ff02::1:ff00:0/104 + low 24 bits."""
    low = int(ipaddress.IPv6Address(address)) & 0xFFFFFF
    return ipaddress.IPv6Address((0xFF020000000000000000000000000000 | 0x1FF000000) | low).compressed


def multicast_mac(group: str) -> str:
    """RFC 2464 7: 33:33 + low 32 bits of the group."""
    low = ipaddress.IPv6Address(group).packed[-4:]
    return "33:33:" + ":".join(f"{b:02x}" for b in low)
