"""Which capabilities this process has, checked before anything is opened, and
an error that says it is a privilege problem, grants no more than the options
need, and points to the unprivileged way (a capture, a recording, --no-live)."""

from __future__ import annotations

import os
import shlex
import sys

from v6diag.core.errors import PrivilegeError

CAPABILITIES = {"CAP_NET_BIND_SERVICE": 10, "CAP_NET_ADMIN": 12, "CAP_NET_RAW": 13, "CAP_SYS_ADMIN": 21,
                "CAP_PERFMON": 38, "CAP_BPF": 39}  # include/uapi/linux/capability.h


def effective() -> int:
    """The CapEff bit mask of this process (proc(5))."""
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith("CapEff:"):
                    return int(line.split()[1], 16)
    except (OSError, ValueError):
        pass
    return (1 << 64) - 1 if os.geteuid() == 0 else 0


def missing(caps: list[str]) -> list[str]:
    have = effective()
    return [c for c in caps if not have >> CAPABILITIES[c] & 1]


def require(caps: list[str], action: str, unprivileged: str) -> None:
    """PrivilegeError naming every capability `caps` lists when one is missing."""
    if missing(caps):
        raise error(caps, action, unprivileged)


def error(caps: list[str], action: str, unprivileged: str) -> PrivilegeError:
    names = ",".join(caps)
    argv = shlex.join([os.path.realpath(sys.argv[0]) if sys.argv and sys.argv[0] else "v6diag", *sys.argv[1:]])
    return PrivilegeError(
        " and ".join(caps), action,
        hint=f"a privilege problem, not a network one: run it with sudo, or grant just {names} to this one run: "
             f"`sudo systemd-run --pty --same-dir --uid=$(id -u) -p AmbientCapabilities={names} {argv}`; "
             f"without privileges: {unprivileged}")
