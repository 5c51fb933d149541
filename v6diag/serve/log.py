"""One line per state change on stderr: `key=value` text for people, JSON lines
(--log-format json) for a cluster's log collector."""

from __future__ import annotations

import json
import sys
import threading
import time

FORMATS = ("text", "json")


class StateLog:
    def __init__(self, fmt: str = "text", stream=None):
        self.fmt, self.stream = fmt, stream or sys.stderr
        self._lock = threading.Lock()  # watcher threads log concurrently: whole lines only

    def __call__(self, event: str, **fields) -> None:
        now = time.time()
        if self.fmt == "json":
            stamp = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(now)) + f".{int(now % 1 * 1000):03d}Z"
            line = json.dumps({"time": stamp, "event": event, **fields}, default=str)
        else:
            words = " ".join(f"{k}={_quoted(v)}" for k, v in fields.items())
            line = f"{time.strftime('%H:%M:%S', time.localtime(now))} v6diag serve: {event} {words}".rstrip()
        with self._lock:
            print(line, file=self.stream, flush=True)


def _quoted(value) -> str:
    text = str(value)
    return json.dumps(text) if not text or any(c in text for c in ' "=') else text
