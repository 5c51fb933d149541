"""Merge sightings into devices, keyed by MAC (one device, many addresses)."""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass, field

from v6diag.discover.addresses import IID_UNKNOWN, eui64_address, iid_kind
from v6diag.discover.decode import TECHNIQUES
from v6diag.discover.names import SOURCES, Fact
from v6diag.discover.report import Host, Name, Service, Sighting
from v6diag.core.vendor import is_locally_administered, vendor_of

ECHO_REPLY = "echo-reply:"
TECHNIQUE_SET = frozenset(TECHNIQUES)


@dataclass
class _Device:
    mac: str
    addresses: dict[str, float] = field(default_factory=dict)  # address -> first seen
    techniques: set[str] = field(default_factory=set)
    is_router: bool = False
    first_active: float | None = None
    names: dict[tuple[str, str], None] = field(default_factory=dict)  # (name, source), in the order heard
    services: set[tuple[str, int, str]] = field(default_factory=set)
    ipv4: set[str] = field(default_factory=set)


@dataclass(frozen=True)
class Change:
    """What a sighting or fact added: a new device, or a new address, name,
    service or IPv4 address of a known one (`address` holds the new value)."""

    kind: str  # "host" | "address" | "name" | "service" | "ipv4"
    mac: str
    address: str | None


