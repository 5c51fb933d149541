"""One watcher thread: open a source (the same ones the commands use, with their
fallbacks), feed the metrics, and when the source fails say so, show it down and
open it again with back-off, while the other watchers keep serving."""

from __future__ import annotations

import threading
import time

from v6diag.core.errors import V6diagError

BACKOFF_S = (1.0, 60.0)  # first retry, longest wait between retries
TICK_S = 0.2  # how often a session looks at the stop flag (the sources tick at 0.2 s)


class Notes:
    """What a source's opener says on stderr ("falling back to ...") as log lines."""

    def __init__(self, log, watch: str):
        self.log, self.watch = log, watch

    def print(self, *parts, **_ignored) -> None:
        self.log("note", watch=self.watch, message=" ".join(str(p) for p in parts).removeprefix("v6diag: "))


class Deltas:
    """Totals a source reports as running sums (lost events, SNMP counters, verdict
    counts) turned into counter increments: what rose since the last reading."""

    def __init__(self):
        self._last: dict = {}

    def rise(self, key, total: int) -> int:
        last = self._last.get(key, 0)
        if total <= last:
            return 0
        self._last[key] = total
        return total - last


class Session:
    """An open source. `step` handles what arrived (returning within ~TICK_S) and
    raises when the source is gone; `close` detaches it."""

    source = "none"

    def step(self) -> None:
        raise NotImplementedError

    def close(self) -> None:
        pass


class Watcher(threading.Thread):
    def __init__(self, name: str, metrics, log, stop: threading.Event, netns: str | None = None):
        super().__init__(name=f"watch-{name}", daemon=True)
        self.watch, self.metrics, self.log, self.stop, self.netns = name, metrics, log, stop, netns
        self.state = "starting"
        self._up_source: str | None = None

    def open(self) -> Session:
        raise NotImplementedError

    def _count_lost(self, n: int) -> None:
        if n:  # the series appears with the first loss, as every other label set does
            self.metrics.lost.labels(self.watch).inc(n)

    def run(self) -> None:
        delay = BACKOFF_S[0]
        while not self.stop.is_set():
            session = None
            try:
                if self.netns:
                    from v6diag.core import netns

                    netns.enter(self.netns)  # this thread only (setns is per thread)
                    entered = netns.inode(self.netns)
                session = self.open()
                self._set_up(session.source)
                began = time.monotonic()
                while not self.stop.is_set():
                    session.step()
                    if self.netns:
                        self._check_netns(entered)
                    if time.monotonic() - began > delay:
                        delay = BACKOFF_S[0]  # up long enough: the next failure retries soon again
            except V6diagError as e:
                self._set_down(e.message if hasattr(e, "message") else str(e))
            except Exception as e:  # a source that dies must not take the server with it
                self._set_down(f"{type(e).__name__}: {e}")
            finally:
                if session is not None:
                    try:
                        session.close()
                    except Exception as e:
                        self.log("close-failed", watch=self.watch, error=f"{type(e).__name__}: {e}")
            if self.stop.wait(delay):
                break
            delay = min(delay * 2, BACKOFF_S[1])
        self._set_down("stopping", final=True)

    def _check_netns(self, entered: int) -> None:
        from v6diag.core import netns

        try:
            now = netns.inode(self.netns)
        except V6diagError:
            now = None
        if now != entered:
            raise V6diagError(f"network namespace {self.netns} was deleted" if now is None else
                              f"network namespace {self.netns} was replaced by a new one")

    def _set_up(self, source: str) -> None:
        self._up_source = source
        self.metrics.up.labels(self.watch, source).set(1)
        self.state = "up"
        self.log("up", watch=self.watch, source=source)

    def _set_down(self, why: str, final: bool = False) -> None:
        if self._up_source is not None:
            self.metrics.up.labels(self.watch, self._up_source).set(0)
        elif not final:
            self.metrics.up.labels(self.watch, "none").set(0)
        if self.state != "down" or final:
            self.log("stopped" if final else "down", watch=self.watch, reason=why)
        self.state = "down"
