"""Checks on raw packet bytes shared by the decoders (no scapy here: discover's
live path must not import it)."""

from __future__ import annotations


class MalformedPacket(Exception):
    """A packet claimed to be a protocol we decode but its bytes do not hold up."""


def check_nd_options(raw: bytes, fixed: int) -> None:
    """RFC 4861 4.6 / 6.1: a node must discard ND packets that are too short or
    carry an option of length zero; an option may not run past the packet."""
    if len(raw) < fixed:
        raise MalformedPacket(f"ND message of {len(raw)} octets, needs {fixed}")
    i = fixed
    while i + 2 <= len(raw):
        olen = raw[i + 1] * 8
        if olen == 0:
            raise MalformedPacket(f"ND option type {raw[i]} with length 0")
        if i + olen > len(raw):
            raise MalformedPacket(f"ND option type {raw[i]} runs past the packet")
        i += olen
    if i != len(raw):
        raise MalformedPacket("ND options end mid-option")


def ipv6_upper(d: bytes, ip: int) -> tuple[int | None, int, int]:
    """(upper-layer Next Header, its offset, where the packet ends) for the IPv6
    header at `ip` (40 bytes there, checked by the caller). The payload length
    bounds the packet (Ethernet pads short frames); extension headers are stepped
    over in RFC 8200 4.1 order, at most IPV6_MAX_EXT_HEADERS of them. The Next
    Header is None when one runs past the packet: there is no upper layer to read."""
    from v6diag.core.constants import IPV6_EXT_SKIPPABLE, IPV6_MAX_EXT_HEADERS

    end = min(len(d), ip + 40 + ((d[ip + 4] << 8) | d[ip + 5]))
    nh, off = d[ip + 6], ip + 40
    for _ in range(IPV6_MAX_EXT_HEADERS):
        if nh not in IPV6_EXT_SKIPPABLE or off + 2 > end:
            break
        nh, off = d[off], off + (d[off + 1] + 1) * 8
    return (None if off > end else nh), off, end
