"""The kernel's own drop reasons through tracefs, with no BPF: the `skb:kfree_skb`
tracepoint (include/trace/events/skb.h) carries `reason` (enum skb_drop_reason,
Linux 5.17+) and, from 6.3, the symbol of the freeing function.

Reason names and numbers are read from the running kernel's format file (the
`__print_symbolic` table of its print fmt), never from a table in the code: the
enum is renumbered between versions and by backports. Everything happens in a
private trace instance (instances/v6diag-*), so the global trace buffer and
whatever else traces on this host are left alone; the instance is removed on close.
"""

from __future__ import annotations

import os
import re
import select
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from v6diag.core.errors import PrivilegeError, UnavailableError

MOUNTS = (Path("/sys/kernel/tracing"), Path("/sys/kernel/debug/tracing"))
EVENT = "events/skb/kfree_skb"
_SYMBOLIC = re.compile(r'\{\s*(\d+)\s*,\s*"([A-Za-z0-9_]+)"\s*\}')
# "<task>-<pid> [cpu] flags ts: kfree_skb: skbaddr=... [rx_sk=...] protocol=N location=X reason: NAME"
_LINE = re.compile(r"^\s*(?P<task>.+?)-(?P<pid>\d+)\s+\[(?P<cpu>\d+)\]\s+\S*\s*(?P<ts>\d+\.\d+):\s+kfree_skb:\s+"
                   r"(?P<fields>.*)$")
_FIELD = re.compile(r"(\w+)[=:]\s*(\S+)")


def root() -> Path | None:
    for path in MOUNTS:
        if (path / "events").is_dir():
            return path
    return None


def mount() -> Path:
    """tracefs, mounted if it is not (root only): how every tracing tool starts."""
    found = root()
    if found is not None:
        return found
    if os.geteuid() != 0:
        raise PrivilegeError("root (or CAP_SYS_ADMIN)", "reading the kernel's drop reasons from tracefs",
                             hint="run with sudo, or mount tracefs: sudo mount -t tracefs nodev /sys/kernel/tracing")
    import subprocess

    try:
        os.makedirs(MOUNTS[0], exist_ok=True)
        rc = subprocess.run(["mount", "-t", "tracefs", "nodev", str(MOUNTS[0])], capture_output=True).returncode
    except OSError:
        rc = 1
    if rc != 0 or root() is None:
        raise UnavailableError("tracefs is not mounted and cannot be mounted here",
                               hint="mount -t tracefs nodev /sys/kernel/tracing (CONFIG_TRACING)")
    return MOUNTS[0]


@dataclass(frozen=True)
class DropFormat:
    """What this kernel's kfree_skb tracepoint carries."""

    reasons: dict[int, str]  # number -> name (SKB_DROP_REASON_ without the prefix)
    has_reason: bool  # Linux 5.17+
    symbolic_location: bool  # %pS (6.3+): the freeing function by name; else a hashed pointer

    def number(self, name: str) -> int | None:
        name = name.upper()
        return next((n for n, v in self.reasons.items() if v == name), None)


def parse_format(text: str) -> DropFormat:
    """The tracepoint's format file -> reasons, fields. Tolerant: a malformed or
    foreign file gives an empty table, never an exception."""
    has_reason = bool(re.search(r"field:[^;]*\breason;", text))
    fmt = text[text.find("print fmt:"):] if "print fmt:" in text else ""
    reasons = {int(n): name for n, name in _SYMBOLIC.findall(fmt) if int(n) < 1 << 16}
    reasons = {n: v for n, v in reasons.items() if v != "MAX"}  # the enum's end marker
    return DropFormat(reasons, has_reason, "location=%pS" in fmt)


def read_format(tracing: Path) -> DropFormat:
    path = tracing / EVENT / "format"
    try:
        return parse_format(path.read_text())
    except FileNotFoundError:
        raise UnavailableError("this kernel has no skb:kfree_skb tracepoint (CONFIG_TRACEPOINTS)") from None
    except PermissionError as e:
        raise PrivilegeError("root", f"reading {path}") from e


@dataclass(frozen=True)
class DropLine:
    """One kfree_skb event as tracefs prints it."""

    ts: float  # seconds of CLOCK_MONOTONIC (the instance's trace_clock is "mono")
    task: str  # the task that was running (softirqs run in whoever was interrupted)
    pid: int
    cpu: int
    protocol: int  # skb->protocol: EtherType (0x86dd IPv6, 0x0800 IPv4, 0x0806 ARP)
    location: str | None  # "udp_queue_rcv_one_skb+0x2f5/0x6b0"; None when the kernel hashes it
    reason: str  # the kernel's name, e.g. UDP_CSUM