class NeighbourBook:
    def __init__(self, exclude_macs: frozenset[str] = frozenset()):
        self.exclude = {m.lower() for m in exclude_macs}
        self.multicast_echo_ids: set[int] = set()
        self.t0: float | None = None  # when probing started (first reply times count from it)
        self._devices: dict[str, _Device] = {}
        self._owners: dict[str, set[str]] = {}  # address -> MACs claiming it
        self._confirmed: set[str] = set()  # addresses that answered an NS
        self.named: set[str] = set()  # MACs that answered a name query
        self.service_types: dict[str, None] = {}  # DNS-SD types announced on the link, in order

    def note_multicast_echo(self, ident: int, ts: float) -> None:
        self.multicast_echo_ids.add(ident)
        if self.t0 is None:
            self.t0 = ts

    def add(self, s: Sighting) -> Change | None:
        if s.mac in self.exclude:
            return None
        technique, address = s.technique, s.address
        if technique.startswith(ECHO_REPLY):
            if int(technique[len(ECHO_REPLY):]) in self.multicast_echo_ids:
                technique = "echo"
            else:  # a reply to someone's unicast ping may have been routed here
                technique = "traffic"
                if address and not ipaddress.IPv6Address(address).is_link_local:
                    address = None
        dev = self._devices.get(s.mac)
        change = None
        if dev is None:
            dev = self._devices[s.mac] = _Device(s.mac)
            change = Change("host", s.mac, address)
        dev.techniques.add(technique)
        dev.is_router |= s.is_router
        if s.active and technique != "traffic" and (dev.first_active is None or s.ts < dev.first_active):
            dev.first_active = s.ts
        if address is not None:
            if technique == "ns":
                self._confirmed.add(address)
            self._owners.setdefault(address, set()).add(s.mac)
            if address not in dev.addresses:
                dev.addresses[address] = s.ts
                change = change or Change("address", s.mac, address)
        return change

    def add_fact(self, f: Fact) -> Change | None:
        """A name, service or IPv4 address a device gave (names.py)."""
        if f.mac in self.exclude:
            return None
        if f.kind == "service-type":
            self.service_types.setdefault(f.value, None)
            return None
        dev = self._devices.get(f.mac)
        change = None
        if dev is None:
            dev = self._devices[f.mac] = _Device(f.mac)
            change = Change("host", f.mac, None)
        if f.source in TECHNIQUE_SET:
            dev.techniques.add(f.source)
        if f.kind == "name":
            key = (f.value, f.source)
            if key not in dev.names:
                dev.names[key] = None
                if f.source in ("mdns", "llmnr", "nodeinfo"):
                    self.named.add(f.mac)
                change = change or Change("name", f.mac, f.value)
        elif f.kind == "service" and f.value not in dev.services:
            dev.services.add(f.value)
            change = change or Change("service", f.mac, f"{f.value[0]}:{f.value[1]}")
        elif f.kind == "ipv4" and f.value not in dev.ipv4:
            dev.ipv4.add(f.value)
            change = change or Change("ipv4", f.mac, f.value)
        return change

    def owner_of(self, address: str) -> str | None:
        """The MAC that uses `address` (the first one heard, when several claim it)."""
        macs = self._owners.get(address)
        return min(macs) if macs else None

    def unnamed_addresses(self) -> list[str]:
        """Addresses (IPv6 and IPv4) of devices that have not said their name yet,
        worth a reverse query (mDNS, LLMNR) or a Node Information query. All of
        them: avahi, for one, publishes its link-local address only when the
        interface has no other."""
        out = []
        for dev in self._devices.values():
            if dev.mac not in self.named:
                out += list(dev.addresses) + sorted(dev.ipv4)
        return out

    def __len__(self) -> int:
        return len(self._devices)

    def ns_candidates(self, prefixes: list[str]) -> list[tuple[str, bool]]:
        """Addresses worth a Neighbor Solicitation, as (address, heard): every
        address heard but not yet confirmed (heard=True), plus the EUI-64 address
        each known MAC would form in each on-link prefix (RFC 4862 5.3, 5.5.3)."""
        want: dict[str, bool] = {}
        for dev in self._devices.values():
            for addr in dev.addresses:
                want[addr] = True
            for p in ["fe80::", *prefixes]:
                want.setdefault(eui64_address(p, dev.mac), False)
        return [(a, heard) for a, heard in want.items() if a not in self._confirmed]

    def conflicts(self) -> dict[str, list[str]]:
        return {a: sorted(m) for a, m in self._owners.items() if len(m) > 1}

    def hosts(self) -> list[Host]:
        t0 = self.t0  # None: no probe was seen, so nothing is a "reply"
        hosts = [self._host(d, t0) for d in self._devices.values()]
        hosts.sort(key=_sort_key)
        return hosts

    @staticmethod
    def _host(d: _Device, t0: float | None) -> Host:
        addrs = sorted(d.addresses, key=lambda a: int(ipaddress.IPv6Address(a)))
        lls = sorted(
            (a for a in addrs if ipaddress.IPv6Address(a).is_link_local),
            key=lambda a: d.addresses[a],
        )
        link_local = lls[0] if lls else None
        kind_of = link_local or (addrs[0] if addrs else None)
        order = {t: i for i, t in enumerate(TECHNIQUES)}
        sources = {s: i for i, s in enumerate(SOURCES)}
        names = sorted(d.names, key=lambda k: sources.get(k[1], len(sources)))  # stable: heard order kept
        return Host(
            mac=d.mac,
            vendor=vendor_of(d.mac),
            mac_locally_administered=is_locally_administered(d.mac),
            names=[Name(n, s) for n, s in names],
            addresses=addrs,
            link_local=link_local,
            ipv4=sorted(d.ipv4, key=lambda a: int(ipaddress.IPv4Address(a))),
            iid_kind=iid_kind(kind_of, d.mac) if kind_of else IID_UNKNOWN,
            seen_by=sorted(d.techniques, key=lambda t: order.get(t, len(order))),
            services=[Service(*s[:2], s[2]) for s in sorted(d.services)],
            is_router=d.is_router,
            first_reply_s=None if d.first_active is None or t0 is None
            else round(max(0.0, d.first_active - t0), 4),
        )


def _sort_key(h: Host):
    primary = h.link_local or (h.addresses[0] if h.addresses else None)
    return (primary is None, int(ipaddress.IPv6Address(primary)) if primary else 0, h.mac)
