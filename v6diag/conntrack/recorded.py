"""Events recorded earlier by `v6diag conntrack --json` (NDJSON), read back so a
capture of destructions taken on a router can be explained anywhere, without
root. Lines are streamed; a file is untrusted input: every field is checked."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

from v6diag.conntrack.report import DestroyEvent
from v6diag.core import ndjson
from v6diag.core.errors import InputError

TUPLE_KEYS = ("src", "dst", "sport", "dport", "proto")


class RecordedEvents:
    lost = 0

    def __init__(self, path: Path):
        self.path = path
        self._file = ndjson.open_recording(path)
        self.modes: set[str] = set()

    def events(self, deadline=None) -> Iterator[DestroyEvent]:
        for n, obj in ndjson.objects(self._file, self.path, "v6diag conntrack"):
            if isinstance(obj, dict) and obj.get("summary"):
                self.lost += int(obj.get("lost") or 0) if isinstance(obj.get("lost"), int) else 0
                continue
            yield self._checked(obj, n)

    def _checked(self, obj, n: int) -> DestroyEvent:
        def bad(what: str):
            return InputError(f"{self.path}:{n}: {what}", hint="expected the NDJSON that `v6diag conntrack --json` writes")

        if not isinstance(obj, dict):
            raise bad("not a JSON object")
        for key in ("orig", "reply"):
            t = obj.get(key)
            if not isinstance(t, dict) or not all(isinstance(t.get(k), (str, int, type(None))) for k in TUPLE_KEYS):
                raise bad(f"'{key}' is not a conntrack tuple")
        stack, status = obj.get("stack", []), obj.get("status", [])
        if not isinstance(stack, list) or not all(isinstance(f, str) for f in stack):
            raise bad("'stack' is not a list of function names")
        if not isinstance(status, list) or not all(isinstance(s, str) for s in status):
            raise bad("'status' is not a list of status names")
        if not isinstance(obj.get("time", 0), (int, float)) or not isinstance(obj.get("mark", 0), int):
            raise bad("'time' or 'mark' is not a number")
        obj.setdefault("mark", 0)
        obj.setdefault("time", 0)
        obj.setdefault("status", [])  # printed with every event; a hand-made line may lack it
        obj.setdefault("proto", obj["orig"].get("proto"))
        self.modes.add(str(obj.get("mode") or "recorded"))
        return obj

    def close(self) -> None:
        self._file.close()
