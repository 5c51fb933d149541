"""Where output goes: data on stdout, everything else on stderr (rich consoles),
the global options every command receives, and the shared findings printer."""

from __future__ import annotations

import os
import sys
from dataclasses import dataclass

from rich.console import Console
from rich.text import Text

from v6diag.core.report import Finding, Severity


@dataclass
class Options:
    """Global options (`v6diag --json -v CMD ...`), handed to every command."""

    json: bool = False
    verbose: int = 0


def stderr() -> Console:
    return Console(stderr=True, emoji=False)


class _Stdout(Console):
    def on_broken_pipe(self) -> None:
        # rich exits 1 here; `v6diag ... | head` is not an error: app.main() maps this to 0
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        raise BrokenPipeError


def stdout() -> Console:
    """Tables must not fold addresses when piped (rich assumes 80 columns then)."""
    # emoji off: "2001:db8:d00:100::/56" must not become "2001:db8:d00💯:/56"
    console = _Stdout(emoji=False)
    if not console.is_terminal:
        console = _Stdout(width=200, emoji=False)
    return console


SEVERITY_STYLE = {Severity.INFO: "cyan", Severity.WARNING: "yellow", Severity.ERROR: "bold red",
                  Severity.PASS: "green", Severity.SKIP: "dim"}


def print_findings(items: list[Finding], console: Console) -> None:
    for f in items:
        console.print(Text.assemble((f"{f.severity.value}: ", SEVERITY_STYLE[f.severity]),
                                    (f"[{f.code}] ", "dim"), f.message))
        if f.evidence:
            console.print(Text("    evidence: " + f.evidence, style="dim"))
        if f.fix:
            console.print(Text("    fix: " + f.fix))
