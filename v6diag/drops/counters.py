"""The last resort: the kernel's SNMP counters (/proc/net/snmp, snmp6, netstat)
before and after, in the namespace asked for. Totals only, no flows or
locations; each counter mapped to the drop reason it counts (RFC 4293 names)."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

# counter -> the drop reason it counts; the rest of the counters are not drops
REASON_OF = {
    "Udp:InCsumErrors": "UDP_CSUM", "Udp6InCsumErrors": "UDP_CSUM", "UdpLite:InCsumErrors": "UDP_CSUM",
    "Tcp:InCsumErrors": "TCP_CSUM", "Icmp:InCsumErrors": "ICMP_CSUM", "Icmp6InCsumErrors": "ICMP_CSUM",
    "Udp:NoPorts": "NO_SOCKET", "Udp6NoPorts": "NO_SOCKET",
    "Udp:RcvbufErrors": "SOCKET_RCVBUFF", "Udp6RcvbufErrors": "SOCKET_RCVBUFF",
    "Ip:InHdrErrors": "IP_INHDR", "Ip6InHdrErrors": "IP_INHDR",
    "Ip:InAddrErrors": "IP_INADDRERRORS", "Ip6InAddrErrors": "IP_INADDRERRORS",
    "Ip:InUnknownProtos": "IP_NOPROTO", "Ip6InUnknownProtos": "IP_NOPROTO",
    "IpExt:InNoRoutes": "IP_INNOROUTES", "Ip6InNoRoutes": "IP_INNOROUTES",
    "Ip:OutNoRoutes": "IP_OUTNOROUTES", "Ip6OutNoRoutes": "IP_OUTNOROUTES",
    "Ip6InTooBigErrors": "PKT_TOO_BIG", "Ip6InTruncatedPkts": "PKT_TOO_SMALL",
    "Ip:InDiscards": "NOT_SPECIFIED", "Ip6InDiscards": "NOT_SPECIFIED",
    "Ip:ReasmFails": "FRAG_REASM_TIMEOUT", "Ip6ReasmFails": "FRAG_REASM_TIMEOUT",
}
FILES = ("snmp", "snmp6", "netstat")


def parse(name: str, text: str) -> dict[str, int]:
    """One /proc/net file: snmp and netstat come as header/value line pairs per
    protocol ("Udp: InDatagrams NoPorts ..."), snmp6 as one "name value" per line."""
    out: dict[str, int] = {}
    lines = text.splitlines()
    if name == "snmp6":
        for line in lines:
            parts = line.split()
            if len(parts) == 2 and parts[1].lstrip("-").isdigit():
                out[parts[0]] = int(parts[1])
        return out
    for head, values in zip(lines[::2], lines[1::2]):
        hk, _, hnames = head.partition(":")
        vk, _, vvals = values.partition(":")
        if hk != vk:
            continue
        for key, value in zip(hnames.split(), vvals.split()):
            if value.lstrip("-").isdigit():
                out[f"{hk}:{key}"] = int(value)
    return out


def read(proc_net: Path = Path("/proc/thread-self/net")) -> dict[str, int]:
    # thread-self: the namespace of the calling thread (serve enters one per watcher
    # thread); /proc/net is the process leader's
    out: dict[str, int] = {}
    for name in FILES:
        try:
            out.update(parse(name, (proc_net / name).read_text()))
        except OSError:
            continue
    return out


def drops(before: dict[str, int], after: dict[str, int]) -> tuple[Counter, Counter]:
    """(by reason, by counter) for what rose between two readings."""
    by_reason, by_counter = Counter(), Counter()
    for counter, reason in REASON_OF.items():
        delta = after.get(counter, 0) - before.get(counter, 0)
        if delta > 0:
            by_reason[reason] += delta
            by_counter[counter] = delta
    return by_reason, by_counter


_PROTOCOL = {"Udp": "udp", "UdpLite": "udplite", "Tcp": "tcp", "Icmp": "icmp"}


def family_and_proto(counter: str) -> tuple[str, str]:
    """What a counter's name says of the packets it counts: snmp6's names are
    IPv6 ("Udp6InCsumErrors"); snmp's are IPv4, except Tcp's, which counts both
    families (tcp_v6_rcv increments the same TCP_MIB_CSUMERRORS)."""
    if ":" not in counter:  # snmp6
        for prefix, proto in (("Udp6", "udp"), ("UdpLite6", "udplite"), ("Icmp6", "icmpv6"), ("Ip6", "unknown")):
            if counter.startswith(prefix):
                return "ipv6", proto
        return "ipv6", "unknown"
    table = counter.split(":")[0]
    if table == "Tcp":
        return "unknown", "tcp"
    return "ipv4", _PROTOCOL.get(table, "unknown")
