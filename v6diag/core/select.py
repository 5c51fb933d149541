"""Which frames of a batch deserve a decoder, found with numpy over the raw bytes
of the whole batch (the way checksum verifies): on a busy link most frames are
ordinary TCP/UDP and need no per-frame Python at all."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from v6diag.core import link
from v6diag.core.constants import (
    ETH_IPV4, ETH_IPV6, IPV6_EXT_FRAGMENT, IPV6_EXT_SKIPPABLE, LINKTYPE_ETHERNET, PROTO_ICMPV6, PROTO_UDP,
)
from v6diag.core.frames import Batch


@dataclass
class Ipv6Columns:
    """One row per frame of the batch."""

    buf: np.ndarray  # the batch's bytes
    off: np.ndarray  # where each frame starts in buf
    end: np.ndarray  # where its captured bytes end

    ipv6: np.ndarray  # bool: EtherType IPv6 behind the link header (VLAN tags looked through)
    sound: np.ndarray  # bool: a whole 40-byte IPv6 header, version 6
    ethernet: np.ndarray  # bool: Ethernet link type (a 6-byte source MAC at 6..12)
    l3: np.ndarray  # offset of the IPv6 header in the frame's buffer
    nh: np.ndarray  # the first Next Header
    src_link_local: np.ndarray  # bool: source in fe80::/10
    mac_group: np.ndarray  # bool: Ethernet source MAC multicast or zero (not a device)
    icmp_type: np.ndarray  # the ICMPv6 type when nh is ICMPv6, else -1
    ports: tuple[np.ndarray, np.ndarray]  # UDP source and destination port when nh is UDP, else -1
    etype: np.ndarray  # EtherType behind the link header (-1: no known link header)
    ipv4_udp_sport: np.ndarray  # IPv4: the UDP source port of an unfragmented datagram, else -1


def columns(batch: Batch) -> Ipv6Columns:
    buf = np.frombuffer(batch.buf or b"\0", np.uint8)
    last = len(buf) - 1

    def u8(i):
        return buf[np.clip(i, 0, last)].astype(np.int64)

    def u16(i):
        return (u8(i) << 8) | u8(i + 1)

    off = np.asarray(batch.offsets, np.int64)
    end = off + np.asarray(batch.lengths, np.int64)
    lt = np.asarray(batch.linktypes, np.int64)
    etype, l3, known = link.columns(u16, off, end, lt)
    ipv6 = known & (etype == ETH_IPV6)
    sound = ipv6 & (end >= l3 + 40) & ((u8(l3) >> 4) == 6)
    nh = np.where(sound, u8(l3 + 6), -1)
    src_ll = sound & (u8(l3 + 8) == 0xFE) & ((u8(l3 + 9) & 0xC0) == 0x80)
    ethernet = lt == LINKTYPE_ETHERNET
    mac0 = u8(off + 6)
    mac_zero = np.zeros(len(off), bool)
    if len(off):
        mac_zero = np.all(buf[np.clip(off[:, None] + 6 + np.arange(6), 0, last)] == 0, axis=1)
    mac_group = ethernet & (((mac0 & 1) == 1) | mac_zero)
    upper = l3 + 40
    icmp_type = np.where(sound & (nh == PROTO_ICMPV6) & (end > upper), u8(upper), -1)
    udp = sound & (nh == PROTO_UDP) & (end >= upper + 4)
    ports = (np.where(udp, u16(upper), -1), np.where(udp, u16(upper + 2), -1))
    ihl = (u8(l3) & 0x0F) * 4
    v4_udp = (known & (etype == ETH_IPV4) & ((u8(l3) >> 4) == 4) & (u8(l3 + 9) == PROTO_UDP)
              & ((u16(l3 + 6) & 0x3FFF) == 0) & (ihl >= 20) & (end >= l3 + ihl + 8))
    v4_sport = np.where(v4_udp, u16(l3 + ihl), -1)
    return Ipv6Columns(buf, off, end, ipv6, sound, ethernet, l3, nh, src_ll, mac_group, icmp_type, ports,
                       np.where(known, etype, -1), v4_sport)


def has_extension_headers(cols: Ipv6Columns) -> np.ndarray:
    """The upper layer hides behind extension headers (or a fragment): decode it."""
    return np.isin(cols.nh, (*IPV6_EXT_SKIPPABLE, IPV6_EXT_FRAGMENT))


def rows(cols: Ipv6Columns, starts: np.ndarray, width: int) -> np.ndarray:
    """`width` bytes from each of `starts` (all inside their frames), one row each."""
    return cols.buf[starts[:, None] + np.arange(width)]


def first_of_each(keys: np.ndarray) -> np.ndarray:
    """Indices of the first row of every distinct key row, in row order."""
    if not len(keys):
        return np.zeros(0, np.int64)
    flat = np.ascontiguousarray(keys).view(np.dtype((np.void, keys.shape[1] * keys.itemsize))).ravel()
    _, first = np.unique(flat, return_index=True)
    return np.sort(first)
