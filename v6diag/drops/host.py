"""Which source of drops this host can give, best first, each missing piece
named on stderr (as `conntrack` does): a BPF program on the tracepoint (flows,
in-kernel filters and counts), tracefs (reasons and locations, host-wide), the
SNMP counters (totals, per namespace)."""

from __future__ import annotations

import os
from dataclasses import dataclass

from v6diag.core.errors import UnavailableError, UsageError

PROBES = ("auto", "bpf", "tracefs", "counters")


@dataclass
class Wanted:
    """What the user asked to see."""

    reasons: list[str]  # kernel names, upper case
    netns: str | None = None
    iface: str | None = None
    proto: int | None = None
    port: int | None = None
    summary_only: bool = False

    def flow_filters(self) -> list[str]:
        return [name for name, v in (("--netns", self.netns), ("--iface", self.iface), ("--proto", self.proto),
                                     ("--port", self.port)) if v is not None]


def open_source(probe: str, wanted: Wanted, err, buffer: str = "auto", pages: int | None = None):
    """(source, what the better sources lacked)."""
    from v6diag.core import tracefs
    from v6diag.drops import bpf

    missing: list[str] = []
    root = fmt = None
    if probe in ("auto", "bpf", "tracefs"):
        try:
            root = tracefs.mount()
            fmt = tracefs.read_format(root)
            if not fmt.has_reason:
                missing.append("this kernel's kfree_skb tracepoint has no drop reason (Linux < 5.17)")
                fmt = None
        except (UnavailableError, OSError) as e:  # PrivilegeError is an UnavailableError's sibling: let it go
            if probe == "tracefs":
                raise
            missing.append(str(e))
    if fmt is not None:
        _check_reasons(wanted.reasons, fmt)
    if probe in ("auto", "bpf") and fmt is not None:
        lacks = bpf.missing()
        if not lacks:
            err.print("compiling and attaching the BPF program on skb:kfree_skb (seconds; a minute or more on "
                      "slow or emulated CPUs)...", highlight=False)
            return bpf.BpfDrops(fmt, wanted, buffer, pages), missing
        missing += lacks
        if probe == "bpf":
            raise UnavailableError("cannot use --probe bpf: " + "; ".join(missing))
    flows = wanted.flow_filters()
    if probe in ("auto", "tracefs") and fmt is not None:
        if not flows:
            if missing:
                err.print("v6diag: " + "; ".join(missing) + "; reading the kfree_skb tracepoint through tracefs "
                          "(reasons and locations, host-wide; flows need the BPF source)",
                          highlight=False, soft_wrap=True)
            from v6diag.drops.sources import TracefsDrops

            numbers = [fmt.number(r) for r in wanted.reasons]
            return TracefsDrops(fmt, root, [n for n in numbers if n is not None] or None), missing
        missing.append(f"{', '.join(flows)} need{'s' if len(flows) == 1 else ''} the BPF source: tracefs sees reasons, not flows")
        if probe == "tracefs":
            raise UnavailableError("; ".join(missing[-1:]))
    if probe in ("auto", "counters"):
        if [f for f in flows if f != "--netns"]:
            raise UnavailableError("; ".join(missing + ["the counters fallback has totals only, no flows"]),
                                   hint="install bcc and kernel headers (apt install python3-bpfcc "
                                        "linux-headers-$(uname -r)) for flows")
        if wanted.netns:
            from v6diag.core import netns

            netns.enter(wanted.netns)
        if missing or probe == "auto":
            err.print("v6diag: " + ("; ".join(missing) + "; " if missing else "")
                      + "reading the SNMP counters (/proc/net/snmp, snmp6, netstat): totals per reason, no "
                      "flows or locations", highlight=False, soft_wrap=True)
        from v6diag.drops.sources import CounterDrops

        return CounterDrops(), missing
    raise UnavailableError("; ".join(missing) or f"--probe {probe} is not available here")


def _check_reasons(names: list[str], fmt) -> None:
    known = set(fmt.reasons.values())
    unknown = [n for n in names if n not in known]
    if unknown:
        import difflib

        close = sorted({m for n in unknown for m in difflib.get_close_matches(n, known, n=3)})
        raise UsageError(f"this kernel has no drop reason {', '.join(unknown)}",
                         hint=("did you mean " + ", ".join(close) + "? " if close else "")
                         + f"it knows {len(known)}: `v6diag drops --list-reasons`")


def is_root() -> bool:
    return os.geteuid() == 0


def firewalls(inodes: set) -> dict:
    """{netns inode: NamespaceFirewall}: each namespace's ruleset and addresses, read
    inside it (the calling namespace directly, named ones by setns in a thread)."""
    from v6diag.core import netns, nft, source_address
    from v6diag.drops.rules import NamespaceFirewall

    def read(name: str | None) -> NamespaceFirewall:
        ruleset, note = nft.ruleset()
        return NamespaceFirewall(ruleset, note, frozenset(a.address for a in source_address.addresses()), name)

    own = netns.own_inode()
    out = {}
    for ino in inodes:
        if ino is None:
            continue
        name = netns.name_of_inode(ino)
        try:
            out[ino] = read(name) if ino == own else netns.call_in(name, read, name) if name else \
                NamespaceFirewall(None, "it has no `ip netns` name to enter it by (a container's: "
                                  "`nsenter -t PID -n nft -a list ruleset`)", frozenset())
        except Exception as e:  # a namespace deleted meanwhile, no privilege...: the drops still stand
            out[ino] = NamespaceFirewall(None, f"{type(e).__name__}: {e}", frozenset(), name)
    return out
