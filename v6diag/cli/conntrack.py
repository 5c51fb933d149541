"""`v6diag conntrack`: explain why the kernel destroys conntrack entries.

A bcc program (bpf/conntrack_delete.c) on nf_ct_delete gives each destruction's
kernel stack and the entry's state; analyse.conntrack names the cause. Where the
BPF path cannot run, say exactly what is missing and fall back to ctnetlink
DESTROY events (what was destroyed, cause "unknown")."""

from __future__ import annotations

import os
import sys
import time
from pathlib import Path
from typing import Optional

import typer

from v6diag.cli.app import Options, app, stderr, stdout
from v6diag.errors import EXIT_OK, PrivilegeError, UnavailableError, UsageError

PROBES = ("auto", "kprobe", "fentry", "netlink")
PROTO_NUMBERS = {"icmp": 1, "tcp": 6, "udp": 17, "icmpv6": 58, "sctp": 132, "udplite": 136, "gre": 47}


@app.command()
def conntrack(
    ctx: typer.Context,
    src: Optional[str] = typer.Option(None, "--src", help="Only entries from this address."),
    dst: Optional[str] = typer.Option(None, "--dst", help="Only entries to this address."),
    port: Optional[int] = typer.Option(None, "--port", help="Only entries with this port on either side."),
    proto: Optional[str] = typer.Option(None, "--proto", help="tcp, udp, icmp, icmpv6..."),
    mark: Optional[int] = typer.Option(None, "--mark", help="Only entries with this conntrack mark."),
    netns: Optional[str] = typer.Option(None, "--netns", help="Only this network namespace (ip netns name)."),
    show_all: bool = typer.Option(False, "--all", help="Also print expected noise (timeouts) line by line."),
    duration: Optional[float] = typer.Option(None, "--duration", "-d", help="Seconds to watch (default: until Ctrl-C)."),
    ready_file: Optional[Path] = typer.Option(None, "--ready-file", help="Create this file once probes are attached."),
    probe: str = typer.Option("auto", "--probe", help="auto, kprobe, fentry, or netlink (no cause)."),
    replay: Optional[Path] = typer.Option(None, "--from", help="Explain events recorded earlier with --json (no root)."),
    ebpf: bool = typer.Option(False, "--ebpf", hidden=True, help="Print the BPF C file and cflags, then exit."),
    json_out: bool = typer.Option(False, "--json", help="NDJSON: one object per event, then a summary."),
) -> int:
    """Watch conntrack entries being destroyed and say why."""
    from v6diag.analyse.conntrack import Filter, Summary
    from v6diag.sources import conntrack_bpf

    opts: Options = ctx.obj
    as_json = json_out or opts.json
    if duration is not None and not 0 < duration <= 86400:
        raise UsageError("--duration must be between 0 and 86400 seconds")
    if port is not None and not 0 < port < 65536:
        raise UsageError("--port must be 1-65535")
    if mark is not None and not 0 <= mark < 1 << 32:
        raise UsageError("--mark must fit in 32 bits")
    if probe not in PROBES:
        raise UsageError(f"--probe must be one of {', '.join(PROBES)}")
    proto = proto.lower() if proto else None
    if proto and proto not in PROTO_NUMBERS and not proto.isdigit():
        raise UsageError(f"unknown protocol {proto!r}", hint="tcp, udp, icmp, icmpv6, sctp, udplite, gre or a number")
    netns_inode = _netns_inode(netns) if netns else None
    kfilter = conntrack_bpf.KernelFilter(port=port, mark=mark, netns=netns_inode,
                                         proto=PROTO_NUMBERS.get(proto, int(proto) if proto and proto.isdigit() else None))
    if ebpf:
        print(f"# {conntrack_bpf.SOURCE}\n# cflags: {' '.join(conntrack_bpf.cflags('kprobe', kfilter))}")
        print(conntrack_bpf.SOURCE.read_text(), end="")
        return EXIT_OK
    err = stderr()
    if replay:
        from v6diag.sources.conntrack_recorded import RecordedEvents

        source, mode, missing = RecordedEvents(replay), "recorded", []
    else:
        source, mode, missing = _open_source(probe, kfilter, netns, err)
    flt = Filter(port=port, proto=proto, mark=mark, src=src, dst=dst)
    from v6diag.render.conntrack_human import EventPrinter

    printer = EventPrinter(stdout(), as_json=as_json, show_all=show_all)
    summary = Summary()
    start = time.monotonic()
    try:
        if ready_file:
            ready_file.write_text(mode + "\n")
        if not replay:
            err.print(f"watching conntrack ({mode}){' in ' + netns if netns else ''}" +
                      (f" for {duration:g} s" if duration else "; Ctrl-C to stop"), highlight=False)
        for ev in source.events(None if duration is None or replay else start + duration):
            if ev is None or not flt.match(ev):
                continue
            _explain(ev, mode)
            summary.add(ev["cause"])
            printer.event(ev)
    except KeyboardInterrupt:
        pass  # Ctrl-C ends watching; the summary follows, probes are detached in finally
    finally:
        lost = source.dropped() if hasattr(source, "dropped") else source.lost
        source.close()
    printer.summary({"summary": True, "mode": mode, "missing": missing, "events": summary.events, "lost": lost,
                     "causes": dict(summary.causes), "duration_s": round(time.monotonic() - start, 3)})
    return EXIT_OK


