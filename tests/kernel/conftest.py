"""The kernel tier runs only inside the stock-kernel guest that
`bash tests/kernel/vm.sh pytest` boots (V6DIAG_IN_GUEST=1 there). On the host
these modules are not collected at all: this VM's kernel lacks kprobes, sit and
wireguard, and the README's test command runs the guest as its own step."""

from __future__ import annotations

import json
import os
import re
from pathlib import Path

import pytest

IN_GUEST = os.environ.get("V6DIAG_IN_GUEST") == "1"
if not IN_GUEST:
    collect_ignore_glob = ["test_*.py"]

RESULTS = Path(os.environ.get("V6DIAG_RESULTS", "/tmp/v6diag-kernel-results"))


def record_fixture(name: str, data) -> Path:
    """Write what a real run produced (events, stacks) where the host can pick it
    up: the guest's root is read-only, V6DIAG_RESULTS is vng's --rwdir."""
    path = RESULTS / "fixtures" / f"{re.sub(r'[^a-z0-9-]+', '-', name.lower())}.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(data, indent=1, sort_keys=True) + "\n")
    return path


@pytest.fixture(scope="session")
def results_dir() -> Path:
    RESULTS.mkdir(parents=True, exist_ok=True)
    return RESULTS
