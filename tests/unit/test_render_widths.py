"""Human output never breaks an address, a MAC or a prefix, at any terminal width:
every one the 200-column rendering shows must stand whole, on one line, at 80, 100
and 120 columns too (tables give up low-priority columns first, then lay rows out
as blocks)."""

from __future__ import annotations

import re
from io import StringIO

import pytest
from rich.console import Console

from tests.conftest import PCAPS

ADDRESS = re.compile(r"(?<![0-9A-Za-z:.])(?:[0-9a-f]{0,4}:){2,7}[0-9a-f]{0,4}(?:/\d{1,3})?(?![0-9A-Za-z:])"
                     r"|(?<![0-9.])\d{1,3}(?:\.\d{1,3}){3}(?:/\d{1,2})?(?![0-9])")


def render(command: str, path: str, width: int) -> str:
    console = Console(file=StringIO(), width=width, record=True, emoji=False, color_system=None)
    if command == "discover":
        from v6diag.discover import render as r
        from v6diag.discover.command import _from_capture

        r.discovery(_from_capture(path, None), console, "pi")
    elif command == "trace":
        from v6diag.trace import render as r
        from v6diag.trace.command import _from_capture

        r.render(_from_capture(path, "e0"), console)
    elif command == "checksum":
        from v6diag.checksum import render as r
        from v6diag.checksum.command import _from_capture
        from v6diag.checksum.tally import ChecksumTally

        r.checksum(_from_capture(path, ChecksumTally((4789, 8472), keep=0)), console)
    elif command == "tunnel":
        from v6diag.tunnel import render as r
        from v6diag.tunnel.command import _from_capture

        r.render(_from_capture(path, ()), console)
    else:
        from v6diag.conntrack.classify import explain_in_mode
        from v6diag.conntrack.recorded import RecordedEvents
        from v6diag.conntrack.render import EventPrinter
        from v6diag.conntrack.report import Summary

        printer, summary, src = EventPrinter(console, as_json=False, show_all=True), Summary("recorded"), \
            RecordedEvents(path)
        for ev in src.events():
            printer.event(explain_in_mode(ev, "recorded"))
            summary.add(ev["cause"])
        printer.summary(summary)
    return console.export_text()


def whole(token: str, text: str) -> bool:
    return re.search(rf"(?<![0-9A-Za-z:.]){re.escape(token)}(?![0-9A-Za-z:/])", text) is not None


CASES = [("discover", "discover-lan.pcap"), ("discover", "link-up-passive.pcapng"),
         ("trace", "trace-pd-delegated.pcap"), ("trace", "trace-o-flag-info-request.pcap"),
         ("trace", "trace-tunnel-no-proxy.pcap"), ("checksum", "vxlan-offload-on.pcap"),
         ("tunnel", "tunnel-vxlan-mtu1500.pcap"), ("tunnel", "tunnel-sit-dropped.pcap"),
         ("conntrack", "conntrack-kernel-6.1.ndjson")]
MAC = re.compile(r"(?<![0-9a-f:])[0-9a-f]{2}(?::[0-9a-f]{2}){5}(?![0-9a-f:])")


@pytest.mark.parametrize("command, capture", CASES, ids=[c[1] for c in CASES])
def test_addresses_macs_and_prefixes_stay_whole(command, capture):
    wide = render(command, str(PCAPS / capture), 200)
    tokens = set(ADDRESS.findall(wide)) | set(MAC.findall(wide))
    assert len(tokens) >= 2, wide[:500]
    for width in (80, 100, 120):
        text = render(command, str(PCAPS / capture), width)
        broken = sorted(t for t in tokens if not whole(t, text))
        assert not broken, f"{width} columns broke {broken[:5]}:\n{text[:3000]}"
        assert max(len(line) for line in text.splitlines()) <= width or command == "conntrack"


@pytest.mark.parametrize("capture", ["conntrack-kernel-6.1.ndjson", "conntrack-dual-wan-6.1.ndjson"])
def test_conntrack_summary_keeps_cause_names_whole_and_fits(capture):
    """The summary by cause is the shared table: a cause name (nat-oif-changed) is
    never broken at its hyphens, and the table fits the terminal."""
    from v6diag.conntrack.classify import CAUSES

    wide = render("conntrack", str(PCAPS / capture), 200)
    causes = {c for c in CAUSES if re.search(rf"[│ ]{re.escape(c)}[│ ]", wide.partition("By cause")[2])}
    assert causes, wide[-2000:]
    for width in (60, 80, 100):
        table = render("conntrack", str(PCAPS / capture), width).partition("By cause")[2]
        assert all(re.search(rf"(?<![\w-]){re.escape(c)}(?![\w-])", table) for c in causes), table
        assert max(len(line) for line in table.splitlines()) <= width, table
