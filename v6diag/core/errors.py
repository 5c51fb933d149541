"""One error tree. Each error carries its exit code and a hint; v6diag.app turns
them into one line on stderr (never a traceback unless -vv)."""

from __future__ import annotations

# Exit codes (sysexits.h where one fits), documented in README "Exit codes".
EXIT_OK = 0
EXIT_PROBLEMS = 1  # the command ran and found problems (or found nothing)
EXIT_USAGE = 2
EXIT_DATAERR = 65  # EX_DATAERR: a capture whose very first record is damaged (no packet at all)
EXIT_INPUT = 66  # EX_NOINPUT: input file unreadable or invalid
EXIT_UNAVAILABLE = 69  # EX_UNAVAILABLE: kernel feature / interface state missing
EXIT_SOFTWARE = 70  # EX_SOFTWARE: a bug in v6diag (-vv shows the traceback)
EXIT_NOPERM = 77  # EX_NOPERM: insufficient privilege
EXIT_INTERRUPTED = 130  # 128 + SIGINT


class V6diagError(Exception):
    exit_code = EXIT_PROBLEMS

    def __init__(self, message: str, hint: str | None = None):
        super().__init__(message)
        self.message = message
        self.hint = hint


class UsageError(V6diagError):
    """The user asked for something that cannot be: bad option, no such interface."""

    exit_code = EXIT_USAGE


class InputError(V6diagError):
    """An input file is missing, unreadable or not a capture."""

    exit_code = EXIT_INPUT


class DataError(V6diagError):
    """The input is a capture, but damaged before its first packet: nothing to analyse."""

    exit_code = EXIT_DATAERR


class UnavailableError(V6diagError):
    """A kernel feature or interface state the command needs is missing."""

    exit_code = EXIT_UNAVAILABLE


class PrivilegeError(V6diagError):
    """The process lacks a capability; `capability` names it (e.g. CAP_NET_RAW).
    core.privilege builds the hint: sudo, a grant scoped to one run, or the
    command's unprivileged mode."""

    exit_code = EXIT_NOPERM

    def __init__(self, capability: str, action: str, hint: str | None = None):
        super().__init__(f"{action} needs {capability}",
                         hint=hint or f"a privilege problem: run it with sudo (it needs {capability})")
        self.capability = capability
