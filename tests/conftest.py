"""Test tiers by directory: tests/unit (no root), tests/integration (root,
network namespaces), tests/kernel (booted stock kernel, later issues).

With CI=true a tier that cannot run here is a failure, not a skip: CI runs as
root with everything `.ci/setup --tests` installs."""

from __future__ import annotations

import os
import shutil
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PCAPS = ROOT / "pcaps"
IN_CI = os.environ.get("CI", "").lower() in ("1", "true", "yes")


def pytest_collection_modifyitems(config, items):
    for item in items:
        tier = Path(str(item.fspath)).relative_to(ROOT / "tests").parts[0]
        if tier in ("unit", "integration", "kernel"):
            item.add_marker(getattr(pytest.mark, tier))


def unavailable(reason: str) -> None:
    """Skip with a reason, or fail under CI where every tier must run."""
    if IN_CI:
        pytest.fail(f"CI=true but {reason}", pytrace=False)
    pytest.skip(reason)


def require_root() -> None:
    if os.geteuid() != 0:
        unavailable("needs root: the test builds its own network namespaces")


def require_tools(*names: str) -> None:
    missing = [n for n in names if shutil.which(n) is None]
    if missing:
        unavailable(f"needs {', '.join(missing)} (bash .ci/setup --tests installs it)")


@pytest.fixture
def v6diag_cmd() -> list[str]:
    """The installed console script, run as a user would."""
    exe = Path(sys.executable).parent / "v6diag"
    return [str(exe)] if exe.exists() else [sys.executable, "-m", "v6diag"]
