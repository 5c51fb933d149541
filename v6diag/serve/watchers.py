"""The four watchers `serve` runs, each over its command's own sources and
classifiers: conntrack (BPF probe, else netlink), drops (BPF, tracefs, counters),
checksum:IF (packet socket, batch verifier) and discover:IF (a probe window every
--discover-interval)."""

from __future__ import annotations

import random
import time

from v6diag.core.errors import UnavailableError
from v6diag.serve.watch import Deltas, Notes, Session, Watcher

KINDS = ("conntrack", "drops", "checksum", "discover")
_ENDED = object()
NEEDS_IFACE = ("checksum", "discover")


class _EventSession(Session):
    """A source whose events(None) generator yields events and None ticks."""

    def __init__(self, source, source_name: str, on_event, on_tick):
        self.src, self.source = source, source_name
        self._events = source.events(None)
        self.on_event, self.on_tick = on_event, on_tick

    def step(self) -> None:
        deadline = time.monotonic() + 0.2
        while True:  # up to one tick (<= 0.2 s) or a burst of events
            ev = next(self._events, _ENDED)
            if ev is _ENDED:  # a source never ends on its own: it is gone
                raise UnavailableError(f"the {self.source} source stopped delivering events")
            if ev is None:
                break
            self.on_event(ev)
            if time.monotonic() > deadline:
                break
        self.on_tick(self.src)

    def close(self) -> None:
        self._events.close()
        self.src.close()


class ConntrackWatcher(Watcher):
    def __init__(self, *args, probe: str = "auto", **kw):
        super().__init__("conntrack", *args, **kw)
        self.probe = probe
        self._totals = Deltas()

    def open(self) -> Session:
        from v6diag.conntrack import bpf, host
        from v6diag.conntrack.classify import explain_in_mode

        inode = host.netns_inode(self.netns) if self.netns else None
        kfilter = bpf.KernelFilter(port=None, mark=None, netns=inode, proto=None, src=None, dst=None)
        # the netns is entered already (this thread): the opener must not enter it again
        source, mode, _ = host.open_source(self.probe, kfilter, None, Notes(self.log, self.watch))
        self._totals = Deltas()

        def on_event(ev):
            explain_in_mode(ev, mode)
            self.metrics.conntrack.labels(ev.get("cause") or "unknown", ev.get("family") or "unknown",
                                          ev.get("proto") or "unknown").inc()

        return _EventSession(source, "netlink" if mode == "netlink" else "bpf", on_event, self._tick)

    def _tick(self, source) -> None:
        lost = source.dropped() if hasattr(source, "dropped") else getattr(source, "lost", 0)
        self._count_lost(self._totals.rise("lost", lost))


class DropsWatcher(Watcher):
    def __init__(self, *args, probe: str = "auto", **kw):
        super().__init__("drops", *args, **kw)
        self.probe = probe
        self._totals = Deltas()

    def open(self) -> Session:
        from v6diag.drops import host

        # as `drops --netns`: bpf filters on the namespace's inode, tracefs cannot (it is
        # host-wide) and is passed over, the counters are this thread's namespace's
        wanted = host.Wanted([], netns=self.netns)
        source, _ = host.open_source(self.probe, wanted, Notes(self.log, self.watch))
        self._totals = Deltas()

        def on_event(ev):
            self.metrics.drops.labels(ev.get("reason") or "NOT_SPECIFIED", ev.get("family") or "unknown",
                                      ev.get("proto") or "unknown").inc()

        return _EventSession(source, source.name, on_event, self._tick)

    def _tick(self, source) -> None:
        self._count_lost(self._totals.rise("lost", source.dropped()))
        if source.name == "counters":  # totals only: the deltas since the watcher began
            from v6diag.drops.counters import REASON_OF, family_and_proto

            source.counts()
            for counter, n in source.by_counter.items():
                rose = self._totals.rise(counter, n)
                if rose:
                    self.metrics.drops.labels(REASON_OF[counter], *family_and_proto(counter)).inc(rose)


class ChecksumWatcher(Watcher):
    def __init__(self, iface: str, *args, **kw):
        super().__init__(f"checksum:{iface}", *args, **kw)
        self.iface = iface

    def open(self) -> Session:
        return _ChecksumSession(self.iface, self.metrics)


