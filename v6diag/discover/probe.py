"""Active discovery: the probe frames (pure builders) and the send/collect loop.

Everything sent is a query that changes no other host's state: echo requests,
unknown-option probes, an MLDv2 general query and Neighbor Solicitations.
No RAs, no unsolicited NAs, no MLDv1 unless asked (an MLDv1 query switches Linux
hosts into MLDv1 compatibility mode for ~260 s, RFC 3810 8.2.1)."""

from __future__ import annotations

import ipaddress
import struct
import threading
import time
from collections.abc import Callable

from v6diag.core.constants import ETH_P_ALL, ND_HOP_LIMIT
from v6diag.core.interrupt import StopRequest
from v6diag.core.ndp import icmpv6_frame, neighbor_solicitation
from v6diag.core.netlink import Interface
from v6diag.core.packet_socket import PacketSocket
from v6diag.core.vendor import preload_vendor_table, vendor_of
from v6diag.discover.analyse import DiscoveryAnalysis
from v6diag.discover.book import Change
from v6diag.discover.host import neighbour_sightings
from v6diag.discover.names import dnspython
from v6diag.discover.naming import ArpSweep, Namer

ALL_NODES = "ff02::1"
ALL_NODES_MAC = "33:33:00:00:00:01"
PAYLOAD = b"v6diag discover"
# RFC 8200 4.2: option types 10xxxxxx make the receiver discard the packet and send
# a Parameter Problem (code 2) even when the destination is multicast.
UNKNOWN_OPTION = 0x80
MLD_MAX_RESPONSE_MS = 250  # hosts answer a general query within this (RFC 3810 5.1.3)
NS_INTERVAL = 0.12
NS_TRIES = 2  # for addresses heard; EUI-64 guesses get one try
RESEND_FRACTION = 0.3
# The window ends at --timeout, or earlier once every MLD report is due and
# nothing new has been heard for a while (the quiet period grows with --timeout).
QUIET_MIN = 0.25
QUIET_FRACTION = 0.3


def _window_over(elapsed: float, since_news: float, timeout: float, quiet: float) -> bool:
    if elapsed >= timeout:
        return True
    mld_due = MLD_MAX_RESPONSE_MS / 1000 + NS_INTERVAL  # last report + its NS round
    return elapsed >= mld_due and since_news >= quiet  # repeat the echo/option probes once, for lossy links (Wi-Fi)


NH_HOP_BY_HOP, NH_DEST_OPTS, NH_NONE, NH_ICMPV6 = 0, 60, 59, 58
ECHO_REQUEST, MLD_QUERY = 128, 130
# RFC 8200 4.2: an 8-octet Destination Options header holding one option of type
# 0x80 (unknown, "discard and send Parameter Problem even to multicast"), 4 zero octets
UNKNOWN_OPTION_HEADER = struct.pack("!BB", UNKNOWN_OPTION, 4) + bytes(4)
# RFC 2711 Router Alert (value 0: MLD) and a 0-length PadN, in an 8-octet Hop-by-Hop header
ROUTER_ALERT = bytes([5, 2, 0, 0, 1, 0])


def _echo(ident: int, seq: int) -> bytes:
    return struct.pack("!BBHHH", ECHO_REQUEST, 0, 0, ident, seq) + PAYLOAD


def echo_probe(src_mac: str, src_ip: str, ident: int, seq: int) -> bytes:
    return icmpv6_frame(src_mac, ALL_NODES_MAC, src_ip, ALL_NODES, ND_HOP_LIMIT, _echo(ident, seq))