def parse_line(line: str) -> DropLine | None:
    """A trace_pipe line, or None for anything else (comments, other events,
    garbage): hostile or truncated input never raises."""
    m = _LINE.match(line)
    if not m:
        return None
    fields = dict(_FIELD.findall(m.group("fields")))
    reason = fields.get("reason")
    if reason is None or not re.fullmatch(r"[A-Za-z0-9_]+", reason):
        return None
    try:
        protocol = int(fields.get("protocol", "0"))
    except ValueError:
        protocol = 0
    location = fields.get("location")
    if location is not None and (location.startswith("0x") or re.fullmatch(r"[0-9a-f]{8,16}", location)):
        location = None  # %p: a hashed pointer says nothing
    return DropLine(float(m.group("ts")), m.group("task").strip(), int(m.group("pid")), int(m.group("cpu")),
                    protocol, location, reason)


class DropTrace:
    """kfree_skb in a private instance, filtered in the kernel on the reasons asked
    for (and the protocol), read line by line from its trace_pipe."""

    def __init__(self, tracing: Path, fmt: DropFormat, reasons: list[int] | None = None,
                 protocols: list[int] | None = None, buffer_kb: int = 4096):
        self.fmt = fmt
        self.dir = tracing / "instances" / f"v6diag-drops-{os.getpid()}-{time.monotonic_ns() % 100000}"
        try:
            self.dir.mkdir()
        except PermissionError as e:
            raise PrivilegeError("root", "creating a trace instance") from e
        except OSError as e:
            raise UnavailableError(f"cannot create a trace instance: {e.strerror}") from e
        self._pipe = None
        try:
            (self.dir / "buffer_size_kb").write_text(str(buffer_kb))
            # CLOCK_MONOTONIC stamps (trace_clock "mono"), so events map onto wall time
            (self.dir / "trace_clock").write_text("mono")
            clauses = []
            if reasons:
                clauses.append("(" + " || ".join(f"reason == {n}" for n in sorted(set(reasons))) + ")")
            if protocols:
                clauses.append("(" + " || ".join(f"protocol == {p}" for p in sorted(set(protocols))) + ")")
            if clauses:
                (self.dir / EVENT / "filter").write_text(" && ".join(clauses))
            (self.dir / EVENT / "enable").write_text("1")
            self._pipe = os.open(self.dir / "trace_pipe", os.O_RDONLY | os.O_NONBLOCK)
        except BaseException:
            self.close()
            raise
        self._partial = b""

    def lines(self, deadline: float | None) -> Iterator[DropLine | None]:
        """Events until `deadline` (time.monotonic()); None on idle ticks."""
        while True:
            wait = 0.2 if deadline is None else min(0.2, deadline - time.monotonic())
            if wait <= 0:
                yield from self._drain()
                return
            ready, _, _ = select.select([self._pipe], [], [], wait)
            if not ready:
                yield None
                continue
            got = list(self._drain())
            yield from got if got else [None]

    def _drain(self) -> Iterator[DropLine]:
        while True:
            try:
                chunk = os.read(self._pipe, 1 << 16)
            except BlockingIOError:
                return
            if not chunk:
                return
            data = self._partial + chunk
            *whole, self._partial = data.split(b"\n")
            for raw in whole:
                parsed = parse_line(raw.decode(errors="replace"))
                if parsed is not None:
                    yield parsed

    def lost(self) -> int:
        """Events the instance's buffer overwrote before they were read (per-CPU stats)."""
        total = 0
        for stats in (self.dir / "per_cpu").glob("cpu*/stats"):
            try:
                for line in stats.read_text().splitlines():
                    if line.startswith("overrun:"):
                        total += int(line.split(":")[1])
            except (OSError, ValueError):
                continue
        return total

    def close(self) -> None:
        if self._pipe is not None:
            os.close(self._pipe)
            self._pipe = None
        try:
            (self.dir / EVENT / "enable").write_text("0")
        except OSError:
            pass
        for _ in range(50):  # the instance is busy until the kernel lets go of the pipe
            try:
                self.dir.rmdir()
                return
            except FileNotFoundError:
                return
            except OSError:
                time.sleep(0.02)
