"""JSON on stdout: one document per report, or one object per line for streams."""

from __future__ import annotations

import json
import sys

from v6diag.core.report import to_json


def dumps(obj, stream: bool = False) -> str:
    if stream:
        return json.dumps(obj, separators=(",", ":"), sort_keys=False)
    return json.dumps(obj, indent=2, sort_keys=False)


def emit(report, stream: bool = False) -> None:
    """Print a report (or event) as JSON: a document, or one NDJSON line."""
    print(dumps(to_json(report), stream=stream), flush=True)


class ListFirstStream:
    """Write `{"<key>": [row, row, ...], <rest of the report>}` as rows arrive, so
    a capture with a million flagged packets needs no memory for them."""

    def __init__(self, key: str, out=None):
        self.out = out or sys.stdout
        self.n = 0
        self.out.write(json.dumps(key).join(("{", ": [")))

    def row(self, row) -> None:
        self.out.write(("\n  " if self.n == 0 else ",\n  ") + json.dumps(to_json(row), separators=(",", ":")))
        self.n += 1

    def finish(self, rest) -> None:
        body = json.dumps(to_json(rest), indent=2)
        self.out.write(("\n]" if self.n else "]") + ",\n" + body[1:] + "\n")
        self.out.flush()
