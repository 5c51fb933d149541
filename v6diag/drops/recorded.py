"""Drops recorded earlier by `v6diag drops --json` (NDJSON), read back anywhere
without root. Lines are streamed; a file is untrusted input: every field is checked."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

from v6diag.core import ndjson
from v6diag.core.errors import InputError
from v6diag.drops.report import DropEvent

STRINGS = ("location", "family", "proto", "src", "dst", "ifname")
INTS = ("sport", "dport", "netns")


class RecordedDrops:
    name = "recorded"

    def __init__(self, path: Path):
        self.path = path
        self._file = ndjson.open_recording(path)
        self.lost = 0

    def events(self, deadline=None) -> Iterator[DropEvent]:
        for n, obj in ndjson.objects(self._file, self.path, "v6diag drops"):
            if isinstance(obj, dict) and isinstance(obj.get("summary"), dict):
                lost = obj["summary"].get("lost")
                self.lost += lost if isinstance(lost, int) else 0
                continue
            yield self._checked(obj, n)

    def _checked(self, obj, n: int) -> DropEvent:
        def bad(what: str):
            return InputError(f"{self.path}:{n}: {what}", hint="expected the NDJSON that `v6diag drops --json` writes")

        if not isinstance(obj, dict):
            raise bad("not a JSON object")
        if not isinstance(obj.get("reason"), str) or not obj["reason"]:
            raise bad("no 'reason'")
        if not isinstance(obj.get("time", 0), (int, float)) or isinstance(obj.get("time"), bool):
            raise bad("'time' is not a number")
        for k in STRINGS:
            if not isinstance(obj.get(k), (str, type(None))):
                raise bad(f"'{k}' is not a string")
        for k in INTS:
            if not isinstance(obj.get(k), (int, type(None))) or isinstance(obj.get(k), bool):
                raise bad(f"'{k}' is not a number")
        if not isinstance(obj.get("inner"), (dict, type(None))):
            raise bad("'inner' is not an object")
        obj.setdefault("time", 0)
        return obj

    def dropped(self) -> int:
        return self.lost

    def counts(self):
        return None

    def close(self) -> None:
        self._file.close()
