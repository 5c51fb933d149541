"""Run one command the way the benches compare tools: wall time, the child's own
peak RSS, and a count made from its stdout."""

from __future__ import annotations

import subprocess
import sys
import tempfile
import time


# Fork and wait4 from a small process: on exec, Linux folds the old mm's RSS
# high-water mark into the child's ru_maxrss, so a child forked straight from this
# (large) bench process would inherit our own peak (kernel/exec.c exec_mmap).
MEASURE = """
import os, sys
pid = os.fork()
if pid == 0:
    fd = os.open(os.devnull, os.O_WRONLY)
    os.dup2(fd, 2)
    os.execvp(sys.argv[1], sys.argv[1:])
_, status, usage = os.wait4(pid, 0)
sys.stderr.write(f"{usage.ru_maxrss} {os.waitstatus_to_exitcode(status)}")
"""


def measure(cmd: list[str], count) -> tuple[float, int, int]:
    """(wall seconds, peak RSS MiB, count(stdout file)) of one child."""
    out = tempfile.TemporaryFile()
    t = time.monotonic()
    proc = subprocess.run([sys.executable, "-c", MEASURE, *cmd], stdout=out, stderr=subprocess.PIPE, text=True)
    wall = time.monotonic() - t
    maxrss_kib, _rc = proc.stderr.split()
    out.seek(0)
    return wall, int(maxrss_kib) // 1024, count(out)
