"""Discovery analysis shared by live probing and capture reading:
frames -> sightings -> NeighbourBook -> DiscoveryReport with findings."""

from __future__ import annotations

from v6diag.core.frames import Batch, Frame
from v6diag.core import vendor
from v6diag.core.report import Finding
from v6diag.discover.book import Change, NeighbourBook
from v6diag.discover.decode import MalformedPacket, decode_frame
from v6diag.discover.names import LLMNR_PORT, MDNS_PORT
from v6diag.discover.report import DiscoveryReport, Sighting

MAX_EXAMPLES = 3
NAMING_PORTS = (MDNS_PORT, LLMNR_PORT)  # responses from these name their sender (names.py)


def _frame(batch: Batch, i: int) -> Frame:
    off = batch.offsets[i]
    out = batch.outgoing[i] if batch.outgoing is not None else False
    return Frame(batch.ts[i], batch.linktypes[i], batch.buf[off : off + batch.lengths[i]], out,
                 batch.wire_lens[i])


class DiscoveryAnalysis:
    def __init__(self, exclude_macs: frozenset[str] = frozenset()):
        self.book = NeighbourBook(exclude_macs)
        self.packets = 0
        self.malformed = 0
        self.malformed_examples: list[str] = []
        self.invalid = 0
        self.invalid_examples: list[str] = []
        self.interrupted = False  # Ctrl-C ended the probe window early

    def feed_batch(self, batch: Batch) -> None:
        """The same as feed() on every frame of the batch, with per-frame Python
        only for frames that can say more than "this MAC sends IPv6": on a busy
        link most frames are ordinary TCP/UDP between devices already seen, and
        the first one of each (MAC, link-local source) in the batch says it all
        (a later identical "traffic" sighting changes nothing in the book)."""
        import numpy as np

        from v6diag.core import select
        from v6diag.core.constants import DHCPV6_CLIENT_PORT, DHCPV6_SERVER_PORT, ETH_ARP, PROTO_ICMPV6

        cols = select.columns(batch)
        sport, dport = cols.ports
        naming = np.isin(sport, NAMING_PORTS) | ((sport == DHCPV6_CLIENT_PORT) & (dport == DHCPV6_SERVER_PORT))
        plain = (cols.sound & cols.ethernet & ~cols.mac_group & (cols.nh != PROTO_ICMPV6)
                 & ~select.has_extension_headers(cols) & ~naming)
        if batch.outgoing is not None:
            plain &= ~np.asarray(batch.outgoing, bool)  # our own traffic is no sighting (decode_frame)
        # ND, MLD, echo, names, malformed, non-Ethernet links: the full decoder; of
        # IPv4, only ARP and mDNS/LLMNR answers say anything
        decode = ((cols.ipv6 & ~plain) | (cols.etype == ETH_ARP)
                  | np.isin(cols.ipv4_udp_sport, NAMING_PORTS))
        traffic = np.flatnonzero(plain)
        if len(traffic):
            mac = select.rows(cols, cols.off[traffic] + 6, 6)
            src = select.rows(cols, cols.l3[traffic] + 8, 16) * cols.src_link_local[traffic, None]
            traffic = traffic[select.first_of_each(np.hstack([mac, src]))]
        base = self.packets
        for i in np.union1d(np.flatnonzero(decode), traffic).tolist():
            if decode[i]:
                self.packets = base + i
                self.feed(_frame(batch, i))
            else:
                self._traffic(batch, cols, i)
        self.packets = base + len(batch)

    def _traffic(self, batch: Batch, cols, i: int) -> None:
        from v6diag.core.inet import ipv6_text
        from v6diag.core.link import mac_text

        mac = mac_text(batch.buf[batch.offsets[i] + 6 : batch.offsets[i] + 12])
        ip = int(cols.l3[i])
        address = ipv6_text(batch.buf[ip + 8 : ip + 24]) if cols.src_link_local[i] else None
        self.add_sightings([Sighting(batch.ts[i], mac, address, "traffic", False, False)])

    def feed(self, frame: Frame) -> list[Change]:
        self.packets += 1
        try:
            decoded = decode_frame(frame)
        except MalformedPacket as e:
            self.malformed += 1
            if len(self.malformed_examples) < MAX_EXAMPLES:
                self.malformed_examples.append(f"packet {self.packets - 1}: {e}")
            return []
        if decoded.invalid:
            self.invalid += 1
            if len(self.invalid_examples) < MAX_EXAMPLES:
                self.invalid_examples.append(decoded.invalid)
        if decoded.multicast_echo_id is not None:
            self.book.note_multicast_echo(decoded.multicast_echo_id, frame.ts)
        changes = self.add_sightings(decoded.sightings)
        for f in decoded.facts:
            c = self.book.add_fact(f)
            if c is not None:
                changes.append(c)
        return changes

    def add_sightings(self, sightings: list[Sighting]) -> list[Change]:
        changes = [self.book.add(s) for s in sightings]
        return [c for c in changes if c is not None]

    def report(self, interface: str | None, duration_s: float, source: str,
               capture_problem: str | None = None) -> DiscoveryReport:
        hosts = self.book.hosts()
        findings: list[Finding] = []
        if not hosts:
            findings.append(Finding.error(
                "no-hosts", "no IPv6 device was seen on the link",
                evidence=f"{self.packets} packets examined",
                fix="check the cable/Wi-Fi association and VLAN; make sure the other "
                    "devices have IPv6 enabled; try a longer --timeout",
            ))
        silent = [h for h in hosts if "echo" not in h.seen_by and h.addresses]  # IPv4-only devices: not ping6's
        if hosts and silent and source == "live":
            findings.append(Finding.info(
                "echo-silent-hosts", f"{len(silent)} of {len(hosts)} devices did not answer ping ff02::1; "
                "`ping -6 ff02::1` alone would miss them",
                evidence=", ".join(h.link_local or h.mac for h in silent[:8])
                + (" ..." if len(silent) > 8 else ""),
            ))
        for address, macs in sorted(self.book.conflicts().items()):
            findings.append(Finding.error(
                "address-conflict", f"{address} is used by {len(macs)} devices",
                evidence=", ".join(macs),
                fix="give one of them another address; if a router answers for it on "
                    "purpose (proxy NDP), this is expected",
            ))
        if self.malformed:
            findings.append(Finding.warning(
                "malformed-packets", f"{self.malformed} packets could not be decoded and were ignored",
                evidence="; ".join(self.malformed_examples),
            ))
        if self.invalid:
            findings.append(Finding.warning(
                "invalid-nd", f"{self.invalid} packets were not accepted as evidence",
                evidence="; ".join(self.invalid_examples),
            ))
        if capture_problem:
            findings.append(Finding.warning("capture-truncated", capture_problem))
        if self.interrupted:
            findings.append(Finding.warning(
                "window-interrupted", f"interrupted after {duration_s:.2f} s: devices that had not answered yet "
                "are missing", fix="let the window run (--timeout S sets its length)"))
        return DiscoveryReport(
            interface=interface, source=source, duration_s=duration_s, packets=self.packets,
            malformed=self.malformed, hosts=hosts, findings=findings, vendor_data=vendor.used(),
        )
