"""Generate VXLAN captures with known checksum faults, each packet labelled with
the verdict it must get. Used by tests/unit and bench/checksum.

Packets are built with scapy (which computes correct checksums), then the one
field a case is about is patched in the raw bytes, so each case carries exactly
the fault it names and nothing else."""

from __future__ import annotations

import itertools
import random
import struct
from dataclasses import dataclass, field

from scapy.layers.inet import ICMP, IP, TCP, UDP
from scapy.layers.inet6 import ICMPv6EchoRequest, IPv6, IPv6ExtHdrFragment
from scapy.layers.l2 import Dot1AD, Dot1Q, Ether
from scapy.layers.vxlan import VXLAN

from v6diag.core.inet import fold, ones_sum


@dataclass
class Case:
    data: bytes
    flags: set[str] = field(default_factory=set)
    notes: set[str] = field(default_factory=set)
    vxlan: bool = True
    snaplen: int | None = None  # capture only this many bytes
    label: str = ""


def _inner(version: int, l4: str, payload: bytes):
    if version == 4:
        ip = IP(src="10.244.1.5", dst="10.244.2.9", ttl=63)
    else:
        ip = IPv6(src="fd00:244:1::5", dst="fd00:244:2::9", hlim=63)
    if l4 == "tcp":
        up = TCP(sport=41922, dport=443, flags="PA", seq=1000, ack=2000)
    elif l4 == "udp":
        up = UDP(sport=41922, dport=53)
    elif l4 == "icmp":
        up = ICMP(id=7, seq=1) if version == 4 else ICMPv6EchoRequest(id=7, seq=1)
    else:
        raise ValueError(l4)
    return Ether(src="0a:58:0a:f4:01:05", dst="0a:58:0a:f4:02:09") / ip / up / payload


def _outer(version: int, port: int, vni: int, inner, vlan: int = 0):
    eth = Ether(src="52:54:00:12:34:56", dst="52:54:00:65:43:21")
    if vlan == 1:
        eth = eth / Dot1Q(vlan=100)
    elif vlan == 2:
        eth = Ether(src=eth.src, dst=eth.dst) / Dot1AD(vlan=200) / Dot1Q(vlan=100)
    ip = IP(src="192.168.10.11", dst="192.168.10.12", id=7598) if version == 4 \
        else IPv6(src="2001:db8:10::11", dst="2001:db8:10::12")
    return eth / ip / UDP(sport=51234, dport=port) / VXLAN(vni=vni, flags=0x08) / inner


def _offsets(raw: bytes):
    """Offsets of outer L3, outer UDP, inner L3, inner L4 (by parsing with scapy)."""
    p = Ether(raw)
    o_ip = p[IP] if p.haslayer(IP) and not isinstance(p.getlayer(UDP).underlayer, IPv6) else p[IPv6]
    o_l3 = len(raw) - len(bytes(o_ip))
    o_udp = len(raw) - len(bytes(p[UDP]))
    inner = p[VXLAN].payload
    i_ip = inner.payload
    i_l3 = len(raw) - len(bytes(i_ip))
    i_l4 = len(raw) - len(bytes(i_ip.payload))
    return p, o_l3, o_udp, i_l3, i_l4


def _put16(raw: bytearray, at: int, value: int) -> None:
    raw[at : at + 2] = struct.pack("!H", value & 0xFFFF)


def _pseudo(raw: bytes, l3: int, length: int, proto: int) -> int:
    if raw[l3] >> 4 == 4:
        return ones_sum(raw[l3 + 12 : l3 + 20]) + length + proto
    return ones_sum(raw[l3 + 8 : l3 + 40]) + length + proto


def _recompute_outer_udp(raw: bytearray, o_l3: int, o_udp: int) -> None:
    length = struct.unpack_from("!H", raw, o_udp + 4)[0]
    _put16(raw, o_udp + 6, 0)
    s = _pseudo(raw, o_l3, length, 17) + ones_sum(bytes(raw[o_udp : o_udp + length]))
    _put16(raw, o_udp + 6, (~fold(s) & 0xFFFF) or 0xFFFF)


L4_FIELD = {"tcp": 16, "udp": 6, "icmp": 2}


