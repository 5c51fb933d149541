"""A LAN capture for the discover and trace benches (and their batch tests):
~200 IPv6 devices and a router, ~90% ordinary TCP/UDP between them (some IPv4
and ARP too), ~10% of what discovery and tracing read: NS/NA, DAD, MLDv2
reports, RS/RA, echo to ff02::1 and its replies, DHCPv6 prefix delegation.

    python bench/lan_capture.py OUT.pcap [--frames 300000] [--hosts 200]

Every frame is built once by scapy as a template (with true checksums) and
written many times with new timestamps, so 300k frames take a few seconds.
`truth()` says which devices a reader must find.
"""

from __future__ import annotations

import argparse
import ipaddress
import random
import struct
import sys
from dataclasses import dataclass

# Real OUIs (Raspberry Pi, Apple, Ubiquiti, Intel, Samsung, TP-Link) so vendors resolve.
OUIS = ("b8:27:eb", "3c:22:fb", "24:5a:4c", "a4:bb:6d", "8c:f5:a3", "50:c7:bf")
ROUTER_MAC = "24:5a:4c:00:00:01"
ROUTER_LL = "fe80::1"
PREFIX = "2001:db8:40"
RNG_SEED = 20261201


@dataclass(frozen=True)
class Device:
    mac: str
    link_local: str
    global_: str
    ipv4: str


def devices(n: int) -> list[Device]:
    out = []
    for i in range(n):
        mac = f"{OUIS[i % len(OUIS)]}:{(i >> 16) & 0xFF:02x}:{(i >> 8) & 0xFF:02x}:{i & 0xFF:02x}"
        out.append(Device(mac, f"fe80::{i + 16:x}", f"{PREFIX}::{i + 16:x}", f"10.{40 + i // 250}.0.{i % 250 + 2}"))
    return out


def truth(n_hosts: int) -> dict:
    """What a reader of the capture must find: every device (and the router) by MAC,
    and each device's IPv4 address (from its ARP)."""
    devs = devices(n_hosts)
    return {"macs": sorted([d.mac for d in devs] + [ROUTER_MAC]), "ipv4": {d.mac: d.ipv4 for d in devs}}


