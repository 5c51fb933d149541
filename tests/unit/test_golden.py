"""The JSON users script against, held byte for byte: `--json` of every bundled
example (README and pcaps/README), recorded in tests/golden/ and validated
against the published JSON Schema of its command (v6diag/schemas/).

Timing fields that measure this machine, not the input, are blanked first.
Regenerate after an intended change with V6DIAG_UPDATE_GOLDEN=1 and say why in
the commit."""

from __future__ import annotations

import json
import os
import subprocess

import pytest

from tests.conftest import PCAPS, ROOT
from tests.schemas import validate_output

GOLDEN = ROOT / "tests" / "golden"
UPDATE = os.environ.get("V6DIAG_UPDATE_GOLDEN") == "1"

# (golden name, arguments after `v6diag --json`); paths relative to pcaps/
CASES = [
    ("discover-lan", ["discover", "--pcap", "discover-lan.pcap"]),
    ("discover-lan-pcapng", ["discover", "--pcap", "discover-lan.pcapng"]),
    ("discover-link-up-passive", ["discover", "--pcap", "link-up-passive.pcapng"]),
    ("checksum-offload-on", ["checksum", "vxlan-offload-on.pcap"]),
    ("checksum-offload-off", ["checksum", "vxlan-offload-off.pcap"]),
    ("checksum-bad-outer-udp", ["checksum", "vxlan-bad-outer-udp.pcap"]),
    ("checksum-no-vxlan", ["checksum", "trace-pd-delegated.pcap"]),
    ("trace-o-flag-info-request", ["trace", "--pcap", "trace-o-flag-info-request.pcap"]),
    ("trace-pd-delegated", ["trace", "--pcap", "trace-pd-delegated.pcap"]),
    ("trace-tunnel-no-proxy", ["trace", "--pcap", "trace-tunnel-no-proxy.pcap", "--iface", "e0"]),
    ("trace-tunnel-proxy", ["trace", "--pcap", "trace-tunnel-proxy.pcap"]),
    ("tunnel-sit-ok", ["tunnel", "--pcap", "tunnel-sit-ok.pcap"]),
    ("tunnel-sit-dropped", ["tunnel", "--pcap", "tunnel-sit-dropped.pcap"]),
    ("tunnel-vxlan-ok", ["tunnel", "--pcap", "tunnel-vxlan-ok.pcap"]),
    ("tunnel-vxlan-dropped", ["tunnel", "--pcap", "tunnel-vxlan-dropped.pcap"]),
    ("tunnel-vxlan-mtu1500", ["tunnel", "--pcap", "tunnel-vxlan-mtu1500.pcap"]),
    ("tunnel-wireguard-ok", ["tunnel", "--pcap", "tunnel-wireguard-ok.pcap"]),
    ("tunnel-wireguard-dropped", ["tunnel", "--pcap", "tunnel-wireguard-dropped.pcap"]),
    ("conntrack-kernel-6.1", ["conntrack", "--from", "conntrack-kernel-6.1.ndjson"]),
]
# wall-clock measurements of this run, not facts of the input
TIMING = {"conntrack": [("summary", "duration_s")]}


def _args(args: list[str]) -> list[str]:
    return [str(PCAPS / a) if (PCAPS / a).is_file() else a for a in args]


def _blank_timing(command: str, text: str) -> str:
    rules = TIMING.get(command)
    if not rules:
        return text
    lines = []
    for line in text.splitlines():
        obj = json.loads(line)
        for marker, key in rules:
            if obj.get(marker) and key in obj:
                obj[key] = 0
        lines.append(json.dumps(obj, separators=(",", ":")))
    return "\n".join(lines) + "\n"


@pytest.mark.parametrize("name, args", CASES, ids=[c[0] for c in CASES])
def test_json_of_bundled_examples_is_unchanged(v6diag_cmd, name, args):
    r = subprocess.run([*v6diag_cmd, "--json", *_args(args)], capture_output=True, text=True, timeout=120,
                       cwd=ROOT)
    assert r.returncode in (0, 1), r.stderr
    got = _blank_timing(args[0], r.stdout)
    path = GOLDEN / f"{name}.json"
    if UPDATE:
        path.write_text(got)
    assert path.exists(), f"no golden file {path.name}: run with V6DIAG_UPDATE_GOLDEN=1"
    assert got == path.read_text(), f"--json of {' '.join(args)} changed (golden {path.name})"


@pytest.mark.parametrize("name, command", [(c[0], c[1][0]) for c in CASES], ids=[c[0] for c in CASES])
def test_golden_files_follow_the_published_schema(name, command):
    assert validate_output(command, (GOLDEN / f"{name}.json").read_text())


def test_a_schema_rejects_what_breaks_the_contract():
    import json

    from jsonschema import ValidationError

    report = json.loads((GOLDEN / "discover-lan.json").read_text())
    report["hosts"][0]["iid_kind"] = "made-up"
    with pytest.raises(ValidationError):
        validate_output("discover", json.dumps(report))
    del report["hosts"]
    with pytest.raises(ValidationError):
        validate_output("discover", json.dumps(report))
