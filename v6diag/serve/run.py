"""Start the endpoint and the watchers, wait for SIGTERM/SIGINT, stop them all:
every probe detached (each watcher closes its own source) within a second."""

from __future__ import annotations

import os
import platform
import threading
import time
from dataclasses import dataclass, field

from v6diag.core.errors import UsageError
from v6diag.serve.watchers import KINDS, NEEDS_IFACE

CLOSE_WAIT_S = 20.0
STOP_POLL_S = 0.2  # how soon SIGTERM/Ctrl-C is acted on
PROBES = {"conntrack": ("auto", "kprobe", "fentry", "netlink"), "drops": ("auto", "bpf", "tracefs", "counters")}


@dataclass
class Plan:
    watches: list[tuple[str, str | None]]  # (kind, interface)
    probes: dict[str, str] = field(default_factory=dict)
    netns: str | None = None
    discover_interval: float = 300.0

    @classmethod
    def of(cls, watch: list[str], probe: list[str], netns: str | None, discover_interval: float) -> Plan:
        watches: list[tuple[str, str | None]] = []
        for spec in watch:
            kind, _, iface = spec.partition(":")
            if kind not in KINDS:
                raise UsageError(f"unknown watch {spec!r}", hint="conntrack, drops, checksum:IF or discover:IF")
            if (kind in NEEDS_IFACE) != bool(iface):
                raise UsageError(f"--watch {kind}" + (":IF needs an interface" if kind in NEEDS_IFACE
                                                        else " takes no interface"),
                                 hint=f"e.g. --watch {kind}:eth0" if kind in NEEDS_IFACE else None)
            if (kind, iface or None) not in watches:
                watches.append((kind, iface or None))
        probes: dict[str, str] = {}
        for spec in probe:
            kind, _, source = spec.partition("=")
            if kind not in PROBES or source not in PROBES[kind]:
                raise UsageError(f"--probe {spec!r}: give WATCH=SOURCE",
                                 hint="; ".join(f"{k}={'|'.join(v)}" for k, v in PROBES.items()))
            probes[kind] = source
        return cls(watches, probes, netns, discover_interval)


def run(plan: Plan, listen: str, log, ready_file=None) -> None:
    from v6diag import __version__
    from v6diag.core.interrupt import StopRequest
    from v6diag.serve import watchers
    from v6diag.serve.http import Endpoint
    from v6diag.serve.metrics import Metrics

    if plan.netns:
        from v6diag.core import netns

        netns.inode(plan.netns)  # a clear usage error for a name that does not exist
    metrics = Metrics()
    stop = threading.Event()
    common = dict(netns=plan.netns)
    running = []
    for kind, iface in plan.watches:
        if kind == "conntrack":
            w = watchers.ConntrackWatcher(metrics, log, stop, probe=plan.probes.get(kind, "auto"), **common)
        elif kind == "drops":
            w = watchers.DropsWatcher(metrics, log, stop, probe=plan.probes.get(kind, "auto"), **common)
        elif kind == "checksum":
            w = watchers.ChecksumWatcher(iface, metrics, log, stop, **common)
        else:
            w = watchers.DiscoverWatcher(iface, metrics, log, stop, interval=plan.discover_interval, **common)
        running.append(w)

    def health() -> dict:
        return {"status": "ok", "watches": {w.watch: w.state for w in running}}

    endpoint = Endpoint(listen, metrics.registry, health)
    endpoint.start()
    log("serving", listen=endpoint.address, version=__version__, kernel=platform.release(), pid=os.getpid(),
        watches=",".join(w.watch for w in running))
    # SIGTERM and SIGINT are a flag (core/interrupt), never an exception thrown into
    # the main thread while watcher threads import and compile
    try:
        with StopRequest() as requested:
            for w in running:
                w.start()
            if ready_file:
                ready_file.write_text(endpoint.address + "\n")
            while not requested.requested:
                time.sleep(STOP_POLL_S)
    finally:
        stop.set()
        began = time.monotonic()
        # each watcher detaches its own probes; a watcher still detaching when the
        # interpreter finalizes crashes it (bcc's objects freed under it), so wait
        # for them: well under a second on real CPUs, longer under emulation
        deadline = began + CLOSE_WAIT_S
        for w in running:
            w.join(max(0.0, deadline - time.monotonic()))
        endpoint.close()
        late = [w.watch for w in running if w.is_alive()]
        log("exit", took_s=round(time.monotonic() - began, 3), **({"still_closing": ",".join(late)} if late else {}))
        if late:  # never hang: the kernel detaches what our descriptors held when we exit
            os._exit(0)
