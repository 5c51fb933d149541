#!/usr/bin/env python3
"""Print pip constraints pinning every dependency of pyproject.toml to its declared
floor (`name==floor`), for the install tier's floors venv; with --python, print the
lowest Python version `requires-python` allows instead."""

from __future__ import annotations

import re
import sys
import tomllib
from pathlib import Path


def floors(pyproject: Path) -> list[str]:
    deps = tomllib.loads(pyproject.read_text())["project"]["dependencies"]
    out = []
    for dep in deps:
        m = re.match(r"^([A-Za-z0-9_.-]+)\s*(?:\[[^]]*\])?\s*(.*)$", dep)
        name, spec = m.group(1), m.group(2)
        floor = re.search(r">=\s*([0-9][0-9A-Za-z.]*)", spec)
        if not floor:
            raise SystemExit(f"{name} has no floor (>=) in pyproject.toml: every dependency needs one")
        out.append(f"{name}=={floor.group(1)}")
    return out


def lowest_python(pyproject: Path) -> str:
    spec = tomllib.loads(pyproject.read_text())["project"]["requires-python"]
    return re.search(r">=\s*([0-9.]+)", spec).group(1)


if __name__ == "__main__":
    path = Path(sys.argv[-1])
    print(lowest_python(path) if "--python" in sys.argv else "\n".join(floors(path)))