def make_case(kind: str, o_ver=4, i_ver=4, l4="tcp", port=4789, vni=1, vlan=0, payload=b"x" * 40,
              gso=False) -> Case:
    """One packet carrying fault `kind` ('clean' for none)."""
    inner = _inner(i_ver, "icmp" if kind in ("inner_icmp_bad", "inner_icmpv6_bad") else l4, payload)
    raw = bytearray(bytes(_outer(o_ver, port, vni, inner, vlan)))
    p, o_l3, o_udp, i_l3, i_l4 = _offsets(bytes(raw))
    name = {6: "tcp", 17: "udp", 1: "icmp", 58: "icmp"}[raw[i_l3 + 9] if i_ver == 4 else raw[i_l3 + 6]]
    f_in = i_l4 + L4_FIELD[name]
    case = Case(b"", label=f"{kind} o{o_ver} i{i_ver} {name} {port}")
    i_end = len(raw)
    if kind == "outer_ip_bad":
        _put16(raw, o_l3 + 10, struct.unpack_from("!H", raw, o_l3 + 10)[0] ^ 0x0101)
    elif kind in ("outer_udp_bad", "outer_udp_partial", "outer_udp_zero"):
        length = struct.unpack_from("!H", raw, o_udp + 4)[0]
        if kind == "outer_udp_bad":
            _put16(raw, o_udp + 6, struct.unpack_from("!H", raw, o_udp + 6)[0] ^ 0x8001)
        elif kind == "outer_udp_partial":
            _put16(raw, o_udp + 6, fold(_pseudo(raw, o_l3, length, 17)))
        else:
            _put16(raw, o_udp + 6, 0)
            kind = "outer_udp_zero" if o_ver == 4 else "outer_udp6_zero"
    elif kind == "inner_ip_bad":
        _put16(raw, i_l3 + 10, struct.unpack_from("!H", raw, i_l3 + 10)[0] ^ 0x0101)
        _recompute_outer_udp(raw, o_l3, o_udp)
    elif kind.startswith("inner_") and kind.endswith("_bad"):
        if kind == "inner_udp_bad" and i_ver == 6 and gso:  # gso flag reused: IPv6 UDP zero
            _put16(raw, f_in, 0)
        else:
            _put16(raw, f_in, struct.unpack_from("!H", raw, f_in)[0] ^ 0x4004)
        _recompute_outer_udp(raw, o_l3, o_udp)
    elif kind.endswith("_partial"):  # inner_tcp_partial / inner_udp_partial, outer by LCO
        length = i_end - i_l4
        proto = 6 if name == "tcp" else 17
        _put16(raw, f_in, fold(_pseudo(raw, i_l3, 0 if gso else length, proto)))
    if kind in ("outer_udp_zero", "outer_udp6_zero"):
        case.notes.add(kind)
        case.notes.add("clean")
    elif kind != "clean":
        case.flags.add(kind)
    else:
        case.notes.add("clean")
    case.data = bytes(raw)
    return case


def special_cases() -> list[Case]:
    """Unverifiable packets, padding, and things that are not VXLAN."""
    out = []
    c = make_case("clean", l4="udp", payload=b"")
    c.data += b"\0" * 30  # Ethernet trailer after the IP packet: must not matter
    out.append(c)
    small = make_case("clean", l4="udp", payload=b"ab")  # inner frame below 60 bytes: pad it
    p, o_l3, o_udp, i_l3, i_l4 = _offsets(small.data)
    raw = bytearray(small.data)
    pad = 60 - (len(raw) - (o_udp + 16))
    raw += b"\0" * pad
    struct.pack_into("!H", raw, o_udp + 4, struct.unpack_from("!H", raw, o_udp + 4)[0] + pad)
    if raw[o_l3] >> 4 == 4:
        struct.pack_into("!H", raw, o_l3 + 2, struct.unpack_from("!H", raw, o_l3 + 2)[0] + pad)
        _put16(raw, o_l3 + 10, 0)
        _put16(raw, o_l3 + 10, ~fold(ones_sum(bytes(raw[o_l3 : o_l3 + 20]))) & 0xFFFF)
    _recompute_outer_udp(raw, o_l3, o_udp)
    out.append(Case(bytes(raw), notes={"clean"}, label="inner frame padded to 60"))
    cut = make_case("clean", payload=b"y" * 300)
    out.append(Case(cut.data, notes={"unverifiable"}, snaplen=96, label="snaplen 96"))
    frag = bytes(_outer(4, 4789, 5, Ether(src="02:00:00:00:00:01", dst="02:00:00:00:00:02") / IP(src="10.0.0.1", dst="10.0.0.2", flags="MF") / UDP() / (b"z" * 64)))
    out.append(Case(frag, notes={"unverifiable"}, label="inner IPv4 fragment"))
    frag6 = bytes(_outer(6, 4789, 5, Ether(src="02:00:00:00:00:01", dst="02:00:00:00:00:02") / IPv6(src="fd00::1", dst="fd00::2") / IPv6ExtHdrFragment(m=1)
                         / UDP() / (b"z" * 64)))
    out.append(Case(frag6, notes={"unverifiable"}, label="inner IPv6 fragment"))
    not_vx = bytes(Ether(src="02:00:00:00:00:01", dst="02:00:00:00:00:02") / IP(src="192.0.2.1", dst="192.0.2.2") / UDP(sport=1, dport=53) / (b"q" * 20))
    out.append(Case(not_vx, vxlan=False, label="plain DNS"))
    arp_inside = bytes(_outer(4, 8472, 9, Ether(type=0x0806) / (b"\0" * 28)))
    out.append(Case(arp_inside, notes={"clean"}, label="ARP inside VXLAN"))
    return out


