"""Rebuild ND and DHCPv6 exchanges from messages and say why addressing or
prefix delegation fails (RFC 4861, 4862, 8415)."""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass, field

from v6diag.core.dissect import MalformedPacket
from v6diag.core.constants import DHCPV6_CLIENT_PORT, DHCPV6_SERVER_PORT, PROTO_ICMPV6, PROTO_UDP
from v6diag.core.frames import Batch, Frame
from v6diag.trace.decode import decode_message
from v6diag.trace.report import (
    DadExchange, Dhcpv6Exchange, Exchange, Message, NsExchange, RedirectExchange, RsExchange,
)

CLIENT_MSGS = {"solicit", "request", "confirm", "renew", "rebind", "release", "decline", "information-request"}
SERVER_MSGS = {"advertise", "reply", "reconfigure"}
RS_WINDOW = 4.0  # s: an RA this soon after an RS answers it (RFC 4861 6.2.6 delays <= 0.5 s)
DAD_WINDOW = 1.5  # s: RetransTimer (1 s) * DupAddrDetectTransmits, with slack
# How long an unanswered request must have been watched before "no answer" is said:
# RFC 8415 7.6 SOL_TIMEOUT/INF_TIMEOUT/REQ_TIMEOUT 1 s (a client retransmits then);
# RFC 4861 10 MAX_RA_DELAY_TIME 0.5 s (routers answer an RS within it), doubled for slow links
DHCPV6_TIMEOUT = 1.0
RA_GRACE = 1.0
ND_FIRST, ND_LAST = 133, 137  # RS, RA, NS, NA, Redirect (RFC 4861 4)
DHCPV6_PORTS = (DHCPV6_CLIENT_PORT, DHCPV6_SERVER_PORT)


@dataclass
class _Pending:
    first: float
    last: float
    index: int
    count: int = 1
    sources: set = field(default_factory=set)
    macs: set = field(default_factory=set)


