"""Network namespaces by name (`ip netns`): the inode the kernel knows one by
(what BPF filters compare), and entering one (netlink sockets and /proc/net then
see that namespace)."""

from __future__ import annotations

import os
import sys
from pathlib import Path

from v6diag.core.errors import PrivilegeError, UnavailableError, UsageError


def inode(name: str) -> int:
    path = Path(f"/run/netns/{name}")
    if not path.exists():
        raise UsageError(f"no such network namespace: {name}", hint="list them with `ip netns list`")
    return os.stat(path).st_ino


def enter(name: str) -> None:
    from pyroute2 import netns

    inode(name)  # a clear error for a name that does not exist
    try:
        netns.setns(name)
    except PermissionError as e:
        raise PrivilegeError("CAP_SYS_ADMIN", f"entering network namespace {name}") from e
    except OSError as e:
        raise UnavailableError(f"cannot enter network namespace {name}: {e.strerror}") from e
    sys.stdout.flush()


def own_inode() -> int:
    return os.stat("/proc/self/ns/net").st_ino


def name_of_inode(ino: int) -> str | None:
    """The `ip netns` name of the namespace with this inode, if it has one."""
    try:
        for entry in os.scandir("/run/netns"):
            try:
                if entry.stat().st_ino == ino:
                    return entry.name
            except OSError:
                continue
    except OSError:
        pass
    return None