class _ChecksumSession(Session):
    source = "packet"

    def __init__(self, iface: str, metrics):
        from v6diag.checksum.host import capture_link
        from v6diag.checksum.tally import ChecksumTally
        from v6diag.core import privilege
        from v6diag.core.constants import ETH_P_ALL, VXLAN_PORTS
        from v6diag.core.packet_socket import PacketSocket

        privilege.require(["CAP_NET_RAW"], f"capturing on {iface}", "run serve as root or with CAP_NET_RAW")
        info = capture_link(iface)  # refused as `checksum -i` refuses it: down, no carrier, the VXLAN device...
        self.iface, self.metrics = iface, metrics
        # keep=0: no packet bytes kept; the flow table is bounded (checksum/flows.py)
        self.tally = ChecksumTally(tuple(sorted(VXLAN_PORTS)), keep=0)
        self.sock = PacketSocket(iface, info.index, protocol=ETH_P_ALL, auxdata=True, allmulti=False)
        self.sock.__enter__()
        self._totals = Deltas()

    def step(self) -> None:
        from v6diag.core.packet_socket import batches

        for batch, marks in batches(self.sock, time.monotonic() + 0.2):
            self.tally.add_batch(batch, marks)
        for verdict, n in self.tally.counts.items():
            rose = self._totals.rise(verdict, n)
            if rose:
                self.metrics.checksum.labels(self.iface, verdict).inc(rose)

    def close(self) -> None:
        self.sock.__exit__(None, None, None)


class DiscoverWatcher(Watcher):
    def __init__(self, iface: str, *args, interval: float = 300.0, **kw):
        super().__init__(f"discover:{iface}", *args, **kw)
        self.iface, self.interval = iface, interval

    def open(self) -> Session:
        return _DiscoverSession(self.iface, self.interval, self.metrics, self.stop)


class _DiscoverSession(Session):
    """A probe window (as `discover -i IF` runs it, without names) now and every
    `interval` seconds, and between windows the link's own traffic (ND, MLD,
    ARP...) heard passively into the same book: the gauge is the devices heard
    since the last window began."""

    source = "probe"
    WINDOW_S = 2.0
    MAX_DEVICES = 65536  # bounded: a flood of forged MACs stops growing the book here

    def __init__(self, iface: str, interval: float, metrics, stop):
        from v6diag.core import netlink, privilege
        from v6diag.core.constants import ETH_P_ALL
        from v6diag.core.packet_socket import PacketSocket

        privilege.require(["CAP_NET_RAW"], f"probing {iface}", "run serve as root or with CAP_NET_RAW")
        self.info = netlink.interface(iface)
        self.iface, self.interval, self.metrics, self.stop = iface, interval, metrics, stop
        self.next_at = 0.0
        self.analysis = None
        self.sock = None
        self._open_passive = lambda: PacketSocket(iface, self.info.index, protocol=ETH_P_ALL)

    def step(self) -> None:
        if time.monotonic() >= self.next_at:
            self._window()
            return
        if self.sock is None:
            self.sock = self._open_passive()
            self.sock.__enter__()
        for frame in self.sock.frames(time.monotonic() + 0.2):
            if frame is not None and len(self.analysis.book) < self.MAX_DEVICES:
                self.analysis.feed(frame)
        self.metrics.devices.labels(self.iface).set(len(self.analysis.book))

    def _window(self) -> None:
        from v6diag.discover import probe
        from v6diag.discover.analyse import DiscoveryAnalysis

        self._close_passive()  # the window reads its own socket
        analysis = DiscoveryAnalysis(exclude_macs=frozenset({self.info.mac}))
        probe.discover_live(self.info, analysis, self.WINDOW_S, random.randrange(1, 0xFFFF), names=False)
        self.analysis = analysis
        self.metrics.devices.labels(self.iface).set(len(analysis.book))
        self.next_at = time.monotonic() + self.interval

    def _close_passive(self) -> None:
        if self.sock is not None:
            self.sock.__exit__(None, None, None)
            self.sock = None

    def close(self) -> None:
        self._close_passive()
