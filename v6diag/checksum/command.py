"""`v6diag checksum`: verify every checksum in VXLAN traffic and tell offload
artefacts (partial) from real corruption (bad).

options -> source (capture file or packet socket, in batches) -> verify -> tally
-> report -> render (flagged rows stream out as JSON while reading)."""

from __future__ import annotations

import contextlib
import time
from typing import List, Optional

import typer

from v6diag.core.console import Options, stderr, stdout
from v6diag.core.constants import VXLAN_PORTS
from v6diag.core import options
from v6diag.core.errors import UsageError
from v6diag.core.report import exit_code


def checksum(
    ctx: typer.Context,
    file: Optional[str] = typer.Argument(None, help="pcap/pcapng file to read, '-' for stdin."),
    pcap: Optional[str] = typer.Option(None, "--pcap", help="Same as FILE."),
    iface: Optional[str] = typer.Option(None, "--iface", "-i", help="Capture live on this interface (needs CAP_NET_RAW)."),
    duration: Optional[float] = typer.Option(None, "--duration", "-d", help="Live capture length in seconds (default: until Ctrl-C)."),
    port: List[int] = typer.Option([], "--port", "-p", help="More VXLAN UDP ports (4789 and 8472 always)."),
    detail: int = typer.Option(3, "--detail", help="Dissect the first N flagged packets (human output)."),
    write: Optional[str] = typer.Option(None, "--write", "-w", help="Save every packet read; in FILE.pcapng each "
                                        "flagged one carries its verdicts as a comment (Wireshark shows them)."),
    json_out: bool = typer.Option(False, "--json", help="JSON on stdout (schema in README)."),
) -> int:
    """Verify IP/UDP/TCP/ICMP checksums inside VXLAN; classify failures as bad or partial."""
    from v6diag.checksum.tally import ChecksumTally

    opts: Options = ctx.obj
    as_json = json_out or opts.json
    if file and pcap:
        raise UsageError("give the capture once: FILE or --pcap FILE")
    source = file or pcap
    if source and iface:
        raise UsageError("read a capture (FILE) or capture live (--iface), not both")
    if not source and not iface:
        raise UsageError("give a capture FILE ('-' for stdin) or --iface IF to capture live")
    if any(not 0 < p < 65536 for p in port):
        raise UsageError("--port must be a UDP port number (1-65535)")
    options.duration(duration)
    ports = tuple(sorted(set(VXLAN_PORTS) | set(port)))
    # JSON carries no dissections: keeping none spares importing scapy (~33 MB)
    tally = ChecksumTally(ports, keep=0 if as_json else max(0, detail))
    stream = None
    if as_json:
        from v6diag.core.jsonout import ListFirstStream

        stream = ListFirstStream("flagged")
        tally.on_flagged = stream.row
    saver = Saver(write) if write else None
    try:
        if source:
            report = _from_capture(source, tally, as_json, saver)
        else:
            report = _live(iface, duration, tally, opts.verbose, saver)
    finally:
        if saver:
            saver.close()
    if stream is not None:
        stream.finish(report)
    else:
        from v6diag.checksum import render

        render.checksum(report, stdout())
    return exit_code(report)


def _report(tally, source, name, duration, problem=None, live=None):
    from v6diag.checksum.findings import findings, offload_findings
    from v6diag.checksum.report import ChecksumReport, FlowCounts
    from v6diag.checksum.tally import NOTES
    from v6diag.checksum.verify import KINDS

    found = findings(tally, problem)
    if live is not None:
        found += offload_findings(tally, live)
    counts = {k: tally.counts.get(k, 0) for k in (*KINDS, *NOTES)}
    flows = [FlowCounts(f.src, f.dst, f.dport, f.vni, c["packets"], {k: v for k, v in c.items() if k != "packets"})
             for f, c in tally.flow_rows(100)]
    return ChecksumReport(source, name, list(tally.ports), tally.packets, tally.vxlan_packets, counts,
                          flows, tally.flows.other_row(), found, duration, live, tally.kept)


class Saver:
    """--write: every packet, each flagged one commented with its verdicts (pcapng)."""

    def __init__(self, path: str):
        self.path, self.writer = path, None

    def batch(self, batch, rows) -> None:
        from v6diag.core.capture import CaptureWriter

        if self.writer is None and len(batch):
            self.writer = CaptureWriter(self.path, linktype=batch.linktypes[0])
        comments: dict[int, list[str]] = {}
        for r in rows:
            comments.setdefault(r.index, []).append(f"v6diag: {r.kind}, checksum 0x{r.field:04x} "
                                                    f"should be 0x{r.expected:04x}")
        for i, frame in enumerate(batch.frames()):
            self.writer.write(frame, "; ".join(comments.get(batch.first_index + i, [])) or None)

    def close(self) -> None:
        if self.writer:
            self.writer.close()


def _from_capture(path: str, tally, as_json: bool = False, saver: Saver | None = None):
    from v6diag.core.progress import finish, open_capture

    reader, progress = open_capture(path, as_json)
    try:
        for batch in reader.batches():
            rows = tally.add_batch(batch)
            if saver:
                saver.batch(batch, rows)
    finally:
        finish(reader, progress)
    return _report(tally, "pcap", path, reader.span_s, reader.problem)


def _live(iface: str, duration, tally, verbose: int, saver: Saver | None = None):
    from v6diag.checksum import host
    from v6diag.checksum.report import LiveCapture
    from v6diag.core import privilege
    from v6diag.core.constants import ETH_P_ALL
    from v6diag.core.packet_socket import ANY, PacketSocket, batches

    err = stderr()
    privilege.require(["CAP_NET_RAW"], f"capturing on {iface}",
                      "`v6diag checksum FILE` reads a capture (`tcpdump -w FILE udp port 4789 or udp port 8472`)")
    info = host.capture_link(iface)
    before = host.udp_in_csum_errors()
    csum_trace = host.start_csum_drops()  # the kernel's own drop reasons, when tracefs has them
    start = time.monotonic()
    deadline = None if duration is None else start + duration
    with PacketSocket(iface, info.index, protocol=ETH_P_ALL, auxdata=True, allmulti=False) as sock:
        err.print(f"capturing on {iface}" + (f" for {duration:g} s" if duration else "; Ctrl-C to stop"))
        status = err.status(f"capturing on {iface}") if err.is_terminal else contextlib.nullcontext()
        try:
            with status:
                for batch, marks in batches(sock, deadline):
                    rows = tally.add_batch(batch, marks)
                    if saver:
                        saver.batch(batch, rows)
                    counters = (f"{tally.packets} packets, {tally.vxlan_packets} VXLAN, "
                                f"{tally.bad_total()} bad, {tally.partial_total()} partial")
                    if err.is_terminal:
                        status.update(f"capturing on {iface}: {counters} (Ctrl-C to stop)")
                    elif verbose:
                        err.print(f"  {counters}", end="\r", highlight=False)
        except KeyboardInterrupt:
            pass  # Ctrl-C (or SIGTERM) ends a live capture; what was captured is reported, as tcpdump does
    elapsed = time.monotonic() - start
    after = host.udp_in_csum_errors()
    kernel_drops = host.csum_drops(csum_trace)
    live = LiveCapture(iface, info.kind, {} if iface == ANY else host.offload_features(iface), host.vxlan_devices(),
                       {k: after[k] - before[k] for k in after}, tally.kernel_not_ready,
                       *({"vxlan_packets": d["vxlan"], "partial_packets": d["partial"]}
                         for d in (tally.sent, tally.received)), kernel_drops=kernel_drops)
    return _report(tally, "live", iface, elapsed, live=live)
