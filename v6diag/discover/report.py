"""What `discover` finds: sightings (evidence that a MAC uses an address), and
the report of devices merged by MAC (README "discover" JSON)."""

from __future__ import annotations

from dataclasses import dataclass, field

from v6diag.core.report import Finding, meta
from v6diag.core.vendor import VendorData


@dataclass(frozen=True)
class Sighting:
    """Evidence that a device with `mac` uses `address` (or just exists).

    `technique` names how it was seen (see decode.TECHNIQUES)."""

    ts: float
    mac: str  # lowercase aa:bb:cc:dd:ee:ff
    address: str | None  # compressed IPv6 text, None when only the MAC is known
    technique: str
    is_router: bool = False
    active: bool = True  # an answer to a probe (counts for "first reply")


@dataclass(frozen=True)
class Name:
    name: str  # raspberrypi.local (mDNS), DESKTOP-7Q2 (LLMNR), as the device gave it
    source: str  # mdns | llmnr | nodeinfo | dhcpv6


@dataclass(frozen=True)
class Service:
    type: str  # DNS-SD service type, e.g. _ssh._tcp (RFC 6763 7)
    port: int
    name: str  # the instance name, e.g. "raspberrypi" or "Living Room Printer"


@dataclass
class Host:
    mac: str
    vendor: str | None
    mac_locally_administered: bool
    names: list[Name]  # mdns first, then llmnr, nodeinfo, dhcpv6; each in the order heard
    addresses: list[str]  # IPv6, sorted numerically
    link_local: str | None
    ipv4: list[str]  # sorted numerically: ARP, mDNS A records
    iid_kind: str
    seen_by: list[str]  # techniques, in decode.TECHNIQUES order
    services: list[Service]  # sorted by type, port
    is_router: bool
    first_reply_s: float | None  # seconds after the probe burst, None if only heard


@dataclass
class DiscoveryReport:
    interface: str | None
    source: str  # "live" or "pcap"
    duration_s: float = field(metadata=meta(round=3))
    packets: int
    malformed: int = field(metadata=meta(key="malformed_packets"))
    hosts: list[Host]
    findings: list[Finding]
    vendor_data: VendorData | None = None  # which MAC vendor data named the hosts


@dataclass
class WatchEvent:
    """One NDJSON line of `discover --watch --json` after the window."""

    event: str  # "host" | "address" | "name" | "service" | "ipv4"
    time: float = field(metadata=meta(round=3))
    address: str | None
    host: Host
