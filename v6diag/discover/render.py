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
    addr = h.link_local or (h.addresses[0] if h.addresses else (h.ipv4[0] if h.ipv4 else "-"))
    vendor = h.vendor or ("random/local MAC" if h.mac_locally_administered else "unknown OUI")
    name = f"{h.names[0].name}  " if h.names else ""
    return f"{name}{addr}  {h.mac}  {vendor}  [{', '.join(h.seen_by)}]"


def mdns_name(h: Host) -> str | None:
    """The name.local to type, when the device answered mDNS with one."""
    return next((n.name for n in h.names if n.source == "mdns" and n.name.endswith(".local")), None)


def ssh_hint(h: Host, interface: str | None, user: str) -> str | None:
    name = mdns_name(h)
    if name:
        return f"ssh {user}@{name}"
    if not h.link_local:
        return None
    return f"ssh {user}@{h.link_local}%{interface or 'IFACE'}"


def _names(h: Host) -> str:
    seen: list[str] = []
    for n in h.names:
        if n.name not in seen:
            seen.append(n.name)
    return "\n".join(seen) or "-"


def _services(h: Host) -> str:
    return "\n".join(f"{s.type.split('.')[0].lstrip('_')}:{s.port}" for s in h.services) or ""


# what gives way first in a narrow terminal: seen-by, then services, reply time,
# IID kind, router flag; name, link-local, MAC, vendor and the addresses stay
COLUMNS = [Column("Name"), Column("Link-local"), Column("MAC"), Column("Vendor"), Column("IID", 5),
           Column("Other addresses", 2), Column("IPv4", 2), Column("Router", 4), Column("Services", 6),
           Column("Seen by", 8), Column("Reply ms", 7, "right")]
OPTIONAL = {"Name", "IPv4", "Services"}


def discovery(report: DiscoveryReport, console: Console, user: str = "<user>") -> None:
    where = report.interface or "capture"
    ipv6 = sum(1 for h in report.hosts if h.addresses)
    only4 = len(report.hosts) - ipv6
    title = (f"{ipv6} IPv6 devices{f' and {only4} IPv4-only' if only4 else ''} on {where} "
             f"({report.source}, {report.duration_s:.2f} s, {report.packets} packets)")
    rows = []
    for h in report.hosts:
        others = [a for a in h.addresses if a != h.link_local]
        rows.append([_names(h), h.link_local or "-", h.mac, _vendor(h), h.iid_kind, "\n".join(others) or "-",
                     "\n".join(h.ipv4) or "-", "yes" if h.is_router else "", _services(h), ", ".join(h.seen_by),
                     "-" if h.first_reply_s is None else f"{h.first_reply_s * 1000:.0f}"])
    # a column nobody filled (no names asked or heard, no IPv4, no services) is left out
    empty = {i for i, c in enumerate(COLUMNS) if c.header in OPTIONAL
             and all(row[i] in ("-", "") for row in rows)}
    columns = [c for i, c in enumerate(COLUMNS) if i not in empty]
    rows = [[cell for i, cell in enumerate(row) if i not in empty] for row in rows]
    print_table(console, title, columns, rows, spill=[c.header for c in columns].index("Vendor"))
    hints = [s for s in (ssh_hint(h, report.interface, user) for h in report.hosts) if s]
    if hints:
        console.print("\nReach them:", style="bold")
        for hint in hints:
            console.print("  " + hint, highlight=False, soft_wrap=True)
    if report.findings:
        console.print()
        print_findings(report.findings, console)
