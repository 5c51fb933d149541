"""The bundled examples (README, pcaps/README): each command on each bundled
capture, run as a user would from a folder holding `pcaps/`. Their --json is held
byte for byte in tests/golden (tests/unit/test_golden.py), and the install tier
runs the same list against an installed wheel (tests/install/check_examples.py)."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

GOLDEN = Path(__file__).resolve().parent / "golden"

# (golden name, arguments after `v6diag --json`); paths as the README writes them
CASES = [
    ("discover-lan", ["discover", "--pcap", "pcaps/discover-lan.pcap"]),
    ("discover-lan-pcapng", ["discover", "--pcap", "pcaps/discover-lan.pcapng"]),
    ("discover-link-up-passive", ["discover", "--pcap", "pcaps/link-up-passive.pcapng"]),
    ("discover-names", ["discover", "--pcap", "pcaps/discover-names.pcapng"]),
    ("checksum-offload-on", ["checksum", "pcaps/vxlan-offload-on.pcap"]),
    ("checksum-offload-off", ["checksum", "pcaps/vxlan-offload-off.pcap"]),
    ("checksum-bad-outer-udp", ["checksum", "pcaps/vxlan-bad-outer-udp.pcap"]),
    ("checksum-no-vxlan", ["checksum", "pcaps/trace-pd-delegated.pcap"]),
    ("trace-o-flag-info-request", ["trace", "--pcap", "pcaps/trace-o-flag-info-request.pcap"]),
    ("trace-pd-delegated", ["trace", "--pcap", "pcaps/trace-pd-delegated.pcap"]),
    ("trace-tunnel-no-proxy", ["trace", "--pcap", "pcaps/trace-tunnel-no-proxy.pcap", "--iface", "e0"]),
    ("trace-tunnel-proxy", ["trace", "--pcap", "pcaps/trace-tunnel-proxy.pcap"]),
    ("tunnel-sit-ok", ["tunnel", "--pcap", "pcaps/tunnel-sit-ok.pcap"]),
    ("tunnel-sit-dropped", ["tunnel", "--pcap", "pcaps/tunnel-sit-dropped.pcap"]),
    ("tunnel-vxlan-ok", ["tunnel", "--pcap", "pcaps/tunnel-vxlan-ok.pcap"]),
    ("tunnel-vxlan-dropped", ["tunnel", "--pcap", "pcaps/tunnel-vxlan-dropped.pcap"]),
    ("tunnel-vxlan-mtu1500", ["tunnel", "--pcap", "pcaps/tunnel-vxlan-mtu1500.pcap"]),
    ("tunnel-wireguard-ok", ["tunnel", "--pcap", "pcaps/tunnel-wireguard-ok.pcap"]),
    ("tunnel-wireguard-dropped", ["tunnel", "--pcap", "pcaps/tunnel-wireguard-dropped.pcap"]),
    ("conntrack-kernel-6.1", ["conntrack", "--from", "pcaps/conntrack-kernel-6.1.ndjson"]),
    ("drops-kernel-6.1", ["drops", "--from", "pcaps/drops-kernel-6.1.ndjson"]),
    ("drops-dual-wan-6.1", ["drops", "--from", "pcaps/drops-dual-wan-6.1.ndjson", "--with-conntrack",
                            "pcaps/conntrack-dual-wan-6.1.ndjson"]),
]
# wall-clock measurements of the run, not facts of the input
TIMING = {"conntrack": [("summary", "duration_s")], "drops": [("summary", "duration_s")]}


def blank_timing(command: str, text: str) -> str:
    rules = TIMING.get(command)
    if not rules:
        return text
    lines = []
    for line in text.splitlines():
        obj = json.loads(line)
        for marker, key in rules:
            where = obj.get(marker)
            if where and key in obj:  # conntrack: {"summary": true, "duration_s": ...}
                obj[key] = 0
            elif isinstance(where, dict) and key in where:  # drops: {"summary": {"duration_s": ...}}
                where[key] = 0
        lines.append(json.dumps(obj, separators=(",", ":")))
    return "\n".join(lines) + "\n"


def run_json(cli: list[str], args: list[str], cwd: Path, env: dict | None = None) -> tuple[int, str, str]:
    """(exit code, stdout with timing blanked, stderr) of `v6diag --json ARGS` in cwd."""
    r = subprocess.run([*cli, "--json", *args], capture_output=True, text=True, timeout=300, cwd=cwd, env=env)
    return r.returncode, blank_timing(args[0], r.stdout), r.stderr