def _templates(devs: list[Device], rng: random.Random) -> tuple[list[bytes], list[bytes]]:
    """(ordinary, interesting) frame templates."""
    from scapy.layers.dhcp6 import (
        DHCP6_Advertise, DHCP6_Reply, DHCP6_Request, DHCP6_Solicit, DHCP6OptClientId, DHCP6OptIA_PD,
        DHCP6OptIAPrefix, DHCP6OptServerId, DUID_LL,
    )
    from scapy.layers.inet import IP, TCP, UDP
    from scapy.layers.inet6 import (
        ICMPv6EchoReply, ICMPv6EchoRequest, ICMPv6MLReport2, ICMPv6MLDMultAddrRec, ICMPv6ND_NA, ICMPv6ND_NS,
        ICMPv6ND_RA, ICMPv6ND_RS, ICMPv6NDOptPrefixInfo, ICMPv6NDOptSrcLLAddr, IPv6, IPv6ExtHdrHopByHop,
        RouterAlert,
    )
    from scapy.layers.l2 import ARP, Ether

    def raw(p) -> bytes:
        return bytes(p)

    ordinary, interesting = [], []
    for d in devs:
        peer = rng.choice(devs)
        ordinary.append(raw(Ether(src=d.mac, dst=peer.mac) / IPv6(src=d.global_, dst=peer.global_)
                            / TCP(sport=rng.randrange(32768, 61000), dport=443, flags="A") / (b"t" * rng.choice((0, 100, 1200)))))
        ordinary.append(raw(Ether(src=d.mac, dst=ROUTER_MAC) / IPv6(src=d.global_, dst="2001:db8:ffff::53")
                            / UDP(sport=rng.randrange(32768, 61000), dport=53) / (b"q" * 40)))
        ordinary.append(raw(Ether(src=d.mac, dst=peer.mac) / IPv6(src=d.link_local, dst=peer.link_local)
                            / UDP(sport=5353, dport=5353) / (b"m" * 60)))
        ordinary.append(raw(Ether(src=d.mac, dst=ROUTER_MAC) / IP(src=d.ipv4, dst="10.40.0.1")
                            / TCP(sport=40000, dport=80, flags="A")))
        ordinary.append(raw(Ether(src=d.mac, dst="ff:ff:ff:ff:ff:ff")
                            / ARP(hwsrc=d.mac, psrc=d.ipv4, pdst="10.40.0.1")))
        low24 = int(ipaddress.IPv6Address(d.global_)) & 0xFFFFFF
        sn = str(ipaddress.IPv6Address(int(ipaddress.IPv6Address("ff02::1:ff00:0")) | low24))
        sn_mac = "33:33:ff:" + ":".join(f"{(low24 >> s) & 0xFF:02x}" for s in (16, 8, 0))
        interesting += [
            raw(Ether(src=d.mac, dst=sn_mac) / IPv6(src="::", dst=sn, hlim=255) / ICMPv6ND_NS(tgt=d.global_)),
            raw(Ether(src=d.mac, dst=ROUTER_MAC) / IPv6(src=d.link_local, dst=ROUTER_LL, hlim=255)
                / ICMPv6ND_NA(tgt=d.global_, S=1, R=0)),
            raw(Ether(src=d.mac, dst=sn_mac) / IPv6(src=d.link_local, dst=sn, hlim=255)
                / ICMPv6ND_NS(tgt=peer.global_) / ICMPv6NDOptSrcLLAddr(lladdr=d.mac)),
            raw(Ether(src=d.mac, dst="33:33:00:00:00:16") / IPv6(src=d.link_local, dst="ff02::16", hlim=1)
                / IPv6ExtHdrHopByHop(options=[RouterAlert()])
                / ICMPv6MLReport2(records=[ICMPv6MLDMultAddrRec(dst=sn)])),
            raw(Ether(src=d.mac, dst="33:33:00:00:00:02") / IPv6(src=d.link_local, dst="ff02::2", hlim=255)
                / ICMPv6ND_RS() / ICMPv6NDOptSrcLLAddr(lladdr=d.mac)),
            raw(Ether(src=d.mac, dst=ROUTER_MAC) / IPv6(src=d.link_local, dst=ROUTER_LL)
                / ICMPv6EchoReply(id=0x77, seq=1)),
        ]
    interesting += [
        raw(Ether(src=ROUTER_MAC, dst="33:33:00:00:00:01") / IPv6(src=ROUTER_LL, dst="ff02::1", hlim=255)
            / ICMPv6ND_RA(routerlifetime=1800, M=0, O=1) / ICMPv6NDOptSrcLLAddr(lladdr=ROUTER_MAC)
            / ICMPv6NDOptPrefixInfo(prefix=f"{PREFIX}::", prefixlen=64)),
        raw(Ether(src=ROUTER_MAC, dst="33:33:00:00:00:01") / IPv6(src=ROUTER_LL, dst="ff02::1")
            / ICMPv6EchoRequest(id=0x77, seq=1)),
    ]
    # one delegating client: Solicit, Advertise, Request, Reply (RFC 8415 18)
    client = devs[0]
    duid = DHCP6OptClientId(duid=DUID_LL(lladdr=client.mac))
    server = DHCP6OptServerId(duid=DUID_LL(lladdr=ROUTER_MAC))
    pd = DHCP6OptIA_PD(iaid=1, T1=1800, T2=2880,
                       iapdopt=[DHCP6OptIAPrefix(prefix="2001:db8:4100::", plen=56, preflft=3600, validlft=7200)])

    def up(m):
        return raw(Ether(src=client.mac, dst="33:33:00:01:00:02") / IPv6(src=client.link_local, dst="ff02::1:2")
                   / UDP(sport=546, dport=547) / m)

    def down(m):
        return raw(Ether(src=ROUTER_MAC, dst=client.mac) / IPv6(src=ROUTER_LL, dst=client.link_local)
                   / UDP(sport=547, dport=546) / m)

    dhcp = [up(DHCP6_Solicit(trid=0x1234) / duid / DHCP6OptIA_PD(iaid=1)),
            down(DHCP6_Advertise(trid=0x1234) / duid / server / pd),
            up(DHCP6_Request(trid=0x5678) / duid / server / DHCP6OptIA_PD(iaid=1)),
            down(DHCP6_Reply(trid=0x5678) / duid / server / pd)]
    return ordinary, interesting + [dhcp]  # the exchange stays whole and in order


def generate(path: str, frames: int = 300_000, hosts: int = 200, interesting_share: float = 0.10) -> int:
    rng = random.Random(RNG_SEED)
    devs = devices(hosts)
    ordinary, interesting = _templates(devs, rng)
    rec = struct.Struct("<IIII")
    n = 0
    ts_us = 0

    def put(f, d: bytes) -> None:
        nonlocal n, ts_us
        ts_us += rng.randrange(20, 400)
        f.write(rec.pack(1764547200 + ts_us // 1_000_000, ts_us % 1_000_000, len(d), len(d)))
        f.write(d)
        n += 1

    with open(path, "wb", buffering=1 << 22) as f:
        f.write(struct.pack("<IHHiIII", 0xA1B2C3D4, 2, 4, 0, 0, 262144, 1))  # pcap, Ethernet
        # every interesting template once near the start, so every device is findable
        for t in interesting:
            for d in (t if isinstance(t, list) else [t]):
                put(f, d)
        while n < frames:
            if rng.random() < interesting_share:
                t = rng.choice(interesting)
                for d in (t if isinstance(t, list) else [t]):
                    put(f, d)
            else:
                put(f, rng.choice(ordinary))
    return n


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("out")
    ap.add_argument("--frames", type=int, default=300_000)
    ap.add_argument("--hosts", type=int, default=200)
    a = ap.parse_args()
    n = generate(a.out, a.frames, a.hosts)
    print(f"{a.out}: {n} frames, {a.hosts} hosts + router", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
