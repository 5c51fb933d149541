"""Human output of `discover`: a table of devices and the ssh line for each,
built only from the report."""

from __future__ import annotations

from rich.console import Console
from rich.text import Text

from v6diag.core.console import Column, print_findings, print_table
from v6diag.discover.report import DiscoveryReport, Host


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


# what gives way first in a narrow terminal: seen-by, then reply time, IID kind,
# router flag; link-local, MAC, vendor and the other addresses stay
COLUMNS = [Column("Link-local"), Column("MAC"), Column("Vendor"), Column("IID", 4),
           Column("Other addresses", 2), Column("Router", 3), Column("Seen by", 6), Column("Reply ms", 5, "right")]


def discovery(report: DiscoveryReport, console: Console, user: str = "<user>") -> None:
    where = report.interface or "capture"
    title = (f"{len(report.hosts)} IPv6 devices on {where} "
             f"({report.source}, {report.duration_s:.2f} s, {report.packets} packets)")
    rows = []
    for h in report.hosts:
        others = [a for a in h.addresses if a != h.link_local]
        rows.append([h.link_local or "-", h.mac, _vendor(h), h.iid_kind, "\n".join(others) or "-",
                     "yes" if h.is_router else "", ", ".join(h.seen_by),
                     "-" if h.first_reply_s is None else f"{h.first_reply_s * 1000:.0f}"])
    print_table(console, title, COLUMNS, rows, spill=2)
    hints = [s for s in (ssh_hint(h, report.interface, user) for h in report.hosts) if s]
    if hints:
        console.print("\nReach them:", style="bold")
        for hint in hints:
            console.print("  " + hint, highlight=False, soft_wrap=True)
    if report.findings:
        console.print()
        print_findings(report.findings, console)
