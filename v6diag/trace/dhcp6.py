"""DHCPv6 messages as typed records (RFC 8415, RFC 3646 DNS), for `trace`.

The option TLVs, including nested IA options and relayed messages, are walked on
the raw bytes first with every length bounded; only then are scapy's fields read."""

from __future__ import annotations

import ipaddress
import struct

from scapy.layers.dhcp6 import (
    DHCP6, DHCP6_RelayForward, DHCP6_RelayReply, DHCP6OptClientId, DHCP6OptDNSServers, DHCP6OptIA_NA, DHCP6OptIA_PD, DHCP6OptIAAddress,
    DHCP6OptIAPrefix, DHCP6OptOptReq, DHCP6OptRapidCommit, DHCP6OptRelayMsg, DHCP6OptServerId,
    DHCP6OptStatusCode, dhcp6statuscodes, dhcp6types,
)

from v6diag.core.constants import DHCPV6_CLIENT_PORT as CLIENT_PORT
from v6diag.core.constants import DHCPV6_SERVER_PORT as SERVER_PORT
from v6diag.core.dissect import MalformedPacket, without_padding
from v6diag.trace.report import Message
RELAY_TYPES = (12, 13)
HOP_COUNT_LIMIT = 8  # RFC 8415 7.6: relays drop messages nested deeper
DUID_TYPES = {1: "LLT", 2: "EN", 3: "LL", 4: "UUID"}  # RFC 8415 11
# option code -> octets before its own sub-options
NESTED = {3: 12, 25: 12, 4: 4, 5: 24, 26: 25}  # IA_NA, IA_PD, IA_TA, IAADDR, IAPREFIX


def type_name(code: int) -> str:
    return dhcp6types.get(code, str(code)).lower()


def status_name(code: int) -> str:
    return dhcp6statuscodes.get(code, f"status{code}")


def check_message(raw: bytes, depth: int = 0) -> None:
    if depth > HOP_COUNT_LIMIT:
        raise MalformedPacket(f"DHCPv6 relay messages nested deeper than {HOP_COUNT_LIMIT}")
    if len(raw) < 4:
        raise MalformedPacket("DHCPv6 message shorter than its header")
    start = 34 if raw[0] in RELAY_TYPES else 4
    if len(raw) < start:
        raise MalformedPacket("DHCPv6 relay message shorter than its header")
    _check_options(raw, start, depth)


def _check_options(raw: bytes, i: int, depth: int) -> None:
    while i < len(raw):
        if i + 4 > len(raw):
            raise MalformedPacket("DHCPv6 option header cut short")
        code, olen = struct.unpack_from("!HH", raw, i)
        end = i + 4 + olen
        if end > len(raw):
            raise MalformedPacket(f"DHCPv6 option {code} of length {olen} runs past its container")
        body = raw[i + 4 : end]
        if code in NESTED:
            if olen < NESTED[code]:
                raise MalformedPacket(f"DHCPv6 option {code} too short ({olen})")
            _check_options(body, NESTED[code], depth)
        elif code == 9:  # Relay Message: a whole message inside
            check_message(body, depth + 1)
        i = end


def _status(opt) -> dict:
    return {"code": opt.statuscode, "name": status_name(opt.statuscode),
            "message": (opt.statusmsg.decode(errors="replace") if isinstance(opt.statusmsg, bytes)
                        else str(opt.statusmsg or ""))}


def _sub_status(opts) -> dict | None:
    for o in opts or []:
        if isinstance(o, DHCP6OptStatusCode):
            return _status(o)
    return None


def _duid(opt) -> dict:
    raw = bytes(opt.duid) if opt.duid is not None else b""
    kind = struct.unpack_from("!H", raw)[0] if len(raw) >= 2 else None
    return {"type": DUID_TYPES.get(kind, kind), "hex": raw.hex()}


def details(msg) -> dict:
    """Fields of one DHCPv6 message (scapy layer) as plain data."""
    d: dict = {"msg_type": type_name(msg.msgtype)}
    if msg.msgtype in RELAY_TYPES:
        d.update(hop_count=msg.hopcount, link=str(msg.linkaddr), peer=str(msg.peeraddr))
    else:
        d["xid"] = msg.trid
    d.update(ia_na=[], ia_pd=[], status=None, rapid_commit=False, oro=[], dns=[])
    opt = msg.payload
    while opt is not None and hasattr(opt, "optcode"):
        if isinstance(opt, DHCP6OptServerId):  # first: scapy derives it from DHCP6OptClientId
            d["server_duid"] = _duid(opt)
        elif isinstance(opt, DHCP6OptClientId):
            d["client_duid"] = _duid(opt)
        elif isinstance(opt, DHCP6OptIA_NA):
            d["ia_na"].append({"iaid": opt.iaid, "t1": opt.T1, "t2": opt.T2, "status": _sub_status(opt.ianaopts),
                               "addresses": [{"address": str(a.addr), "preferred": a.preflft, "valid": a.validlft,
                                              "status": _sub_status(a.iaaddropts)}
                                             for a in opt.ianaopts or [] if isinstance(a, DHCP6OptIAAddress)]})
        elif isinstance(opt, DHCP6OptIA_PD):
            d["ia_pd"].append({"iaid": opt.iaid, "t1": opt.T1, "t2": opt.T2, "status": _sub_status(opt.iapdopt),
                               "prefixes": [{"prefix": f"{ipaddress.IPv6Address(p.prefix).compressed}/{p.plen}",
                                             "preferred": p.preflft, "valid": p.validlft,
                                             "status": _sub_status(p.iaprefopts)}
                                            for p in opt.iapdopt or [] if isinstance(p, DHCP6OptIAPrefix)]})
        elif isinstance(opt, DHCP6OptStatusCode):
            d["status"] = _status(opt)
        elif isinstance(opt, DHCP6OptRapidCommit):
            d["rapid_commit"] = True
        elif isinstance(opt, DHCP6OptOptReq):
            d["oro"] = list(opt.reqopts)
        elif isinstance(opt, DHCP6OptDNSServers):
            d["dns"] = [str(a) for a in opt.dnsservers]
        elif isinstance(opt, DHCP6OptRelayMsg) and opt.message is not None:
            d["relayed"] = details(opt.message)
        opt = opt.payload
    return d


def dhcp6_message(index: int, ts: float, mac: str | None, ip6, udp) -> Message:
    payload = udp.payload
    check_message(without_padding(payload))
    if not isinstance(payload, (DHCP6, DHCP6_RelayForward, DHCP6_RelayReply)):  # relays are not DHCP6 in scapy
        raise MalformedPacket("DHCPv6 port but not a DHCPv6 message")
    d = details(payload)
    m = Message(index, ts, "dhcpv6", d.pop("msg_type"), ipaddress.IPv6Address(ip6.src).compressed,
                ipaddress.IPv6Address(ip6.dst).compressed, mac, d)
    if udp.dport not in (CLIENT_PORT, SERVER_PORT):
        m.problems.append(f"sent to UDP port {udp.dport}")
    return m
