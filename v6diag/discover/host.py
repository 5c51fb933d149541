"""What the kernel already knows about the link (read over netlink): its
neighbour table, as passive sightings, read before any probe refreshes it."""

from __future__ import annotations

from v6diag.core import netlink
from v6diag.discover.report import Sighting


def neighbour_sightings(index: int, now: float) -> list[Sighting]:
    return [Sighting(now, n.mac, n.address, "neigh-table", n.router, active=False)
            for n in netlink.neighbours(index)]
