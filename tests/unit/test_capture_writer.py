"""--write: pcapng when the name says so, with a comment per flagged packet that
Wireshark's tools show (tshark is the cross-check); our reader reads both forms
back to the same frames."""

from __future__ import annotations

import json
import subprocess

from tests.conftest import PCAPS, require_tools
from v6diag.core.capture import CaptureReader, CaptureWriter


def test_pcapng_round_trip_with_comments_and_interface_name(tmp_path):
    src = list(CaptureReader(str(PCAPS / "discover-lan.pcap")))
    for name in ("out.pcap", "out.pcapng"):
        path = tmp_path / name
        with CaptureWriter(str(path), interface="lan0") as w:
            for i, f in enumerate(src):
                w.write(f, comment=f"note {i}" if i % 7 == 0 else None)
        reader = CaptureReader(str(path))
        back = list(reader)
        assert reader.problem is None and [f.data for f in back] == [f.data for f in src]
        assert all(abs(a.ts - b.ts) < 1e-6 for a, b in zip(back, src))
    assert reader.interface_name == "lan0"


def test_tshark_reads_the_comments(tmp_path):
    require_tools("tshark")
    path = tmp_path / "c.pcapng"
    with CaptureWriter(str(path), interface="u0") as w:
        for i, f in enumerate(CaptureReader(str(PCAPS / "vxlan-bad-outer-udp.pcap"))):
            w.write(f, comment="v6diag: outer_udp_bad" if i in (3, 9) else None)
    out = subprocess.run(["tshark", "-r", str(path), "-Y", "frame.comment", "-T", "fields", "-e", "frame.number",
                          "-e", "frame.comment"], capture_output=True, text=True).stdout.split("\n")
    assert [line.split("\t") for line in out if line] == [["4", "v6diag: outer_udp_bad"],
                                                         ["10", "v6diag: outer_udp_bad"]]


def test_checksum_write_comments_exactly_the_flagged_packets(tmp_path, v6diag_cmd):
    require_tools("tshark")
    path = tmp_path / "flagged.pcapng"
    r = subprocess.run([*v6diag_cmd, "--json", "checksum", str(PCAPS / "vxlan-bad-outer-udp.pcap"), "--write",
                        str(path)], capture_output=True, text=True)
    flagged = {row["index"] + 1 for row in json.loads(r.stdout)["flagged"]}  # tshark numbers from 1
    out = subprocess.run(["tshark", "-r", str(path), "-Y", "frame.comment", "-T", "fields", "-e", "frame.number",
                          "-e", "frame.comment"], capture_output=True, text=True).stdout
    commented = {int(line.split("\t")[0]): line.split("\t")[1] for line in out.splitlines() if line}
    assert set(commented) == flagged and len(flagged) == 5
    assert all(c.startswith("v6diag: outer_udp_bad, checksum 0x") for c in commented.values())
    assert sum(1 for _ in CaptureReader(str(path))) == json.loads(r.stdout)["packets"]
