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


@dataclass
class Column:
    """A table column for print_table: priority 1 columns are always shown; others
    give way, highest number first, when the terminal is too narrow for them."""

    header: str
    priority: int = 1
    justify: str = "left"


def _tokens(cell) -> list[str]:
    text = cell.plain if isinstance(cell, Text) else str(cell)
    return text.split()


def _min_width(header: str, cells) -> int:
    """The narrowest a column may get: its longest word (an address, a MAC, a
    prefix is one word and is never broken), or its header."""
    return max([len(header.split()[0]) if header else 0] + [len(t) for c in cells for t in _tokens(c)])


def print_table(console: Console, title: str, columns: list[Column], rows: list[list], spill: int | None = None) -> None:
    """A table that never breaks a word at any terminal width. Columns that do not
    fit give way, lowest priority first; what they held moves to a dim second line
    of each row, in column `spill` (default: the last one kept). When even the
    priority-1 columns cannot fit, each row is printed as lines instead, whole."""
    from rich.table import Table

    mins = [_min_width(col.header, [r[i] for r in rows]) for i, col in enumerate(columns)]
    keep = list(range(len(columns)))
    order = sorted((i for i, c in enumerate(columns) if c.priority > 1), key=lambda i: -columns[i].priority)
    while True:
        moved = [i for i in range(len(columns)) if i not in keep]
        target = spill if spill in keep else keep[-1]
        widths = {i: mins[i] for i in keep}
        if moved:  # the second lines must fit the spill column too, words whole
            widths[target] = max(widths[target], max((len(t) for r in rows for i in moved for t in _tokens(r[i])),
                                                     default=0))
        if sum(widths.values()) + 3 * len(keep) + 1 <= console.width:
            break
        if not order:
            _print_blocks(console, title, columns, rows)
            return
        keep.remove(order.pop(0))
    table = Table(title=title, title_justify="left", header_style="bold")
    body = []
    for row in rows:
        cells = [row[i] if isinstance(row[i], Text) else Text(str(row[i])) for i in keep]
        extra = [f"{columns[i].header.lower()} {_plain(row[i])}" for i in moved if _plain(row[i]) not in ("", "-")]
        if extra:
            pos = keep.index(target)
            cells[pos] = Text.assemble(cells[pos], ("\n" + "; ".join(extra), "dim"))
        body.append(cells)
    # widths chosen here, not by rich: its collapse can leave a table wider than the
    # terminal. Natural widths when they fit, else wrappable columns give up their
    # slack in proportion, never below their longest word.
    natural = [max([len(columns[i].header)] + [len(line) for cells in body for line in cells[k].plain.split("\n")])
               for k, i in enumerate(keep)]
    least = [widths[i] for i in keep]
    room = console.width - 3 * len(keep) - 1
    fixed = natural
    if sum(natural) > room:
        slack = [n - m for n, m in zip(natural, least)]
        cut = sum(natural) - room
        fixed = [n - (cut * sl + sum(slack) - 1) // sum(slack) if sum(slack) else n for n, sl in zip(natural, slack)]
        fixed = [max(f, m) for f, m in zip(fixed, least)]
    for k, i in enumerate(keep):
        table.add_column(columns[i].header, justify=columns[i].justify, width=fixed[k], overflow="fold")
    for cells in body:
        table.add_row(*cells)
    console.print(table)


def _plain(cell) -> str:
    return (cell.plain if isinstance(cell, Text) else str(cell)).replace("\n", ", ").strip()


def _print_blocks(console: Console, title: str, columns: list[Column], rows: list[list]) -> None:
    """One block per row, like `ip addr`: too narrow for a table, words whole."""
    console.print(Text(title, style="italic"), soft_wrap=True)
    for row in rows:
        first = [_plain(row[i]) for i, c in enumerate(columns) if c.priority == 1][:2]
        console.print(Text("  ".join(first), style="bold"), soft_wrap=True)
        for i, col in enumerate(columns):
            value = _plain(row[i])
            if value in ("", "-") or value in first:
                continue
            console.print(Text(f"    {col.header.lower()}: {value}"), soft_wrap=True)
