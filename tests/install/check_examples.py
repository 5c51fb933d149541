#!/usr/bin/env python3
"""Run every bundled example with an installed v6diag, outside the source tree,
and hold its --json to the golden files (tests/golden); check the human output,
the BPF program shipped in the package, and the dependency versions in use.

    python3 tests/install/check_examples.py --cli VENV/bin/v6diag [--expect scapy==2.5.0 ...]

Exit 0 when everything matches; each mismatch is one line on stderr."""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO))

from tests.examples import CASES, GOLDEN, run_json  # noqa: E402

VERSIONS = """
import importlib.metadata as m, json, sys
print(json.dumps({"python": sys.version.split()[0], **{d: m.version(d) for d in sys.argv[1:]}}))
"""
def _declared() -> tuple[str, ...]:
    """Every dependency pyproject.toml declares (a new one is checked without editing this)."""
    import re
    import tomllib

    deps = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]["dependencies"]
    return tuple(re.match(r"[A-Za-z0-9_.-]+", d).group(0) for d in deps)


DEPS = (*_declared(), "v6diag")


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--cli", required=True, help="the installed v6diag console script")
    ap.add_argument("--expect", action="append", default=[], help="NAME==VERSION that must be in use")
    args = ap.parse_args()
    cli = [str(Path(args.cli).resolve())]
    python = str(Path(args.cli).resolve().parent / "python")
    problems: list[str] = []
    work = Path(tempfile.mkdtemp(prefix="v6diag-examples-"))
    try:
        shutil.copytree(REPO / "pcaps", work / "pcaps")  # a user's folder, not the checkout
        versions = json.loads(subprocess.run([python, "-c", VERSIONS, *DEPS], capture_output=True, text=True,
                                             check=True, cwd=work).stdout)
        print("in use: " + ", ".join(f"{k} {v}" for k, v in versions.items()))
        for want in args.expect:
            name, version = want.split("==")
            if versions.get(name) != version:
                problems.append(f"{name} {versions.get(name)} in use, expected {version}")
        where = subprocess.run([python, "-c", "import v6diag; print(v6diag.__file__)"], capture_output=True,
                               text=True, cwd=work).stdout.strip()
        if str(REPO) in where:
            problems.append(f"v6diag imported from the source tree ({where}), not the installation")
        for name, cmd in CASES:
            rc, got, err = run_json(cli, cmd, work)
            if rc not in (0, 1) or "Traceback" in err:
                problems.append(f"{name}: exit {rc}: {err.strip()[-300:]}")
            elif got != (GOLDEN / f"{name}.json").read_text():
                problems.append(f"{name}: --json differs from tests/golden/{name}.json")
            human = subprocess.run([*cli, *cmd], capture_output=True, text=True, cwd=work, timeout=300)
            if human.returncode != rc or not human.stdout.strip() or "Traceback" in human.stderr:
                problems.append(f"{name}: human output exit {human.returncode} (json {rc}): {human.stderr[-300:]}")
        ebpf = subprocess.run([*cli, "conntrack", "--ebpf"], capture_output=True, text=True, cwd=work)
        first = ebpf.stdout.splitlines()[0] if ebpf.stdout else ""
        if ebpf.returncode or "nf_ct_delete" not in ebpf.stdout or str(REPO) in first:
            problems.append(f"conntrack --ebpf: exit {ebpf.returncode}, from {first!r}: {ebpf.stderr.strip()}")
        oui = subprocess.run([*cli, "--json", "oui", "lookup", "b8:27:eb:00:00:01"], capture_output=True, text=True,
                             cwd=work)
        if oui.returncode or json.loads(oui.stdout)["macs"][0]["vendor"] != "Raspberry Pi Foundation":
            problems.append(f"oui lookup: exit {oui.returncode}: {oui.stdout} {oui.stderr}")
        print(f"{len(CASES)} examples, --json and human, conntrack --ebpf, oui lookup: "
              f"{'all as expected' if not problems else f'{len(problems)} problems'}")
    finally:
        shutil.rmtree(work, ignore_errors=True)
    for p in problems:
        print(f"install tier: {p}", file=sys.stderr)
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
