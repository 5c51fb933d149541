"""Checks of the options several commands share, so each is refused in the same
words everywhere (exit 2)."""

from __future__ import annotations

from v6diag.core.errors import UsageError

BUFFERS = ("auto", "ring", "perf")  # BPF event buffers: a ring buffer on 5.8+, the perf buffer elsewhere


def duration(seconds: float | None) -> None:
    if seconds is not None and not 0 < seconds <= 86400:
        raise UsageError("--duration must be between 0 and 86400 seconds")


def port(number: int | None) -> None:
    if number is not None and not 0 < number < 65536:
        raise UsageError("--port must be 1-65535")


def event_buffer(kind: str, pages: int | None) -> None:
    if kind not in BUFFERS:
        raise UsageError(f"--buffer must be one of {', '.join(BUFFERS)}")
    if pages is not None and (pages < 1 or pages & (pages - 1)):
        raise UsageError("--buffer-pages must be a power of two")