def dest_opt_probe_nh59(src_mac: str, src_ip: str) -> bytes:
    """No upper layer (Next Header 59): passes firewalls that drop only echo."""
    s, d = (ipaddress.IPv6Address(a).packed for a in (src_ip, ALL_NODES))
    ext = bytes([NH_NONE, 0]) + UNKNOWN_OPTION_HEADER
    return (bytes.fromhex(ALL_NODES_MAC.replace(":", "")) + bytes.fromhex(src_mac.replace(":", "")) + b"\x86\xdd"
            + struct.pack("!IHBB16s16s", 6 << 28, len(ext), NH_DEST_OPTS, ND_HOP_LIMIT, s, d) + ext)


def dest_opt_probe_icmp(src_mac: str, src_ip: str, ident: int, seq: int) -> bytes:
    """The option in front of an echo request: answered even with echo_ignore_all=1,
    because options are processed before the upper layer."""
    return icmpv6_frame(src_mac, ALL_NODES_MAC, src_ip, ALL_NODES, ND_HOP_LIMIT, _echo(ident, seq),
                        ext=bytes([NH_ICMPV6, 0]) + UNKNOWN_OPTION_HEADER, first_nh=NH_DEST_OPTS)


def mld_query(src_mac: str, link_local: str, version: int = 2) -> bytes:
    """General query: link-local source, hop limit 1, Router Alert (RFC 3810 5, 6.2);
    version 2 adds QRV 2 and QQIC 125 s (RFC 3810 5.1.8, 5.1.9)."""
    query = struct.pack("!BBHHH16s", MLD_QUERY, 0, 0, MLD_MAX_RESPONSE_MS, 0, bytes(16))
    if version == 2:
        query += struct.pack("!BBH", 2, 125, 0)
    return icmpv6_frame(src_mac, ALL_NODES_MAC, link_local, ALL_NODES, 1, query,
                        ext=bytes([NH_ICMPV6, 0]) + ROUTER_ALERT, first_nh=NH_HOP_BY_HOP)


def burst(iface: Interface, ident: int, seq: int, with_mld: bool, mldv1: bool) -> list[bytes]:
    frames = []
    # From every source: a host answers from its address in the same scope/prefix
    # (RFC 6724 source selection), which reveals its global and ULA addresses too.
    for src in [iface.link_local, *iface.addresses]:
        frames.append(echo_probe(iface.mac, src, ident, seq))
        frames.append(dest_opt_probe_nh59(iface.mac, src))
        frames.append(dest_opt_probe_icmp(iface.mac, src, ident, seq))
    if with_mld:
        frames.append(mld_query(iface.mac, iface.link_local, 2))
        if mldv1:
            frames.append(mld_query(iface.mac, iface.link_local, 1))
    return frames


def discover_live(
    iface: Interface,
    analysis: DiscoveryAnalysis,
    timeout: float,
    ident: int,
    watch: bool = False,
    mldv1: bool = False,
    on_frame: Callable | None = None,
    on_changes: Callable[[list[Change]], None] | None = None,
    on_window_end: Callable[[float], None] | None = None,
    names: bool = True,
    sweep: ArpSweep | None = None,
) -> float:
    """Probe and collect for `timeout` seconds (forever with `watch`, until Ctrl-C).
    Returns the wall time of the probe window. Ctrl-C (or SIGTERM) during the
    window ends it early (analysis.interrupted): what was heard so far is the
    answer; with `watch` it raises KeyboardInterrupt once the socket is closed.
    The signal is a flag the window reads each tick (core/interrupt), so it never
    lands in the middle of a send, an import or the bookkeeping. Every protocol is
    heard (ETH_P_ALL): ARP and IPv4 mDNS answers name devices too."""
    with StopRequest() as stop, PacketSocket(iface.name, iface.index, protocol=ETH_P_ALL, on_send=on_frame) as sock:
        namer = Namer(iface, sock.send) if names else None
        if sweep is not None:
            sweep.send_frame = sock.send
        w = _Window(sock, iface, analysis, timeout, ident, watch, on_frame, on_changes or (lambda changes: None),
                    namer, sweep, stop)
        try:
            # What the kernel already knew, read before our probes refresh it.
            w.notify(analysis.add_sightings(neighbour_sightings(iface.index, time.time())))
            frames = burst(iface, ident, 1, with_mld=True, mldv1=mldv1)  # built before the clock starts
            # reply times count from the first probe on the wire (as from a capture of it)
            analysis.book.note_multicast_echo(ident, time.time())
            for frame in frames:
                sock.send(frame)
            # Import here, in this thread, what the vendor table and the name decoder need;
            # then parse the table in another while we wait for replies (the answers wait
            # in the socket meanwhile, stamped by the kernel). One importing thread at a
            # time: importlib's module locks are Python code (CPython gh-91351 family).
            _preload(names)
            threading.Thread(target=vendor_of, args=("00:00:00:00:00:00",), daemon=True).start()
            if namer:
                namer.start()
            elapsed = w.run(on_window_end)
        finally:
            if namer:
                namer.close()
    if stop.requested and watch:
        raise KeyboardInterrupt  # Ctrl-C is how --watch ends: the caller says so
    return elapsed


