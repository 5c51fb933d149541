"""MAC vendor lookup from the OUI database bundled with `manuf` (offline).

Locally administered MACs (IEEE 802 U/L bit set: randomised Wi-Fi/phone MACs,
VMs, containers) have no registered vendor: they are flagged, never guessed."""

from __future__ import annotations

from functools import lru_cache


def is_locally_administered(mac: str) -> bool:
    return bool(int(mac[:2], 16) & 0x02)


@lru_cache(maxsize=1)
def _parser():
    from manuf import manuf  # lazy: parsing the database takes ~0.2 s

    return manuf.MacParser(update=False)


@lru_cache(maxsize=4096)
def vendor_of(mac: str) -> str | None:
    if is_locally_administered(mac):
        return None
    try:
        v = _parser().get_all(mac)
    except (ValueError, OSError):
        return None
    return v.manuf_long or v.manuf or None
