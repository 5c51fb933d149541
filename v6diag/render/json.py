"""JSON output: one document per report, or one object per line for streams."""

from __future__ import annotations

import json


def dumps(obj: dict, stream: bool = False) -> str:
    if stream:
        return json.dumps(obj, separators=(",", ":"), sort_keys=False)
    return json.dumps(obj, indent=2, sort_keys=False)


class FlaggedStream:
    """Write `{"flagged": [row, row, ...], <rest of the report>}` as rows arrive,
    so a capture with a million flagged packets needs no memory for them."""

    def __init__(self, out):
        self.out = out
        self.n = 0
        out.write('{"flagged": [')

    def row(self, row) -> None:
        self.out.write(("\n  " if self.n == 0 else ",\n  ") + json.dumps(row.to_json(), separators=(",", ":")))
        self.n += 1

    def finish(self, rest: dict) -> None:
        body = json.dumps(rest, indent=2)
        self.out.write(("\n]" if self.n else "]") + ",\n" + body[1:] + "\n")
        self.out.flush()
