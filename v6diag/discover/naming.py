"""The name queries of one probe window and the --ipv4 ARP sweep: what to ask,
whom, and when (the builders are in queries.py; answers are decoded with every
other frame, names.py). Each address is asked about once, each service type
once (RFC 6762 7: no query repeated within a second)."""

from __future__ import annotations

import ipaddress
import os
import time

from v6diag.core.multicast import MulticastSender
from v6diag.discover import queries
from v6diag.discover.book import NeighbourBook
from v6diag.discover.names import LLMNR_PORT, MDNS_PORT

SWEEP_MAX_PREFIX = 22  # at most a /22 (1022 addresses) is swept
SWEEP_RATE = 2000  # ARP requests per second (arp-scan's default pace is ~500/s at 64-byte frames on 256 kbit/s)


class Namer:
    def __init__(self, iface, send_frame):
        self.iface, self.send_frame = iface, send_frame
        ipv4 = iface.ipv4[0].split("/")[0] if iface.ipv4 else None
        self.sender = MulticastSender(iface.index, ipv4)
        self.asked: set[str] = set()
        self.types_asked: set[str] = set()
        self._ident = int.from_bytes(os.urandom(2), "big")

    def start(self) -> None:
        """Service types on the link, over IPv6 and IPv4 (RFC 6763 9)."""
        q = queries.services_query()
        self.sender.send(q, queries.MDNS_V6, MDNS_PORT, queries.MDNS_HOPS)
        self.sender.send(q, queries.MDNS_V4, MDNS_PORT, queries.MDNS_HOPS)

    def tick(self, book: NeighbourBook) -> None:
        """Ask about what was heard since the last tick."""
        new = [a for a in book.unnamed_addresses() if a not in self.asked]
        self.asked.update(new)
        v6 = [a for a in new if ":" in a]
        v4 = [a for a in new if ":" not in a]
        for payload in queries.mdns_reverse_queries(v6):
            self.sender.send(payload, queries.MDNS_V6, MDNS_PORT, queries.MDNS_HOPS)
        for payload in queries.mdns_reverse_queries(v4):
            self.sender.send(payload, queries.MDNS_V4, MDNS_PORT, queries.MDNS_HOPS)
        for a in new:
            self._ident = (self._ident + 1) & 0xFFFF
            group = queries.LLMNR_V6 if ":" in a else queries.LLMNR_V4
            self.sender.send(queries.llmnr_reverse_query(a, self._ident), group, LLMNR_PORT, queries.LLMNR_HOPS)
        for a in v6:
            if not a.startswith("fe80:"):
                continue  # Node Information: one query per device, to its link-local address
            mac = book.owner_of(a)
            if mac:
                self.send_frame(queries.nodeinfo_name_query(self.iface.mac, mac, self.iface.link_local, a,
                                                            os.urandom(8)))
        types = [t for t in book.service_types if t not in self.types_asked]
        self.types_asked.update(types)
        for payload in queries.instances_query(types):
            self.sender.send(payload, queries.MDNS_V6, MDNS_PORT, queries.MDNS_HOPS)
            self.sender.send(payload, queries.MDNS_V4, MDNS_PORT, queries.MDNS_HOPS)

    def close(self) -> None:
        self.sender.close()


class ArpSweep:
    """One ARP request to every address of the interface's IPv4 subnets, paced;
    a subnet larger than a /22 is swept only in the /22 around our address."""

    def __init__(self, iface, send_frame=None):
        self.iface, self.send_frame = iface, send_frame  # set once the packet socket is open
        self.targets: list[tuple[str, str]] = []  # (our address, target)
        self.narrowed: list[str] = []  # subnets cut down to a /22 (said on stderr)
        for cidr in iface.ipv4:
            ours = ipaddress.IPv4Interface(cidr)
            net = ours.network
            if net.prefixlen < SWEEP_MAX_PREFIX:
                self.narrowed.append(str(net))
                net = ipaddress.IPv4Network(f"{ours.ip}/{SWEEP_MAX_PREFIX}", strict=False)
            self.targets += [(str(ours.ip), str(t)) for t in net.hosts() if t != ours.ip]
        self.sent = 0
        self.started: float | None = None

    @property
    def done(self) -> bool:
        return self.sent >= len(self.targets)

    def tick(self) -> None:
        now = time.monotonic()
        if self.started is None:
            self.started = now
        due = min(len(self.targets), int((now - self.started) * SWEEP_RATE) + 1)
        while self.sent < due:
            ours, target = self.targets[self.sent]
            self.send_frame(queries.arp_request(self.iface.mac, ours, target))
            self.sent += 1
