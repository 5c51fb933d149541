"""Which source of destroy events this host can give, best first, and the
namespace plumbing: a BPF probe on nf_ct_delete (the why), else ctnetlink
DESTROY events (the what), each missing piece named on stderr."""

from __future__ import annotations

import os
import sys
from pathlib import Path

from v6diag.core.errors import PrivilegeError, UnavailableError, UsageError

PROBES = ("auto", "kprobe", "fentry", "netlink")


def open_source(probe: str, kfilter, netns: str | None, err):
    """(event source, mode, what the BPF path lacks). Explicit --probe kprobe/fentry
    fails when impossible; auto falls back to netlink and says why."""
    from v6diag.conntrack import bpf

    missing: list[str] = []
    if probe != "netlink":
        missing = bpf.missing_for_bcc()
        have_bcc = not any(m.startswith("bcc ") for m in missing)
        mode, tried = probe, ""
        if probe == "auto":
            if bpf.kprobes_available():
                mode = "kprobe"
            elif have_bcc and not bpf.fentry_blocker():
                mode, tried = "fentry", bpf.NO_KPROBES + "; tried fentry instead"
            else:
                missing.insert(0, bpf.NO_KPROBES + (f"; {bpf.fentry_blocker()}" if have_bcc else ""))
        elif probe == "kprobe" and not bpf.kprobes_available():
            missing.insert(0, bpf.NO_KPROBES)
        elif probe == "fentry" and have_bcc and bpf.fentry_blocker():
            missing.insert(0, bpf.fentry_blocker())
        if not missing:
            if os.geteuid() != 0:
                raise PrivilegeError("CAP_BPF and CAP_PERFMON (or root)", "loading the BPF probe")
            try:
                if bpf.ensure_conntrack_loaded():
                    err.print("v6diag: loaded nf_conntrack (nf_ct_delete lives there)", highlight=False)
                err.print(f"compiling and attaching the {mode} probe on nf_ct_delete "
                          "(seconds; a minute or more on slow or emulated CPUs)...", highlight=False)
                return bpf.BpfDeleteEvents(mode, kfilter), mode, []
            except UnavailableError as e:
                if probe != "auto":
                    raise
                missing += [tried, str(e)] if tried else [str(e)]
        elif probe != "auto":
            raise UnavailableError(f"cannot use --probe {probe}: " + "; ".join(missing))
        elif tried:
            missing.insert(0, bpf.NO_KPROBES)
    if missing:
        err.print("v6diag: " + "; ".join(missing) + "; falling back to conntrack netlink DESTROY events "
                  "(what is destroyed, not why)", highlight=False, soft_wrap=True)
    if netns:
        enter_netns(netns)
    from v6diag.conntrack.ctnetlink import DestroyEvents

    return DestroyEvents(), "netlink", missing


def netns_inode(name: str) -> int:
    """The inode that names a namespace in the kernel (what the BPF filter compares)."""
    path = Path(f"/run/netns/{name}")
    if not path.exists():
        raise UsageError(f"no such network namespace: {name}", hint="list them with `ip netns list`")
    return os.stat(path).st_ino


def enter_netns(name: str) -> None:
    # ctnetlink reports only the namespace its socket lives in
    from pyroute2 import netns

    try:
        netns.setns(name)
    except PermissionError as e:
        raise PrivilegeError("CAP_SYS_ADMIN", f"entering network namespace {name}") from e
    except OSError as e:
        raise UnavailableError(f"cannot enter network namespace {name}: {e.strerror}") from e
    sys.stdout.flush()