class TraceAnalysis:
    def __init__(self, interface: str | None = None, owned_prefixes: list[str] = (), own_mac: str | None = None):
        self.interface = interface
        self.own_mac = own_mac  # live: NS we sent ourselves
        self.owned = [ipaddress.IPv6Network(p, strict=False) for p in owned_prefixes]
        self.packets = 0
        self.malformed = 0
        self.malformed_examples: list[str] = []
        self.messages = 0
        self.last_ts = 0.0  # the newest frame seen
        self.end_ts = 0.0  # live: when listening ended (a quiet link's last frame is our own probe)
        self.exchanges: list[Exchange] = []
        self.routers: dict[str, dict] = {}
        self.problems: list[tuple[Message, str]] = []
        self._ns: dict[str, _Pending] = {}
        self._dad: dict[str, _Pending] = {}
        self._rs: dict[str, _Pending] = {}
        self.dhcp: dict[tuple, Dhcpv6Exchange] = {}  # (client DUID, xid) -> exchange
        self.clients: dict[str, dict] = {}  # client DUID -> what it asked for
        self.announced: dict[str, set] = {}  # router -> {(router lifetime, MTU option)}

    # -- input ---------------------------------------------------------------
    def feed_batch(self, batch: Batch) -> None:
        """The same as feed() on every frame of the batch; only frames that may be
        ND (types 133-137), DHCPv6 (UDP 546/547), hidden behind extension headers
        or damaged reach the decoder (scapy: ~50 us a frame)."""
        import numpy as np

        from v6diag.core import select

        cols = select.columns(batch)
        icmp, udp = cols.nh == PROTO_ICMPV6, cols.nh == PROTO_UDP
        sport, dport = cols.ports
        wanted = (~cols.sound | select.has_extension_headers(cols)
                  | (icmp & ((cols.icmp_type < 0) | ((cols.icmp_type >= ND_FIRST) & (cols.icmp_type <= ND_LAST))))
                  | (udp & ((sport < 0) | np.isin(sport, DHCPV6_PORTS) | np.isin(dport, DHCPV6_PORTS))))
        base = self.packets
        for i in np.flatnonzero(cols.ipv6 & wanted).tolist():
            self.packets = base + i
            off = batch.offsets[i]
            self.feed(Frame(batch.ts[i], batch.linktypes[i], batch.buf[off : off + batch.lengths[i]],
                            batch.outgoing[i] if batch.outgoing is not None else False, batch.wire_lens[i]))
        self.packets = base + len(batch)
        if len(batch):
            self.last_ts = max(self.last_ts, max(batch.ts))

    def feed(self, frame: Frame) -> Message | None:
        index = self.packets
        self.packets += 1
        self.last_ts = max(self.last_ts, frame.ts)
        try:
            m = decode_message(frame, index)
        except MalformedPacket as e:
            self.malformed += 1
            if len(self.malformed_examples) < 3:
                self.malformed_examples.append(f"packet {index}: {e}")
            return None
        if m is not None:
            self.add(m)
        return m

    def add(self, m: Message) -> None:
        self.messages += 1
        for p in m.problems:
            self.problems.append((m, p))
        if m.proto == "nd":
            getattr(self, f"_on_{m.type}")(m)
        else:
            inner = m.details.get("relayed")
            if m.type in ("relay-forw", "relay-repl") and inner and "xid" in inner:
                m = Message(m.index, m.ts, "dhcpv6", inner.get("msg_type", "?"), m.details.get("peer", m.src),
                            m.dst, m.mac, {k: v for k, v in inner.items() if k != "msg_type"})
            self._dhcpv6(m)

    # -- Neighbor Discovery ----------------------------------------------------
    def _on_ns(self, m: Message) -> None:
        target = m.details["target"]
        book = self._dad if m.details["dad"] else self._ns
        p = book.get(target)
        if p is None:
            book[target] = _Pending(m.ts, m.ts, m.index, 1, {m.src}, {m.mac})
        else:
            p.count += 1
            p.last = m.ts
            p.sources.add(m.src)
            p.macs.add(m.mac)

    def _on_na(self, m: Message) -> None:
        target = m.details["target"]
        dad = self._dad.get(target)
        if dad and m.mac not in dad.macs and m.ts - dad.first <= DAD_WINDOW:
            self._close_dad(target, duplicate_by=m.mac)
        p = self._ns.pop(target, None)
        if p is not None:
            self.exchanges.append(NsExchange(
                target=target, time=round(p.first, 6), requests=p.count, answered=True,
                latency_ms=round((m.ts - p.first) * 1000, 3), answered_by=m.mac, router=m.details["router"],
                solicited_by=sorted(p.sources)))

    def _close_dad(self, target: str, duplicate_by: str | None) -> None:
        p = self._dad.pop(target)
        self.exchanges.append(DadExchange(target=target, time=round(p.first, 6), probes=p.count,
                                          by=sorted(filter(None, p.macs)), duplicate=duplicate_by is not None,
                                          duplicate_by=duplicate_by))

    def _on_rs(self, m: Message) -> None:
        p = self._rs.get(m.src)
        if p is None:
            self._rs[m.src] = _Pending(m.ts, m.ts, m.index, 1, {m.src}, {m.mac})
        else:
            p.count += 1
            p.last = m.ts

    def _on_ra(self, m: Message) -> None:
        if m.problems:
            return  # hop limit != 255: hosts drop it (RFC 4861 6.1.2); reported, not believed
        r = self.routers.setdefault(m.src, {"address": m.src, "mac": m.mac, "advertisements": 0})
        r["advertisements"] += 1
        r.update({k: v for k, v in m.details.items()})
        r["last_seen"] = round(m.ts, 6)
        # every distinct (lifetime, MTU) announced: a later good RA must not hide a bad one
        self.announced.setdefault(m.src, set()).add((m.details["router_lifetime"], m.details["mtu"]))
        for client, p in list(self._rs.items()):
            if m.dst in (client, "ff02::1") and 0 <= m.ts - p.last <= RS_WINDOW:
                self._rs.pop(client)
                self.exchanges.append(RsExchange(client=client, time=round(p.first, 6), requests=p.count,
                                                 answered=True, router=m.src,
                                                 latency_ms=round((m.ts - p.last) * 1000, 3)))

    def _on_redirect(self, m: Message) -> None:
        self.exchanges.append(RedirectExchange(time=round(m.ts, 6), router=m.src,
                                               destination=m.details["destination"], target=m.details["target"]))

    # -- DHCPv6 ------------------------------------------------------------------
    def _dhcpv6(self, m: Message) -> None:
        xid = m.details.get("xid")
        duid = (m.details.get("client_duid") or {}).get("hex") or m.src
        key = (duid, xid)
        if m.type in CLIENT_MSGS:
            ex = self.dhcp.get(key)
            if ex is None:
                ex = self.dhcp[key] = Dhcpv6Exchange(kind=m.type, xid=xid, client_duid=duid, client=m.src,
                                                     time=round(m.ts, 6), first=m.ts, last=m.ts)
                self.exchanges.append(ex)
            ex.requests += 1
            ex.last = m.ts
            ex.ia_na_requested |= bool(m.details["ia_na"])
            ex.ia_pd_requested |= bool(m.details["ia_pd"])
            c = self.clients.setdefault(duid, {"address": m.src, "kinds": set(), "pd_requested": False})
            c["kinds"].add(m.type)
            c["pd_requested"] |= bool(m.details["ia_pd"])
        elif m.type in SERVER_MSGS:
            ex = self.dhcp.get(key)
            if ex is None:
                return  # a reply to something before the capture began
            if not ex.answered:
                ex.latency_ms = round((m.ts - ex.first) * 1000, 3)
            ex.answered = True
            ex.replies.append(m.type)
            ex.server_duid = (m.details.get("server_duid") or {}).get("hex")
            ex.server = m.src
            for ia in m.details["ia_na"]:
                ex.addresses += [a["address"] for a in ia["addresses"] if a["valid"]]
            for ia in m.details["ia_pd"]:
                ex.prefixes += [{"prefix": p["prefix"], "valid": p["valid"], "preferred": p["preferred"],
                                    "in": m.type} for p in ia["prefixes"] if p["valid"]]
            for where, st in _statuses(m.details):
                if st["code"] != 0:
                    ex.status.append({"in": m.type, "where": where, **st})

    # -- results -----------------------------------------------------------------
    def finish(self) -> None:
        for target in list(self._dad):
            self._close_dad(target, None if len(self._dad[target].macs) <= 1 else "simultaneous DAD")
        for target, p in self._ns.items():
            self.exchanges.append(NsExchange(target=target, time=round(p.first, 6), requests=p.count,
                                             solicited_by=sorted(p.sources),
                                             asked_by_us=self.own_mac is not None and self.own_mac in p.macs))
        self._ns.clear()
        for client, p in self._rs.items():
            self.exchanges.append(RsExchange(client=client, time=round(p.first, 6), requests=p.count, last=p.last))
        self._rs.clear()
        for ex in self.dhcp.values():
            ex.retransmissions = ex.requests - 1
        self.exchanges.sort(key=lambda e: e.time)

    def delegated_prefixes(self) -> list[str]:
        out = []
        for ex in self.dhcp.values():
            for p in ex.prefixes:
                if p["in"] == "reply" and ex.kind != "release" and p["prefix"] not in out:
                    out.append(p["prefix"])
        return out


def _statuses(d: dict):
    if d.get("status"):
        yield "message", d["status"]
    for kind in ("ia_na", "ia_pd"):
        for ia in d[kind]:
            if ia["status"]:
                yield f"{kind} {ia['iaid']}", ia["status"]
            for item in ia.get("addresses", []) + ia.get("prefixes", []):
                if item.get("status"):
                    yield f"{kind} {ia['iaid']}", item["status"]
