"""The shape holds (README "Layout"): commands never import each other, core
imports no command, and only named modules touch sockets, netlink, bcc or other
programs. The contracts live in pyproject.toml; import-linter checks them."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

from tests.conftest import ROOT, unavailable


def test_import_contracts_are_kept():
    exe = Path(sys.executable).parent / "lint-imports"
    if not exe.exists() and not shutil.which("lint-imports"):
        unavailable("needs import-linter (pip install -e '.[test]')")
    r = subprocess.run([str(exe) if exe.exists() else "lint-imports", "--no-cache"], capture_output=True, text=True,
                       cwd=ROOT, timeout=120)
    assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-2000:]
    assert "0 broken" in r.stdout