def _preload(names: bool) -> None:
    preload_vendor_table()
    if names:
        dnspython()


class _Window:
    """The probe window: read answers, send NS follow-ups and the second burst,
    until the window ends (or for ever with --watch)."""

    def __init__(self, sock, iface, analysis, timeout, ident, watch, on_frame, notify, namer, sweep,
                 stop: StopRequest):
        self.sock, self.iface, self.analysis = sock, iface, analysis
        self.stop = stop
        self.timeout, self.ident, self.watch = timeout, ident, watch
        self.on_frame, self.notify = on_frame, notify
        self.namer, self.sweep = namer, sweep
        self.start = self.last_news = time.monotonic()
        self.open = True

    def take(self, frame) -> None:
        if self.on_frame:
            self.on_frame(frame)
        changes = self.analysis.feed(frame)
        if changes:
            self.last_news = time.monotonic()
        self.notify(changes)

    def run(self, on_window_end) -> float:
        start, timeout, book = self.start, self.timeout, self.analysis.book
        tries: dict[str, int] = {}
        next_ns, resend_at = start, start + timeout * RESEND_FRACTION
        deadline = None if self.watch else start + timeout
        quiet = max(QUIET_MIN, timeout * QUIET_FRACTION)
        send = self.sock.send
        for frame in self.sock.frames(deadline):
            if self.stop.requested:
                if self.open and not self.watch:
                    self.analysis.interrupted = True  # Ctrl-C in the window: report what was heard
                break
            if frame is not None:
                self.take(frame)
            if self.sweep is not None and not self.sweep.done:
                self.sweep.tick()
                if self.sweep.done:
                    self.last_news = time.monotonic()  # the quiet period counts from the last request
            now = time.monotonic()
            sweeping = self.sweep is not None and not self.sweep.done
            if self.open and not sweeping and _window_over(now - start, now - self.last_news, timeout, quiet):
                self.open = False
                elapsed = now - start
                for frame in self.sock.queued():  # answers that arrived in time but were not read yet
                    self.take(frame)
                if on_window_end:
                    on_window_end(elapsed)
                if not self.watch:
                    return elapsed
            if resend_at and now >= resend_at:
                resend_at = 0
                for f in burst(self.iface, self.ident, 2, with_mld=False, mldv1=False):
                    send(f)
            if now >= next_ns:
                next_ns = now + NS_INTERVAL
                if self.namer is not None:  # --watch: devices that turn up later are asked too
                    self.namer.tick(book)
                for target, heard in book.ns_candidates(self.iface.prefixes):
                    if tries.get(target, 0) < (NS_TRIES if heard else 1):
                        tries[target] = tries.get(target, 0) + 1
                        send(neighbor_solicitation(self.iface.mac, self.iface.link_local, target))
        elapsed = time.monotonic() - start
        for frame in self.sock.queued():
            self.take(frame)
        return elapsed