FAULTS = ("clean", "outer_ip_bad", "outer_udp_bad", "outer_udp_partial", "outer_udp_zero", "inner_ip_bad",
          "inner_tcp_bad", "inner_tcp_partial", "inner_udp_bad", "inner_udp_partial", "inner_icmp_bad",
          "inner_icmpv6_bad")


def all_cases() -> list[Case]:
    """Every fault, over outer IPv4/IPv6, both ports, inner IPv4/IPv6, VLAN tags."""
    cases = []
    for kind, o_ver, i_ver, port, vlan in itertools.product(FAULTS, (4, 6), (4, 6), (4789, 8472), (0, 1, 2)):
        if kind == "outer_ip_bad" and o_ver == 6:
            continue  # IPv6 has no header checksum
        if kind == "inner_ip_bad" and i_ver == 6:
            continue
        if kind == "inner_icmp_bad" and i_ver == 6 or kind == "inner_icmpv6_bad" and i_ver == 4:
            continue
        l4 = "udp" if "udp" in kind else "tcp"
        cases.append(make_case(kind, o_ver, i_ver, l4, port, vni=100 + i_ver, vlan=vlan))
        if kind in ("inner_tcp_partial", "inner_udp_partial"):
            cases.append(make_case(kind, o_ver, i_ver, l4, port, vni=7, vlan=vlan, gso=True))
    for o_ver in (4, 6):  # IPv6 inner UDP with checksum 0: illegal (RFC 8200 8.1)
        cases.append(make_case("inner_udp_bad", o_ver, 6, "udp", 4789, gso=True))
    return cases + special_cases()


def write_pcap(path, cases: list[Case], nanos: bool = False, endian: str = "<", t0: float = 1.7e9) -> None:
    magic = 0xA1B23C4D if nanos else 0xA1B2C3D4
    with open(path, "wb") as f:
        f.write(struct.pack(endian + "IHHiIII", magic, 2, 4, 0, 0, 262144, 1))
        for i, c in enumerate(cases):
            data = c.data[: c.snaplen] if c.snaplen else c.data
            ts = t0 + i * 0.001
            frac = int(round((ts % 1) * (1e9 if nanos else 1e6)))
            f.write(struct.pack(endian + "IIII", int(ts), frac, len(data), len(c.data)))
            f.write(data)


def write_pcapng(path, cases: list[Case], t0: float = 1.7e9) -> None:
    def block(btype, body):
        body += b"\0" * (-len(body) % 4)
        return struct.pack("<II", btype, len(body) + 12) + body + struct.pack("<I", len(body) + 12)

    with open(path, "wb") as f:
        f.write(block(0x0A0D0D0A, struct.pack("<IHHq", 0x1A2B3C4D, 1, 0, -1)))
        f.write(block(1, struct.pack("<HHI", 1, 0, 262144)))
        for i, c in enumerate(cases):
            data = c.data[: c.snaplen] if c.snaplen else c.data
            us = int((t0 + i * 0.001) * 1e6)
            f.write(block(6, struct.pack("<IIIII", 0, us >> 32, us & 0xFFFFFFFF, len(data), len(c.data)) + data))


def shuffled(cases: list[Case], seed: int = 1) -> list[Case]:
    out = list(cases)
    random.Random(seed).shuffle(out)
    return out
