"""Human output of `checksum`: verdicts, flows, findings, then the first flagged
packets dissected by scapy (a display aid: verdicts never come from scapy)."""

from __future__ import annotations

from rich.console import Console
from rich.text import Text

from v6diag.checksum.report import ChecksumReport
from v6diag.core.console import Column, print_findings, print_table

CHECKSUM_MEANING = {
    "outer_ip_bad": "outer IPv4 header checksum wrong",
    "outer_udp_bad": "outer UDP checksum wrong: the receiver drops it",
    "outer_udp_partial": "outer UDP checksum left for offload (captured before the NIC)",
    "inner_ip_bad": "inner IPv4 header checksum wrong",
    "inner_tcp_bad": "inner TCP checksum wrong",
    "inner_tcp_partial": "inner TCP checksum left for offload",
    "inner_udp_bad": "inner UDP checksum wrong (or 0 over IPv6)",
    "inner_udp_partial": "inner UDP checksum left for offload",
    "inner_icmp_bad": "inner ICMP checksum wrong",
    "inner_icmpv6_bad": "inner ICMPv6 checksum wrong",
    "clean": "every checksum right",
    "unverifiable": "cut by snaplen or fragmented: not judged",
    "outer_udp_zero": "outer UDP checksum 0 over IPv4: not computed (allowed)",
    "outer_udp6_zero": "outer UDP checksum 0 over IPv6: RFC 6935 tunnel exception",
}


def _kind_style(kind: str) -> str:
    return "bold red" if kind.endswith("_bad") else "yellow" if kind.endswith("_partial") else ""


FLOW_COLUMNS = [Column("Outer flow"), Column("VNI", 2), Column("Packets", 2, "right"), Column("Clean", 3, "right"),
                Column("Bad", justify="right"), Column("Partial", 2, "right"), Column("Unverifiable", 4, "right")]


def checksum(report: ChecksumReport, console: Console) -> None:
    console.print(f"[bold]{report.input}[/]: {report.packets} packets, {report.vxlan_packets} VXLAN "
                  f"(UDP {', '.join(map(str, report.ports))}), {report.duration_s:.2f} s", highlight=False)
    rows = [[Text(kind, style=_kind_style(kind)), str(n), CHECKSUM_MEANING.get(kind, "")]
            for kind, n in report.counts.items() if n]
    print_table(console, "Verdicts", [Column("Class"), Column("Packets"), Column("Meaning", 2)], rows)
    if report.flows:
        rows = []
        for f in report.flows[:20]:
            c = f.counts
            bad = sum(v for k, v in c.items() if k.endswith("_bad"))
            partial = sum(v for k, v in c.items() if k.endswith("_partial"))
            rows.append([f"{f.outer_src} -> {f.outer_dst}:{f.dport}", str(f.vni), str(f.packets),
                         str(c.get("clean", 0)), Text(str(bad), style="bold red" if bad else ""),
                         Text(str(partial), style="yellow" if partial else ""), str(c.get("unverifiable", 0))])
        print_table(console, "VXLAN flows (busiest first)", FLOW_COLUMNS, rows)
    if report.live:
        live = report.live
        feats = ", ".join(f"{k} {'on' if v else 'off'}" for k, v in live.offload.items()) or "unknown"
        console.print(f"offload on {live.interface}: {feats}", highlight=False)
        for d in live.vxlan_devices:
            f = d.offload.get("tx-checksum-ip-generic")
            console.print(f"vxlan device {d.name}: port {d.port}, udpcsum {'on' if d.udpcsum else 'off'}, "
                          f"tx-checksum-ip-generic {'on' if f else 'off' if f is False else 'unknown'}", highlight=False)
        e = live.udp_in_csum_errors
        console.print(f"UDP InCsumErrors during the capture: +{e['ipv4']} IPv4, +{e['ipv6']} IPv6", highlight=False)
    if report.findings:
        console.print()
        print_findings(report.findings, console)
    for ex in report.examples:
        row = ex.row
        console.print()
        console.print(Text.assemble((f"packet {row.index}: ", "bold"), (row.kind, _kind_style(row.kind)),
                                    f"  field 0x{row.field:04x}, should be 0x{row.expected:04x}"))
        console.print(Text(dissect(ex.data, ex.linktype).rstrip(), style="dim"))


def dissect(data: bytes, linktype: int) -> str:
    """scapy's layer-by-layer view of a flagged packet, for people (never for verdicts)."""
    from scapy.config import conf
    from scapy.layers import inet, inet6, l2, vxlan  # noqa: F401  (register the dissectors)

    cls = conf.l2types.get(linktype)
    if cls is None:
        return f"(link type {linktype}: {len(data)} bytes)"
    try:
        pkt = cls(data)
        udp = pkt.getlayer(inet.UDP)
        if udp is not None and isinstance(udp.payload, conf.raw_layer):  # a --port scapy doesn't bind
            raw = bytes(udp.payload)
            udp.remove_payload()
            udp.add_payload(vxlan.VXLAN(raw))
        return pkt.show(dump=True)
    except Exception as e:  # a display aid only; the verdict stands without it
        return f"(scapy could not dissect this packet: {e})"
