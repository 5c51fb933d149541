"""Human output with rich: tables on stdout, built only from the report."""

from __future__ import annotations

from rich.console import Console
from rich.table import Table
from rich.text import Text

from v6diag.model import DiscoveryReport, Finding, Host, Severity

_SEVERITY_STYLE = {Severity.INFO: "cyan", Severity.WARNING: "yellow", Severity.ERROR: "bold red"}


def findings(items: list[Finding], console: Console) -> None:
    for f in items:
        console.print(Text.assemble((f"{f.severity.value}: ", _SEVERITY_STYLE[f.severity]),
                                    (f"[{f.code}] ", "dim"), f.message))
        if f.evidence:
            console.print(Text("    evidence: " + f.evidence, style="dim"))
        if f.fix:
            console.print(Text("    fix: " + f.fix))


def _vendor(h: Host) -> Text:
    if h.vendor:
        return Text(h.vendor)
    if h.mac_locally_administered:
        return Text("(random/local MAC)", style="yellow")
    return Text("(unknown OUI)", style="dim")


def host_line(h: Host) -> str:
    """One line per device, for --watch."""
    addr = h.link_local or (h.addresses[0] if h.addresses else "-")
    vendor = h.vendor or ("random/local MAC" if h.mac_locally_administered else "unknown OUI")
    return f"{addr}  {h.mac}  {vendor}  [{', '.join(h.seen_by)}]"


def ssh_hint(h: Host, interface: str | None, user: str) -> str | None:
    if not h.link_local:
        return None
    return f"ssh {user}@{h.link_local}%{interface or 'IFACE'}"


def discovery(report: DiscoveryReport, console: Console, user: str = "<user>") -> None:
    where = report.interface or "capture"
    title = (f"{len(report.hosts)} IPv6 devices on {where} "
             f"({report.source}, {report.duration_s:.2f} s, {report.packets} packets)")
    table = Table(title=title, title_justify="left", header_style="bold")
    for col in ("Link-local", "MAC", "Vendor", "IID", "Other addresses", "Router",
                "Seen by", "Reply ms"):
        table.add_column(col, overflow="fold")
    for h in report.hosts:
        others = [a for a in h.addresses if a != h.link_local]
        table.add_row(
            h.link_local or "-",
            h.mac,
            _vendor(h),
            h.iid_kind,
            "\n".join(others) or "-",
            "yes" if h.is_router else "",
            ", ".join(h.seen_by),
            "-" if h.first_reply_s is None else f"{h.first_reply_s * 1000:.0f}",
        )
    console.print(table)
    hints = [s for s in (ssh_hint(h, report.interface, user) for h in report.hosts) if s]
    if hints:
        console.print("\nReach them:", style="bold")
        for hint in hints:
            console.print("  " + hint, highlight=False, soft_wrap=True)
    if report.findings:
        console.print()
        findings(report.findings, console)


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


def checksum(report, console: Console) -> None:
    console.print(f"[bold]{report.input}[/]: {report.packets} packets, {report.vxlan_packets} VXLAN "
                  f"(UDP {', '.join(map(str, report.ports))}), {report.duration_s:.2f} s", highlight=False)
    verdicts = Table(title="Verdicts", title_justify="left", header_style="bold")
    for col in ("Class", "Packets", "Meaning"):
        verdicts.add_column(col)
    for kind, n in report.counts.items():
        if n:
            verdicts.add_row(Text(kind, style=_kind_style(kind)), str(n), CHECKSUM_MEANING.get(kind, ""))
    console.print(verdicts)
    if report.flows:
        flows = Table(title="VXLAN flows (busiest first)", title_justify="left", header_style="bold")
        for col in ("Outer flow", "VNI", "Packets", "Clean", "Bad", "Partial", "Unverifiable"):
            flows.add_column(col)
        for f in report.flows[:20]:
            c = f["counts"]
            bad = sum(v for k, v in c.items() if k.endswith("_bad"))
            partial = sum(v for k, v in c.items() if k.endswith("_partial"))
            flows.add_row(f"{f['outer_src']} -> {f['outer_dst']}:{f['dport']}", str(f["vni"]), str(f["packets"]),
                          str(c.get("clean", 0)), Text(str(bad), style="bold red" if bad else ""),
                          Text(str(partial), style="yellow" if partial else ""), str(c.get("unverifiable", 0)))
        console.print(flows)
    if report.live:
        live = report.live
        feats = ", ".join(f"{k} {'on' if v else 'off'}" for k, v in live["offload"].items()) or "unknown"
        console.print(f"offload on {live['interface']}: {feats}", highlight=False)
        for d in live["vxlan_devices"]:
            f = d["offload"].get("tx-checksum-ip-generic")
            console.print(f"vxlan device {d['name']}: port {d['port']}, udpcsum {'on' if d['udpcsum'] else 'off'}, "
                          f"tx-checksum-ip-generic {'on' if f else 'off' if f is False else 'unknown'}", highlight=False)
        e = live["udp_in_csum_errors"]
        console.print(f"UDP InCsumErrors during the capture: +{e['ipv4']} IPv4, +{e['ipv6']} IPv6", highlight=False)
    if report.findings:
        console.print()
        findings(report.findings, console)
    for row, text in report.flagged_examples:
        console.print()
        console.print(Text.assemble((f"packet {row['index']}: ", "bold"), (row["kind"], _kind_style(row["kind"])),
                                    f"  field {row['field']}, should be {row['expected']}"))
        console.print(Text(text.rstrip(), style="dim"))
