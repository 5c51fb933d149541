"""`v6diag serve`: the watchers in one long-running process, exported to
Prometheus. options -> watchers (threads, each over its command's sources) ->
metrics -> /metrics and /healthz; SIGTERM/SIGINT stop it within a second."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer

from v6diag.core.errors import EXIT_OK, UsageError



def serve(
    ctx: typer.Context,
    listen: str = typer.Option("127.0.0.1:9469", "--listen", help="ADDR:PORT for /metrics and /healthz "
                               "(default loopback; [::]:9469 or 0.0.0.0:9469 to be scraped from elsewhere)."),
    watch: list[str] = typer.Option([], "--watch", "-w", help="conntrack, drops, checksum:IF or discover:IF "
                                    "(repeatable; default: conntrack and drops)."),
    netns: Optional[str] = typer.Option(None, "--netns", help="Watch inside this network namespace (ip netns name)."),
    probe: list[str] = typer.Option([], "--probe", help="WATCH=SOURCE, e.g. drops=tracefs or conntrack=netlink "
                                    "(default auto: the best source, with the commands' fallbacks)."),
    discover_interval: float = typer.Option(300.0, "--discover-interval", help="Seconds between discover's probe "
                                            "windows (at least 10)."),
    log_format: str = typer.Option("text", "--log-format", help="text or json (one JSON object per line)."),
    ready_file: Optional[Path] = typer.Option(None, "--ready-file", help="Create this file once /metrics serves."),
) -> int:
    """Run watchers on this node and export what they see to Prometheus (/metrics)."""
    from v6diag.serve.log import FORMATS, StateLog
    from v6diag.serve.run import Plan, run

    if log_format not in FORMATS:
        raise UsageError("--log-format must be text or json")
    if ctx.obj is not None and ctx.obj.json:  # `v6diag --json serve`: its machine-readable stream is the log
        log_format = "json"
    if not 10 <= discover_interval <= 86400:
        raise UsageError("--discover-interval must be between 10 and 86400 seconds")
    plan = Plan.of(watch or ["conntrack", "drops"], probe, netns, discover_interval)
    run(plan, listen, StateLog(log_format), ready_file)
    return EXIT_OK
