"""Neighbor Discovery messages as typed records, for `trace` (RFC 4861, 4191,
8106, 8781), read from the raw bytes: a busy link carries thousands of ND
messages a second and scapy costs ~50 us each. Option lengths are checked first
(core.wire.check_nd_options), so every read below is inside the message."""

from __future__ import annotations

import struct

from v6diag.core.inet import ipv6_text
from v6diag.core.link import mac_text
from v6diag.core.wire import check_nd_options
from v6diag.trace.report import Message

RS, RA, NS, NA, REDIRECT = 133, 134, 135, 136, 137
ND_KINDS = {RS: "rs", RA: "ra", NS: "ns", NA: "na", REDIRECT: "redirect"}
ND_FIXED = {RS: 8, RA: 16, NS: 24, NA: 24, REDIRECT: 40}  # RFC 4861 4.1-4.5: octets before the options
PRF = {0: "medium", 1: "high", 2: "reserved", 3: "low"}  # RFC 4191 2.1
# option types (RFC 4861 4.6, RFC 4191 2.3, RFC 8106 5, RFC 8781 4)
OPT_SOURCE_LLADDR, OPT_TARGET_LLADDR, OPT_PREFIX, OPT_MTU = 1, 2, 3, 5
OPT_ROUTE, OPT_RDNSS, OPT_DNSSL, OPT_PREF64 = 24, 25, 31, 38
UNSPECIFIED = bytes(16)
_U32 = struct.Struct("!I")


def nd_message(index: int, ts: float, mac: str | None, ip: bytes, icmp: bytes) -> Message:
    """`ip` is the 40-byte IPv6 header, `icmp` the ND message up to where the
    IPv6 payload length ends it (Ethernet padding cut off)."""
    kind = ND_KINDS[icmp[0]]
    check_nd_options(icmp, ND_FIXED[icmp[0]])
    m = Message(index, ts, "nd", kind, ipv6_text(ip[8:24]), ipv6_text(ip[24:40]), mac)
    if ip[7] != 255:  # RFC 4861 6.1 / 7.1: receivers must drop it
        m.problems.append(f"hop limit {ip[7]}, not 255: receivers ignore it")
    d = m.details
    if kind == "ra":
        flags = icmp[5]
        d.update(m_flag=bool(flags & 0x80), o_flag=bool(flags & 0x40), h_flag=bool(flags & 0x20),
                 preference=PRF[(flags >> 3) & 3], router_lifetime=(icmp[6] << 8) | icmp[7],
                 reachable_ms=_U32.unpack_from(icmp, 8)[0], retrans_ms=_U32.unpack_from(icmp, 12)[0],
                 cur_hop_limit=icmp[4], prefixes=[], rdnss=[], dnssl=[], routes=[], pref64=[], mtu=None)
    elif kind in ("ns", "na"):
        d["target"] = ipv6_text(icmp[8:24])
        if kind == "ns":
            d["dad"] = ip[8:24] == UNSPECIFIED  # RFC 4862 5.4.2
        else:
            flags = icmp[4]
            d.update(router=bool(flags & 0x80), solicited=bool(flags & 0x40), override=bool(flags & 0x20))
    elif kind == "redirect":
        d.update(target=ipv6_text(icmp[8:24]), destination=ipv6_text(icmp[24:40]))
    i = ND_FIXED[icmp[0]]
    while i < len(icmp):
        olen = icmp[i + 1] * 8
        _option(icmp[i], icmp[i : i + olen], d)
        i += olen
    return m


def _option(kind: int, o: bytes, d: dict) -> None:
    if kind in (OPT_SOURCE_LLADDR, OPT_TARGET_LLADDR):
        if len(o) >= 8:
            d["source_lladdr" if kind == OPT_SOURCE_LLADDR else "target_lladdr"] = mac_text(o[2:8])
        return
    if "prefixes" not in d:  # the rest only mean something in an RA
        return
    if kind == OPT_PREFIX and len(o) >= 32:
        d["prefixes"].append({"prefix": f"{ipv6_text(o[16:32])}/{o[2]}", "on_link": bool(o[3] & 0x80),
                              "autonomous": bool(o[3] & 0x40), "valid": _U32.unpack_from(o, 4)[0],
                              "preferred": _U32.unpack_from(o, 8)[0]})
    elif kind == OPT_MTU and len(o) >= 8:
        d["mtu"] = _U32.unpack_from(o, 4)[0]
    elif kind == OPT_RDNSS and len(o) >= 8:
        d["rdnss"].append({"servers": [ipv6_text(o[j : j + 16]) for j in range(8, len(o) - 15, 16)],
                           "lifetime": _U32.unpack_from(o, 4)[0]})
    elif kind == OPT_DNSSL and len(o) >= 8:
        d["dnssl"].append({"domains": _domains(o[8:]), "lifetime": _U32.unpack_from(o, 4)[0]})
    elif kind == OPT_ROUTE and len(o) >= 8:
        # RFC 4191 2.3: the prefix is 0, 8 or 16 octets (option length 1-3), zero-filled here
        d["routes"].append({"prefix": f"{ipv6_text((o[8:24] + UNSPECIFIED)[:16])}/{o[2]}",
                            "preference": PRF[(o[3] >> 3) & 3], "lifetime": _U32.unpack_from(o, 4)[0]})
    elif kind == OPT_PREF64 and len(o) == 16:
        word = (o[2] << 8) | o[3]
        d["pref64"].append({"prefix": f"{ipv6_text(o[4:16] + bytes(4))}/{_pref64_len(word & 7)}",
                            "lifetime": (word >> 3) * 8})


def _domains(b: bytes) -> list[str]:
    """RFC 8106 5.2: domain names in DNS wire format (no compression), then zero
    padding; each name is given with its trailing dot, as resolvers write it."""
    names, labels, i = [], [], 0
    while i < len(b):
        n = b[i]
        if n == 0:
            if not labels:
                break  # padding
            names.append(".".join(labels) + ".")
            labels = []
            i += 1
            continue
        if n > 63 or i + 1 + n > len(b):  # a compression pointer or a label past the option
            break
        labels.append(b[i + 1 : i + 1 + n].decode(errors="replace"))
        i += 1 + n
    return names


def _pref64_len(plc: int) -> int:
    return {0: 96, 1: 64, 2: 56, 3: 48, 4: 40, 5: 32}.get(plc, 0)  # RFC 8781 4
