"""The metrics `v6diag serve` exports: names and labels are a stable interface
(README "serve"), so they live here once. Labels have bounded cardinality: causes,
reasons, verdicts, families, protocols, interfaces and watcher names; never an
address, a port or a MAC."""

from __future__ import annotations

import platform

import prometheus_client
from prometheus_client import CollectorRegistry, Counter, Gauge

from v6diag import __version__

# name (without the _total a counter gets in the exposition) -> (kind, help, labels)
SPEC = {
    "v6diag_conntrack_destroyed": ("counter", "Conntrack entries destroyed, by why the kernel destroyed them.",
                                   ("cause", "family", "proto")),
    "v6diag_drops": ("counter", "Packets the kernel dropped (skb:kfree_skb), by drop reason.",
                     ("reason", "family", "proto")),
    "v6diag_checksum_packets": ("counter", "VXLAN packets seen on an interface, by checksum verdict.",
                                ("interface", "verdict")),
    "v6diag_link_devices": ("gauge", "Devices currently seen on the link (passive sources and periodic probes).",
                            ("interface",)),
    "v6diag_events_lost": ("counter", "Events a watcher's source lost (buffer overruns), counted where known.",
                           ("watch",)),
    "v6diag_watch_up": ("gauge", "1 while a watcher runs on the named source, 0 while it is down.",
                        ("watch", "source")),
    "v6diag_build_info": ("gauge", "Always 1: the v6diag version and the running kernel.", ("version", "kernel")),
}
# what a scrape shows (counters end in _total), for the README, dashboards and tests
NAMES = tuple(n + "_total" if kind == "counter" else n for n, (kind, _, _) in SPEC.items())


# the *_created series say when a label set first appeared: noise in every scrape
# (prometheus_client 0.17+; Debian 12's 0.16 still shows them, harmlessly)
getattr(prometheus_client, "disable_created_metrics", lambda: None)()


class Metrics:
    """One registry per server (never the global one: tests run several)."""

    def __init__(self):
        self.registry = CollectorRegistry(auto_describe=True)
        made = {}
        for name, (kind, text, labels) in SPEC.items():
            cls = Counter if kind == "counter" else Gauge
            made[name] = cls(name, text, labels, registry=self.registry)
        self.conntrack = made["v6diag_conntrack_destroyed"]
        self.drops = made["v6diag_drops"]
        self.checksum = made["v6diag_checksum_packets"]
        self.devices = made["v6diag_link_devices"]
        self.lost = made["v6diag_events_lost"]
        self.up = made["v6diag_watch_up"]
        made["v6diag_build_info"].labels(__version__, platform.release()).set(1)
