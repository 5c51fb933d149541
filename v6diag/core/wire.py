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
