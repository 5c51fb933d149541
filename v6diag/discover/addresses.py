"""IPv6 interface-identifier facts (RFC 4291 2.5.1, RFC 7136, RFC 8064)."""

from __future__ import annotations

import ipaddress
from functools import lru_cache

# Interface-ID kinds as reported in JSON `iid_kind`.
IID_EUI64 = "eui64"  # modified EUI-64 built from this device's MAC (RFC 4291 App. A)
IID_EUI64_OTHER = "eui64-other-mac"  # EUI-64 form, but of another MAC
IID_LOW_BYTE = "low-byte"  # manually numbered, e.g. ::1 or ::9c5
IID_RANDOM = "random"  # privacy (RFC 8981) or stable-privacy (RFC 7217): opaque
IID_UNKNOWN = "unknown"

LOW_BYTE_MAX = 0xFFFF


@lru_cache(maxsize=4096)
def eui64_iid(mac: str) -> int:
    """The modified EUI-64 interface ID of a MAC (RFC 4291 App. A: ff:fe in the
    middle, the U/L bit flipped), by netaddr."""
    import netaddr  # lazy: ~50 ms, needed only once a device is heard

    return int(netaddr.EUI(mac).modified_eui64())


def eui64_address(prefix: str, mac: str) -> str:
    """prefix is a /64 network text, e.g. 'fe80::' or '2001:db8:1::'."""
    net = int(ipaddress.IPv6Address(prefix)) & ~((1 << 64) - 1)
    return ipaddress.IPv6Address(net | eui64_iid(mac)).compressed


def iid_kind(address: str | None, mac: str) -> str:
    if address is None:
        return IID_UNKNOWN
    iid = int(ipaddress.IPv6Address(address)) & ((1 << 64) - 1)
    if (iid >> 24) & 0xFFFF == 0xFFFE:
        return IID_EUI64 if iid == eui64_iid(mac) else IID_EUI64_OTHER
    if iid <= LOW_BYTE_MAX:
        return IID_LOW_BYTE
    return IID_RANDOM
