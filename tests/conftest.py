"""Test tiers by directory: tests/unit (no root), tests/integration (root,
network namespaces), tests/kernel (booted stock kernel, tests/kernel/vm.sh).

With CI=true a tier that cannot run here is a failure, not a skip: CI runs as
root with everything `.ci/setup --tests` installs.

Two fixtures every test shares: `v6diag_cmd` (how to run the installed CLI) and
`build_lab` / `build_module_lab` (namespace labs, torn down after the test or
the module, pass or fail)."""

from __future__ import annotations

import os
import shutil
import signal
from pathlib import Path

import pytest

from tests.lab import v6diag_command

ROOT = Path(__file__).resolve().parents[1]
PCAPS = ROOT / "pcaps"
IN_CI = os.environ.get("CI", "").lower() in ("1", "true", "yes")


def _terminated(signum, frame):
    raise KeyboardInterrupt


def pytest_configure(config):
    # A run killed by SIGTERM (a CI budget running out, `timeout`) would skip the
    # atexit teardown of every lab and leave its namespaces behind: as Ctrl-C, it
    # ends the session and the labs are deleted on the way out (tests/lab.py).
    signal.signal(signal.SIGTERM, _terminated)


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


def pytest_report_header(config):
    if os.environ.get("V6DIAG_IN_GUEST") != "1":
        return ("kernel tier: not part of a host run (this kernel lacks kprobes, sit, wireguard); "
                "it runs in a booted stock kernel with `bash tests/kernel/vm.sh pytest`")
    return None


@pytest.fixture(scope="session")
def v6diag_cmd() -> list[str]:
    """The installed console script, run as a user would (tests.lab.v6diag_command)."""
    return v6diag_command()


def _lab_builder():
    built = []

    def build(lab):
        built.append(lab)
        return lab.__enter__()

    return build, built


@pytest.fixture
def build_lab():
    """build_lab(SomeLab(...)) -> the built lab; every namespace and process it made
    is gone after the test, whether it passed or failed."""
    build, built = _lab_builder()
    yield build
    for lab in reversed(built):
        lab.close()


@pytest.fixture(scope="module")
def build_module_lab():
    """The same for labs that several tests of a module share (a 32-host LAN)."""
    build, built = _lab_builder()
    yield build
    for lab in reversed(built):
        lab.close()


@pytest.fixture
def serve(v6diag_cmd, tmp_path):
    """serve(*args): `v6diag serve` running until the test ends (tests/serve_lab.py)."""
    from tests.serve_lab import Serve

    started = []

    def start(*args):
        s = Serve(v6diag_cmd, tmp_path, *args)
        started.append(s)
        return s

    yield start
    for s in started:
        if s.proc.poll() is None:
            s.proc.kill()
            s.proc.wait()
