"""`v6diag conntrack`: explain why the kernel destroys conntrack entries.

This build has the netlink path only: where bcc, kernel headers or kprobes are
missing (as on the CI kernel) it says which and reports DESTROY events from
ctnetlink with cause "unknown". The kprobe/BPF path (bpf/, the qemu kernel
harness) is the open part of issue 5."""

from __future__ import annotations

import sys
import time
from pathlib import Path
from typing import Optional

import typer

from v6diag.cli.app import Options, app, stderr, stdout
from v6diag.errors import EXIT_OK, UnavailableError, UsageError


@app.command()
def conntrack(
    ctx: typer.Context,
    src: Optional[str] = typer.Option(None, "--src", help="Only entries from this address."),
    dst: Optional[str] = typer.Option(None, "--dst", help="Only entries to this address."),
    port: Optional[int] = typer.Option(None, "--port", help="Only entries with this port on either side."),
    proto: Optional[str] = typer.Option(None, "--proto", help="tcp, udp, icmp, icmpv6..."),
    mark: Optional[int] = typer.Option(None, "--mark", help="Only entries with this conntrack mark."),
    netns: Optional[str] = typer.Option(None, "--netns", help="Watch this network namespace (ip netns name)."),
    show_all: bool = typer.Option(False, "--all", help="Also print expected noise (timeouts) line by line."),
    duration: Optional[float] = typer.Option(None, "--duration", "-d", help="Seconds to watch (default: until Ctrl-C)."),
    ready_file: Optional[Path] = typer.Option(None, "--ready-file", help="Create this file once listening."),
    json_out: bool = typer.Option(False, "--json", help="NDJSON: one object per event, then a summary."),
) -> int:
    """Watch conntrack entries being destroyed and say why."""
    from v6diag.analyse.conntrack import CAUSES, Filter, Summary
    from v6diag.render import json as jsonr
    from v6diag.sources import bpf_features
    from v6diag.sources.conntrack_netlink import DestroyEvents

    opts: Options = ctx.obj
    as_json = json_out or opts.json
    if duration is not None and not 0 < duration <= 86400:
        raise UsageError("--duration must be between 0 and 86400 seconds")
    if port is not None and not 0 < port < 65536:
        raise UsageError("--port must be 1-65535")
    err, out = stderr(), stdout()
    if netns:
        _enter_netns(netns)
    missing = bpf_features.missing()
    if not missing:
        missing = ["the kprobe/BPF path is not built into this version of v6diag yet"]
    err.print("v6diag: " + "; ".join(missing) + "; falling back to conntrack netlink DESTROY events "
              "(what is destroyed, not why)", highlight=False, soft_wrap=True)
    flt = Filter(port=port, proto=proto.lower() if proto else None, mark=mark, src=src, dst=dst)
    summary = Summary()
    events = DestroyEvents()
    start = time.monotonic()
    try:
        if ready_file:
            ready_file.write_text("netlink\n")
        err.print(f"watching conntrack{' in ' + netns if netns else ''}" +
                  (f" for {duration:g} s" if duration else "; Ctrl-C to stop"), highlight=False)
        for ev in events.events(None if duration is None else start + duration):
            if ev is None or not flt.match(ev):
                continue
            ev.update(cause="unknown", comm=None, stack=[], mode="netlink")
            summary.add(ev["cause"])
            if as_json:
                print(jsonr.dumps(ev, stream=True), flush=True)
            elif show_all or ev["cause"] != "timeout":
                out.print(_line(ev), highlight=False, soft_wrap=True)
    except KeyboardInterrupt:
        pass  # Ctrl-C ends watching; the summary follows
    finally:
        events.close()
    result = {"summary": True, "mode": "netlink", "missing": missing, "events": summary.events,
              "lost": events.lost, "causes": dict(summary.causes), "duration_s": round(time.monotonic() - start, 3)}
    if as_json:
        print(jsonr.dumps(result, stream=True), flush=True)
    else:
        out.print(f"{summary.events} entries destroyed" + (f", {events.lost} event batches lost (ENOBUFS)"
                                                           if events.lost else ""), highlight=False)
        for cause, n in summary.causes.most_common():
            out.print(f"  {n:6d} {cause}: {CAUSES[cause][0]}", highlight=False)
    return EXIT_OK


def _line(ev: dict) -> str:
    o, r = ev["orig"], ev["reply"]
    ports = f" {o.get('sport')}->{o.get('dport')}" if o.get("sport") is not None else ""
    nat = f" (reply {r.get('src')} -> {r.get('dst')})" if r and (r.get("src"), r.get("dst")) != (o.get("dst"), o.get("src")) else ""
    when = time.strftime("%H:%M:%S", time.localtime(ev["time"]))
    return (f"{when} DESTROY {ev['proto']} {o.get('src')} -> {o.get('dst')}{ports}{nat} mark={ev['mark']} "
            f"[{','.join(ev['status'])}] cause={ev['cause']}")


def _enter_netns(name: str) -> None:
    from pyroute2 import netns

    if not Path(f"/run/netns/{name}").exists():
        raise UsageError(f"no such network namespace: {name}", hint="list them with `ip netns list`")
    try:
        netns.setns(name)
    except PermissionError as e:
        from v6diag.errors import PrivilegeError

        raise PrivilegeError("CAP_SYS_ADMIN", f"entering network namespace {name}") from e
    except OSError as e:
        raise UnavailableError(f"cannot enter network namespace {name}: {e.strerror}") from e
    sys.stdout.flush()
