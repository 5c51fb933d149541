"""The scapy ND decoder `trace` used before issue 13, kept as the oracle the
raw-byte decoder (v6diag/trace/nd.py, decode.py) is held equal to
(tests/unit/test_trace_decode_reference.py). Not used by v6diag itself."""

# ruff: noqa: E402
from __future__ import annotations


import ipaddress

from scapy.layers.inet6 import (
    ICMPv6ND_NA, ICMPv6ND_NS, ICMPv6ND_RA, ICMPv6ND_Redirect, ICMPv6ND_RS, ICMPv6NDOptDNSSL,
    ICMPv6NDOptDstLLAddr, ICMPv6NDOptMTU, ICMPv6NDOptPrefixInfo, ICMPv6NDOptRDNSS, ICMPv6NDOptRouteInfo,
    ICMPv6NDOptSrcLLAddr,
)

from v6diag.core.dissect import ND_FIXED, check_nd_options, without_padding
from v6diag.trace.report import Message

PRF = {0: "medium", 1: "high", 2: "reserved", 3: "low"}  # RFC 4191 2.1
ND_TYPES = {ICMPv6ND_RS: "rs", ICMPv6ND_RA: "ra", ICMPv6ND_NS: "ns", ICMPv6ND_NA: "na",
            ICMPv6ND_Redirect: "redirect"}


def _addr(a) -> str:
    return ipaddress.IPv6Address(a).compressed


def nd_message(index: int, ts: float, mac: str | None, ip6, upper) -> Message:
    kind = ND_TYPES[type(upper)]
    check_nd_options(without_padding(upper), ND_FIXED[type(upper)])
    m = Message(index, ts, "nd", kind, _addr(ip6.src), _addr(ip6.dst), mac)
    if ip6.hlim != 255:  # RFC 4861 6.1 / 7.1: receivers must drop it
        m.problems.append(f"hop limit {ip6.hlim}, not 255: receivers ignore it")
    d = m.details
    if kind == "ra":
        d.update(m_flag=bool(upper.M), o_flag=bool(upper.O), h_flag=bool(upper.H), preference=PRF[upper.prf],
                 router_lifetime=upper.routerlifetime, reachable_ms=upper.reachabletime,
                 retrans_ms=upper.retranstimer, cur_hop_limit=upper.chlim, prefixes=[], rdnss=[], dnssl=[],
                 routes=[], pref64=[], mtu=None)
    elif kind in ("ns", "na"):
        d["target"] = _addr(upper.tgt)
        if kind == "ns":
            d["dad"] = ip6.src == "::"  # RFC 4862 5.4.2
        else:
            d.update(router=bool(upper.R), solicited=bool(upper.S), override=bool(upper.O))
    elif kind == "redirect":
        d.update(target=_addr(upper.tgt), destination=_addr(upper.dst))
    opt = upper.payload
    while opt is not None and opt.name != "NoPayload" and opt.__class__.__name__ != "Padding":
        if opt.__class__.__name__ == "Raw":
            # scapy 2.5 (Debian 12, the declared floor) stops at an option type it does
            # not know (PREF64 among them) and leaves the rest as Raw: read those TLVs here
            _raw_options(bytes(opt), d)
            break
        _option(opt, d)
        opt = opt.payload
    return m


def _option(opt, d: dict) -> None:
    # The one fix made since: scapy's DstLLAddr subclasses SrcLLAddr, so the old
    # order filed every Target Link-Layer Address as a source (no output showed it).
    if isinstance(opt, ICMPv6NDOptDstLLAddr):
        d["target_lladdr"] = opt.lladdr
    elif isinstance(opt, ICMPv6NDOptSrcLLAddr):
        d["source_lladdr"] = opt.lladdr
    elif isinstance(opt, ICMPv6NDOptPrefixInfo) and "prefixes" in d:
        d["prefixes"].append({"prefix": f"{_addr(opt.prefix)}/{opt.prefixlen}", "on_link": bool(opt.L),
                              "autonomous": bool(opt.A), "valid": opt.validlifetime,
                              "preferred": opt.preferredlifetime})
    elif isinstance(opt, ICMPv6NDOptMTU) and "prefixes" in d:
        d["mtu"] = opt.mtu
    elif isinstance(opt, ICMPv6NDOptRDNSS) and "rdnss" in d:
        d["rdnss"].append({"servers": [_addr(a) for a in opt.dns], "lifetime": opt.lifetime})
    elif isinstance(opt, ICMPv6NDOptDNSSL) and "dnssl" in d:
        d["dnssl"].append({"domains": [s.decode(errors="replace") if isinstance(s, bytes) else s
                                       for s in opt.searchlist], "lifetime": opt.lifetime})
    elif isinstance(opt, ICMPv6NDOptRouteInfo) and "routes" in d:
        d["routes"].append({"prefix": f"{_addr(opt.prefix)}/{opt.plen}", "preference": PRF[opt.prf],
                            "lifetime": opt.rtlifetime})
    elif getattr(opt, "type", None) == OPT_PREF64:
        _pref64(bytes(opt)[:16], d)


def _raw_options(data: bytes, d: dict) -> None:
    while len(data) >= 8 and data[1]:
        if data[0] == OPT_PREF64:
            _pref64(data[:16], d)
        data = data[data[1] * 8:]


def _pref64(raw: bytes, d: dict) -> None:
    # from the bytes: scapy names this option only from 2.6 on (Debian 12 has 2.5)
    if "pref64" in d and len(raw) == 16 and raw[1] == 2:
        word = int.from_bytes(raw[2:4], "big")
        d["pref64"].append({"prefix": f"{_addr(raw[4:16] + bytes(4))}/{_pref64_len(word & 7)}",
                            "lifetime": (word >> 3) * 8})


OPT_PREF64 = 38  # RFC 8781 4: type 38, length 2; scaled lifetime (13 bits), PLC (3 bits), prefix (96 bits)


def _pref64_len(plc: int) -> int:
    return {0: 96, 1: 64, 2: 56, 3: 48, 4: 40, 5: 32}.get(plc, 0)  # RFC 8781 4
from scapy.layers.inet import UDP

from v6diag.core import link
from v6diag.core.dissect import MalformedPacket, ipv6_of, upper_layer
from v6diag.core.frames import Frame
from v6diag.trace.dhcp6 import CLIENT_PORT, SERVER_PORT, dhcp6_message


def decode_message(frame: Frame, index: int) -> Message | None:
    """None for traffic `trace` does not follow; MalformedPacket for a message
    that claims to be ND or DHCPv6 and does not hold together."""
    got = ipv6_of(frame)  # IPv4, ARP...: skipped before scapy, which costs ~50 us a frame
    if got is None:
        return None
    lh, ip6 = got
    mac = link.mac_text(lh.src_mac) if lh.src_mac is not None else None
    try:
        upper = upper_layer(ip6)
        if type(upper) in ND_TYPES:
            return nd_message(index, frame.ts, mac, ip6, upper)
        if isinstance(upper, UDP) and {upper.sport, upper.dport} & {CLIENT_PORT, SERVER_PORT}:
            return dhcp6_message(index, frame.ts, mac, ip6, upper)
        return None
    except MalformedPacket:
        raise
    except Exception as e:  # scapy's dissectors are not hardened against every byte string
        raise MalformedPacket(f"{type(e).__name__}: {e}") from e
