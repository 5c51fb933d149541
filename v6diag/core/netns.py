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


def call_in(name: str, fn, *args):
    """fn(*args) inside namespace `name`, in a short-lived thread (setns changes only
    the calling thread; pyroute2's NetNS would fork a helper process instead)."""
    import threading

    out: dict = {}

    def body():
        try:
            enter(name)
            out["value"] = fn(*args)
        except BaseException as e:  # handed to the caller
            out["error"] = e

    t = threading.Thread(target=body, name=f"netns-{name}", daemon=True)
    t.start()
    t.join()
    if "error" in out:
        raise out["error"]
    return out.get("value")
