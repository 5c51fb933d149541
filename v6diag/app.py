"""The `v6diag` Typer app: global options, the commands, and the one place that
turns errors into exit codes."""

from __future__ import annotations

import signal
import sys

import typer

from v6diag import __version__
from v6diag.core.console import Options, stderr
from v6diag.core.errors import EXIT_INTERRUPTED, EXIT_SOFTWARE, EXIT_USAGE, V6diagError

app = typer.Typer(
    name="v6diag",
    help="Packet-level IPv6 diagnostics and discovery for Linux.",
    no_args_is_help=True,
    add_completion=True,  # v6diag --install-completion (bash, zsh, fish)
    pretty_exceptions_enable=False,
    context_settings={"help_option_names": ["-h", "--help"]},
)


def _version(value: bool) -> None:
    if value:
        print(f"v6diag {__version__}")
        raise typer.Exit()


@app.callback()
def _global(
    ctx: typer.Context,
    json_out: bool = typer.Option(False, "--json", help="Machine-readable output on stdout (schema in README)."),
    verbose: int = typer.Option(0, "-v", "--verbose", count=True, help="More diagnostics on stderr; -vv shows tracebacks."),
    version: bool = typer.Option(False, "--version", callback=_version, is_eager=True, help="Print the version."),
) -> None:
    ctx.obj = Options(json=json_out, verbose=verbose)


def _register() -> None:
    # each command module is thin (options -> run -> render); heavy imports happen inside run
    from v6diag.addrsel.command import addrsel
    from v6diag.checksum.command import checksum
    from v6diag.conntrack.command import conntrack
    from v6diag.discover.command import discover
    from v6diag.drops.command import drops
    from v6diag.oui.command import oui
    from v6diag.serve.command import serve
    from v6diag.trace.command import trace
    from v6diag.tunnel.command import tunnel

    for command in (discover, checksum, trace, conntrack, tunnel, drops, addrsel, serve):
        app.command()(command)
    app.add_typer(oui, name="oui")


def _terminate(signum, frame) -> None:
    # SIGTERM (systemd, `timeout`, Kubernetes) ends a command exactly as Ctrl-C does:
    # probes detached, the summary or report written
    raise KeyboardInterrupt


GLOBAL_FLAGS = ("--verbose",)


def hoist_globals(args: list[str]) -> list[str]:
    """-v/-vv/--verbose work anywhere on the command line (`v6diag trace -vv ...`):
    moved in front of the command, where Typer looks for them."""
    end = args.index("--") if "--" in args else len(args)
    flags = [a for a in args[:end] if a in GLOBAL_FLAGS or (a.startswith("-v") and set(a[1:]) == {"v"})]
    rest = [a for i, a in enumerate(args) if i >= end or a not in flags]
    return flags + rest


def main(argv: list[str] | None = None) -> None:
    signal.signal(signal.SIGTERM, _terminate)
    _register()
    args = hoist_globals(sys.argv[1:] if argv is None else argv)
    verbose = sum(a.count("v") for a in args if a.startswith("-v") and set(a[1:]) == {"v"}) + args.count("--verbose")
    err = stderr()
    try:
        rc = app(args=args, prog_name="v6diag", standalone_mode=False)
    except (typer.Abort, KeyboardInterrupt):
        rc = EXIT_INTERRUPTED
    except typer.Exit as e:
        rc = e.exit_code
    except typer.TyperException as e:  # bad option or argument: typer says which
        show = getattr(e, "show", None)
        if show:
            show()
        else:
            err.print(f"v6diag: error: {e.format_message()}", markup=False)
        rc = getattr(e, "exit_code", EXIT_USAGE) or EXIT_USAGE
    except V6diagError as e:
        if verbose >= 2:
            err.print_exception()
        line = f"v6diag: error: {e.message}"
        if e.hint:
            line += f" (hint: {e.hint})"
        err.print(line, highlight=False, soft_wrap=True, markup=False)
        rc = e.exit_code
    except BrokenPipeError:
        rc = 0  # `v6diag ... | head`: the reader left, not an error
    except Exception as e:  # a bug: say so in one line; -vv shows where
        if verbose >= 2:
            err.print_exception()
        err.print(f"v6diag: internal error: {type(e).__name__}: {e} (rerun with -vv for a traceback)",
                  highlight=False, soft_wrap=True, markup=False)
        rc = EXIT_SOFTWARE
    if rc == EXIT_INTERRUPTED:  # typer turns KeyboardInterrupt into a silent Exit(130)
        err.print("interrupted")
    sys.exit(rc if isinstance(rc, int) else 0)
