"""What crossed the underlay, counted: encapsulated packets each way and per
kind, inner echo pairing, ICMP errors, Packet Too Big, ARP. Bounded whatever the
capture's size. Fed decode.Underlay records, live or from a capture."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field

from v6diag.tunnel.decode import Underlay
from v6diag.tunnel.report import IcmpErrorCount, PtbCount, TunnelFlow, UnderlayReport

ENCAP_KINDS = ("6in4", "ip6ip6", "gre", "vxlan", "wireguard")
# Inner ICMPv6 that asks (echo request; NS, which an Ethernet tunnel like VXLAN
# sends before any echo) and that answers (echo reply; NA)
ASKS, ANSWERS = (128, 135), (129, 136)
MAX_ECHO = 100_000  # echo requests paired at most: memory stays bounded on long captures


@dataclass
class EncapTally:
    """Counts per direction (outer src, dst) and per kind; inner echo pairing."""

    flows: Counter = field(default_factory=Counter)  # (kind, src, dst) -> packets
    echo_requests: dict = field(default_factory=dict)  # (src, dst, id, seq) -> first ts
    echo_replies: set = field(default_factory=set)  # (src, dst, id, seq) of the *request*
    icmp_errors: Counter = field(default_factory=Counter)  # (from, error, quoted kind, quoted dst, mtu) -> n
    ptb: Counter = field(default_factory=Counter)  # inner ICMPv6 Packet Too Big: (from, mtu) -> n
    arp: Counter = field(default_factory=Counter)  # (op, target/sender) -> n
    wg_types: Counter = field(default_factory=Counter)
    echo_flows: Counter = field(default_factory=Counter)  # (outer src, outer dst, ICMPv6 type) -> n
    fragmented: Counter = field(default_factory=Counter)  # (outer src, outer dst) -> packets split by the underlay
    packets: int = 0

    def feed(self, u: Underlay, ts: float = 0.0) -> None:
        self.packets += 1
        if u.kind in ENCAP_KINDS:
            self.flows[(u.kind, u.src, u.dst)] += 1
            if u.wg_type:
                self.wg_types[u.wg_type] += 1
            if u.fragmented:
                self.fragmented[(u.src, u.dst)] += 1
            i = u.inner
            if i is not None and i.icmp_type in ASKS + ANSWERS:
                self.echo_flows[(u.src, u.dst, i.icmp_type)] += 1
            if i is not None and i.icmp_type == 128 and len(self.echo_requests) < MAX_ECHO:
                self.echo_requests.setdefault((i.src, i.dst, i.echo_id, i.echo_seq), ts)
            elif i is not None and i.icmp_type == 129:
                self.echo_replies.add((i.dst, i.src, i.echo_id, i.echo_seq))
            elif i is not None and i.icmp_type == 2:
                self.ptb[(i.src, i.mtu)] += 1
        elif u.kind == "icmp-error":
            self.icmp_errors[(u.src, u.error, u.quoted_kind, u.quoted_dst, u.mtu)] += 1
        elif u.kind == "arp":
            # requests counted by the address asked for, replies by who answered
            self.arp[(u.arp_op, u.dst if u.arp_op == 1 else u.src)] += 1

    def sent_to(self, remote: str) -> int:
        return sum(n for (_, _, dst), n in self.flows.items() if dst == remote)

    def came_from(self, remote: str) -> int:
        return sum(n for (_, src, _), n in self.flows.items() if src == remote)

    def echo(self, src: str | None, dst: str | None, types: tuple[int, ...]) -> int:
        """Encapsulated ICMPv6 of `types` between outer addresses (None = any)."""
        return sum(n for (s, d, t), n in self.echo_flows.items()
                   if t in types and src in (None, s) and dst in (None, d))

    def unanswered_echo(self) -> int:
        return sum(1 for k in self.echo_requests if k not in self.echo_replies)

    def report(self) -> UnderlayReport:
        return UnderlayReport(
            packets=self.packets,
            flows=[TunnelFlow(k, s, d, n) for (k, s, d), n in sorted(self.flows.items())],
            echo_requests=len(self.echo_requests),
            echo_answered=sum(1 for k in self.echo_requests if k in self.echo_replies),
            icmp_errors=[IcmpErrorCount(s, e, q, d, m, n)
                         for (s, e, q, d, m), n in sorted(self.icmp_errors.items(), key=str)],
            packet_too_big=[PtbCount(s, m, n) for (s, m), n in sorted(self.ptb.items(), key=str)],
            wireguard_messages=dict(self.wg_types),
        )


