"""A progress bar on stderr while a capture is read: shown only when reading takes
longer than about a second, only when stderr is a terminal, and never when JSON
goes to a pipe (a script is reading; its terminal is not the user's)."""

from __future__ import annotations

import sys
import time

from v6diag.core.capture import CaptureReader
from v6diag.core.console import stderr

DELAY_S = 1.0  # small captures finish before anything is drawn


class CaptureProgress:
    def __init__(self, label: str, enabled: bool):
        self.label, self.enabled = label, enabled
        self.started = time.monotonic()
        self.bar = None
        self.task = None

    def __call__(self, done: int, size: int | None, packets: int) -> None:
        if not self.enabled or time.monotonic() - self.started < DELAY_S:
            return
        if self.bar is None:
            from rich.progress import (BarColumn, Progress, TaskProgressColumn, TextColumn, TimeElapsedColumn,
                                       TimeRemainingColumn)

            self.bar = Progress(TextColumn("{task.description}"), BarColumn(), TaskProgressColumn(),
                                TextColumn("{task.fields[packets]} packets, {task.fields[rate]}/s"),
                                TimeElapsedColumn(), TimeRemainingColumn(), console=stderr(), transient=True)
            self.task = self.bar.add_task(self.label, total=size, completed=done, packets=f"{packets:,}", rate="")
            self.bar.start()
        elapsed = max(time.monotonic() - self.started, 1e-6)
        self.bar.update(self.task, completed=done, packets=f"{packets:,}", rate=f"{packets / elapsed:,.0f}")

    def close(self) -> None:
        if self.bar is not None:
            self.bar.stop()
            self.bar = None


def show_progress(as_json: bool) -> bool:
    return sys.stderr.isatty() and not (as_json and not sys.stdout.isatty())


def open_capture(path: str, as_json: bool = False) -> tuple[CaptureReader, CaptureProgress]:
    """A reader of `path` ('-' = stdin) with a progress bar attached when useful."""
    progress = CaptureProgress(f"reading {path}", show_progress(as_json))
    return CaptureReader(path, on_progress=progress), progress


def finish(reader: CaptureReader, progress: CaptureProgress) -> None:
    """Clear the bar; a capture cut short is analysed, and said so on stderr too."""
    progress.close()
    if reader.problem and reader.count:  # with no packet at all the reader raised DataError
        stderr().print(f"v6diag: warning: {reader.problem}", highlight=False, soft_wrap=True, markup=False)
