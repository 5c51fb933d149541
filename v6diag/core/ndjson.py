"""Reading back the NDJSON a command wrote with --json: streamed line by line, an
untrusted file, so every failure is one InputError naming the file and line."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import IO

from v6diag.core.errors import InputError


def open_recording(path: Path) -> IO[str]:
    try:
        return open(path, encoding="utf-8", errors="strict")
    except OSError as e:
        raise InputError(f"cannot read {path}: {e.strerror}") from e


def objects(file: IO[str], path: Path, writer: str) -> Iterator[tuple[int, object]]:
    """(line number, parsed JSON) for every non-blank line; `writer` names the
    command whose --json the file should hold (for the hint)."""
    try:
        for n, line in enumerate(file, 1):
            if not line.strip():
                continue
            try:
                yield n, json.loads(line)
            except ValueError as e:
                raise InputError(f"{path}:{n}: not a JSON line ({e.msg})",
                                 hint=f"expected the NDJSON that `{writer} --json` writes") from e
    except UnicodeDecodeError as e:
        raise InputError(f"{path}: not UTF-8 text (byte {e.start})") from e