def _explain(ev: dict, mode: str) -> None:
    from v6diag.analyse.conntrack import CAUSES, explain

    if mode == "recorded":
        if ev.get("stack"):
            explain(ev)
        else:  # recorded by the netlink fallback: the path was never known
            ev.update(cause="unknown", explanation=CAUSES["unknown"][0], fix=CAUSES["unknown"][1])
    elif mode == "netlink":
        ev.update(cause="unknown", comm=None, pid=None, stack=[], context=None, netns=None, expired=None,
                  tcp_state=None, explanation=CAUSES["unknown"][0], fix=CAUSES["unknown"][1], mode=mode)
    else:
        explain(ev)


def _open_source(probe: str, kfilter, netns: str | None, err):
    """(event source, mode, what the BPF path lacks). Explicit --probe kprobe/fentry
    fails when impossible; auto falls back to netlink and says why."""
    from v6diag.sources import bpf_features, conntrack_bpf

    missing: list[str] = []
    if probe != "netlink":
        missing = bpf_features.missing_for_bcc()
        have_bcc = not any(m.startswith("bcc ") for m in missing)
        no_kprobes = "kprobes unavailable on this kernel (no kprobe event source: CONFIG_KPROBES off?)"
        mode, tried = probe, ""
        if probe == "auto":
            if bpf_features.kprobes_available():
                mode = "kprobe"
            elif have_bcc and not conntrack_bpf.fentry_blocker():
                mode, tried = "fentry", no_kprobes + "; tried fentry instead"
            else:
                missing.insert(0, no_kprobes + (f"; {conntrack_bpf.fentry_blocker()}" if have_bcc else ""))
        elif probe == "kprobe" and not bpf_features.kprobes_available():
            missing.insert(0, no_kprobes)
        elif probe == "fentry" and have_bcc and conntrack_bpf.fentry_blocker():
            missing.insert(0, conntrack_bpf.fentry_blocker())
        if not missing:
            if os.geteuid() != 0:
                raise PrivilegeError("CAP_BPF and CAP_PERFMON (or root)", "loading the BPF probe")
            try:
                if conntrack_bpf.ensure_conntrack_loaded():
                    err.print("v6diag: loaded nf_conntrack (nf_ct_delete lives there)", highlight=False)
                err.print(f"compiling and attaching the {mode} probe on nf_ct_delete "
                          "(seconds; a minute or more on slow or emulated CPUs)...", highlight=False)
                return conntrack_bpf.BpfDeleteEvents(mode, kfilter), mode, []
            except UnavailableError as e:
                if probe != "auto":
                    raise
                missing += [tried, str(e)] if tried else [str(e)]
        elif probe != "auto":
            raise UnavailableError(f"cannot use --probe {probe}: " + "; ".join(missing))
        elif tried:
            missing.insert(0, no_kprobes)
    if missing:
        err.print("v6diag: " + "; ".join(missing) + "; falling back to conntrack netlink DESTROY events "
                  "(what is destroyed, not why)", highlight=False, soft_wrap=True)
    if netns:
        _enter_netns(netns)
    from v6diag.sources.conntrack_netlink import DestroyEvents

    return DestroyEvents(), "netlink", missing


def _netns_inode(name: str) -> int:
    path = Path(f"/run/netns/{name}")
    if not path.exists():
        raise UsageError(f"no such network namespace: {name}", hint="list them with `ip netns list`")
    return os.stat(path).st_ino


def _enter_netns(name: str) -> None:
    # ctnetlink reports only the namespace its socket lives in
    from pyroute2 import netns

    try:
        netns.setns(name)
    except PermissionError as e:
        raise PrivilegeError("CAP_SYS_ADMIN", f"entering network namespace {name}") from e
    except OSError as e:
        raise UnavailableError(f"cannot enter network namespace {name}: {e.strerror}") from e
    sys.stdout.flush()
