"""bcc, for the commands that load BPF programs (conntrack, drops): what a bcc
program needs on this host, each missing piece named with how to get it (bcc's
own tools do the same), and compiling a program shipped in the package
(v6diag.bpf: bpf/ in the source tree). bcc is imported here, late, so --help
stays instant."""

from __future__ import annotations

import importlib.util
import os
import platform
import sys
import threading
import time
from pathlib import Path

from v6diag.core.errors import UnavailableError

SYSTEM_BCC = ("/usr/lib/python3/dist-packages/bcc", "/usr/lib/python3/site-packages/bcc")


def source(program: str):
    """A program's C source, as shipped: a Traversable (a real file once installed)."""
    from importlib import resources

    return resources.files("v6diag.bpf").joinpath(program)


def missing() -> list[str]:
    """What any bcc program needs: bcc itself and headers of the running kernel."""
    out = []
    release = platform.release()
    headers = os.path.exists(f"/lib/modules/{release}/build")
    try:
        if headers:
            import bcc  # noqa: F401  (python3-bpfcc; the venv sees it through system site-packages)
        elif importlib.util.find_spec("bcc") is None:
            # found, not loaded: libbcc (LLVM) costs ~80 MiB of memory, pointless without headers
            raise ImportError("bcc")
    except ImportError:
        out.append(bcc_missing())
    if not headers:
        out.append(f"kernel headers for {release} are missing (Debian/Ubuntu: apt install linux-headers-{release})")
    return out


def bcc_missing() -> str:
    """Why `import bcc` failed, and the fix: bcc comes with the distribution's
    python3 (python3-bpfcc), and a venv sees it only with system site-packages."""
    installed = any(os.path.isdir(p) for p in SYSTEM_BCC)
    in_venv = sys.prefix != sys.base_prefix
    if installed and in_venv:
        return (f"bcc is installed for the system's python3 but this environment ({sys.prefix}) cannot see it: "
                "recreate it with `python3 -m venv --system-site-packages`, or "
                "`pipx install --system-site-packages v6diag`")
    if installed:
        return (f"bcc is installed for the system's python3, not for this one ({sys.executable}): "
                "run v6diag with /usr/bin/python3 (a venv made with --system-site-packages)")
    return "bcc is not installed (Debian/Ubuntu: apt install python3-bpfcc)"


def ring_buffer_available() -> bool:
    """BPF ring buffers came with Linux 5.8 (and bcc 0.16)."""
    from bcc import BPF

    release = tuple(int(x) for x in platform.release().split("-")[0].split(".")[:2] if x.isdigit())
    return release >= (5, 8) and hasattr(BPF, "ring_buffer_poll")


_COMPILING = threading.Lock()  # serve runs several watchers: bcc loads and frees one program at a time


def compile_program(program: str, cflags: list[str]):
    """The program compiled and loaded (its probes attached by bcc's conventions)."""
    from importlib import resources

    from bcc import BPF

    src = source(program)
    if not src.is_file():
        raise UnavailableError(f"the BPF program {program} is missing from this installation of v6diag",
                               hint="reinstall v6diag (pip install --force-reinstall v6diag)")
    try:
        with resources.as_file(src) as path, _COMPILING:  # bcc compiles from a path
            return BPF(src_file=str(path).encode(), cflags=cflags)
    except Exception as e:  # bcc raises bare Exception on compile/load failures
        raise UnavailableError(f"cannot compile/load {program}: {e}",
                               hint="check that linux-headers-$(uname -r) match the running kernel") from e


def batches(poll, take, deadline: float | None):
    """The event loop every BPF source shares: poll(timeout_ms) fills a pending list
    through the buffer's callback, take() empties it. Yields each non-empty batch,
    None on idle ticks (<= 0.2 s, for progress and stop flags); at the deadline what
    the buffer already holds is still delivered. poll None: the program sends no
    events (--summary), so only ticks until the deadline."""
    draining = False
    while True:
        if deadline is not None and time.monotonic() >= deadline:
            draining = True  # what is already in the buffer is reported, not dropped
        wait = 0 if draining else (200 if deadline is None else
                                   max(10, min(200, int((deadline - time.monotonic()) * 1000))))
        if poll is None:
            if draining:
                return
            time.sleep(wait / 1000)
            yield None
            continue
        poll(timeout=wait)
        batch = take()
        if not batch:
            if draining:
                return
            yield None
            continue
        yield batch


def release(bpf) -> None:
    """Detach and free a program, one at a time like compiling (two watchers
    detaching at once crashed bcc 0.26 in the kernel tier)."""
    with _COMPILING:
        bpf.cleanup()


def modules() -> str:
    """The loaded modules, to notice when bcc's symbol cache is stale."""
    try:
        return " ".join(line.split(" ", 1)[0] for line in Path("/proc/modules").read_text().splitlines())
    except OSError:
        return ""


def forget_symbols() -> None:
    # bcc caches kernel symbols when first used and never rereads them; a module
    # loaded later would then resolve to wrong names. bcc 0.26 has no public
    # refresh: drop its cache.
    from bcc import BPF

    BPF._sym_caches.pop(-1, None)


def supports_fentry() -> bool:
    from bcc import BPF

    return bool(BPF.support_kfunc())


def ksym(address: int, offset: bool = False) -> str:
    """The kernel symbol at an address (bcc's /proc/kallsyms cache)."""
    from bcc import BPF

    return BPF.ksym(address, show_offset=offset).decode(errors="replace")
