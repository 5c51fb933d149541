"""Which source of destroy events this host can give, best first, and the
namespace plumbing: a BPF probe on nf_ct_delete (the why), else ctnetlink
DESTROY events (the what), each missing piece named on stderr."""

from __future__ import annotations

import os

from v6diag.core.errors import PrivilegeError, UnavailableError

PROBES = ("auto", "kprobe", "fentry", "netlink")


def open_source(probe: str, kfilter, netns: str | None, err, buffer: str = "auto", summary_only: bool = False,
                pages: int | None = None):
    """(event source, mode, what the BPF path lacks). Explicit --probe kprobe/fentry
    fails when impossible; auto falls back to netlink and says why."""
    from v6diag.conntrack import bpf
    from v6diag.core import privilege

    # privileges first: they, not the kernel, are what a non-root user lacks
    needed = ["CAP_NET_ADMIN"] + (["CAP_SYS_ADMIN"] if netns else [])
    root_only = "the BPF probe needs root (CAP_SYS_ADMIN, CAP_BPF, CAP_PERFMON)"
    if os.geteuid() != 0:
        if probe in ("kprobe", "fentry"):
            raise privilege.error(["CAP_SYS_ADMIN", "CAP_BPF", "CAP_PERFMON"], f"the {probe} probe",
                                  "`v6diag conntrack --from FILE` explains events recorded with --json")
        privilege.require(needed, "watching conntrack (netlink events; " + root_only + ")",
                          "`v6diag conntrack --from FILE` explains events recorded with --json")
        probe = "netlink"
        err.print(f"v6diag: {root_only}; using conntrack netlink DESTROY events (what is destroyed, not why)",
                  highlight=False, soft_wrap=True)
    missing: list[str] = []
    if probe != "netlink":
        missing = bpf.missing_for_bcc()
        # fentry needs bcc and headers as much as kprobe does; asking bcc about
        # trampolines loads libbcc (~80 MiB), pointless when it cannot compile
        have_bcc = not missing
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
                return bpf.BpfDeleteEvents(mode, kfilter, buffer, summary_only, pages), mode, []
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
    from v6diag.core import netns

    return netns.inode(name)


def enter_netns(name: str) -> None:
    # ctnetlink reports only the namespace its socket lives in
    from v6diag.core import netns

    netns.enter(name)


EVENTS_SYSCTL = "/proc/sys/net/netfilter/nf_conntrack_events"


def netlink_blind_spots() -> list:
    """What the netlink fallback cannot have seen, as findings. With
    nf_conntrack_events=2 (the default since 6.x) the kernel attaches its event
    cache to an entry only while a listener exists (nf_conntrack_ecache.c), so
    entries created before the watch began die unreported."""
    from v6diag.core.report import Finding

    try:
        value = int(open(EVENTS_SYSCTL).read().strip())
    except (OSError, ValueError):
        return []
    if value == 1:
        return []
    what = "are never reported" if value == 2 else "are not reported at all (events are off)"
    return [Finding.warning(
        "conntrack-events-listener-only",
        f"entries created before this watch began {what} destroyed: the kernel adds its event cache to an "
        "entry only while a listener exists" if value == 2 else
        f"conntrack events are switched off: destroyed entries {what}",
        evidence=f"net.netfilter.nf_conntrack_events = {value}",
        fix="sysctl -w net.netfilter.nf_conntrack_events=1 (entries made from then on carry events), or the BPF "
            "probe, which sees every entry")]
