"""JSON output: one document per report, or one object per line for streams."""

from __future__ import annotations

import json


def dumps(obj: dict, stream: bool = False) -> str:
    if stream:
        return json.dumps(obj, separators=(",", ":"), sort_keys=False)
    return json.dumps(obj, indent=2, sort_keys=False)
