"""What every command returns: a typed report (a dataclass) whose problems are
`Finding`s, and the one function that turns any report into JSON.

Field metadata steers the JSON, so the dataclass is the schema's source:
  key       the JSON name, when it differs from the attribute's
  round     round a float to this many digits
  omit_none leave the key out when the value is None
  json      False: not in the JSON (human-only data); a callable: converts the value
"""

from __future__ import annotations

import dataclasses
from enum import Enum
from typing import Any


class Severity(str, Enum):
    INFO = "info"
    WARNING = "warning"
    ERROR = "error"
    # outcomes of a checklist item that found nothing wrong, or could not run (tunnel)
    PASS = "pass"
    SKIP = "skip"


@dataclasses.dataclass(frozen=True)
class Finding:
    code: str  # stable kebab-case identifier, documented in README
    severity: Severity
    message: str
    evidence: str = ""
    fix: str = ""  # the command(s) to type; "" when there is nothing to do

    @classmethod
    def error(cls, code: str, message: str, evidence: str = "", fix: str = "") -> Finding:
        return cls(code, Severity.ERROR, message, evidence, fix)

    @classmethod
    def warning(cls, code: str, message: str, evidence: str = "", fix: str = "") -> Finding:
        return cls(code, Severity.WARNING, message, evidence, fix)

    @classmethod
    def info(cls, code: str, message: str, evidence: str = "", fix: str = "") -> Finding:
        return cls(code, Severity.INFO, message, evidence, fix)

    @property
    def status(self) -> str:
        """The checklist word for this finding: pass | fail | warn | skip."""
        return status_of(self)


# A checklist (tunnel) speaks of pass/fail/warn/skip: the same Finding, named so.
PASS, FAIL, WARN, SKIP = "pass", "fail", "warn", "skip"
_SEVERITY_OF = {PASS: Severity.PASS, FAIL: Severity.ERROR, WARN: Severity.WARNING, SKIP: Severity.SKIP}
_STATUS_OF = {v: k for k, v in _SEVERITY_OF.items()}


def check(code: str, status: str, message: str, fix: str = "") -> Finding:
    """One checklist item: status pass | fail | warn | skip."""
    return Finding(code, _SEVERITY_OF[status], message, fix=fix)


def status_of(f: Finding) -> str:
    return _STATUS_OF.get(f.severity, PASS)


def checklist_json(items: list[Finding]) -> list[dict]:
    """A checklist's JSON shape: {"id", "status", "message", "fix"} per item."""
    return [{"id": f.code, "status": f.status, "message": f.message, "fix": f.fix} for f in items]


def has_errors(findings) -> bool:
    return any(f.severity is Severity.ERROR for f in findings)


def exit_code(report) -> int:
    """0 when the report holds no error, 1 when it does (README "Exit codes")."""
    return 1 if has_errors(report.findings) else 0


def to_json(obj: Any) -> Any:
    """Any report, record or value as JSON-ready data, honouring field metadata."""
    if dataclasses.is_dataclass(obj) and not isinstance(obj, type):
        out = {}
        for f in dataclasses.fields(obj):
            meta = f.metadata
            conv = meta.get("json", True)
            if conv is False:
                continue
            value = getattr(obj, f.name)
            if value is None and meta.get("omit_none"):
                continue
            if callable(conv) and conv is not True:
                value = conv(value)
            elif meta.get("round") is not None and value is not None:
                value = round(value, meta["round"])
            else:
                value = to_json(value)
            out[meta.get("key", f.name)] = value
        return out
    if isinstance(obj, Enum):
        return obj.value
    if isinstance(obj, (list, tuple)):
        return [to_json(x) for x in obj]
    if isinstance(obj, dict):
        return {k: to_json(v) for k, v in obj.items()}
    return obj


def meta(**kw) -> dict:
    """Shorthand: field(metadata=meta(key="malformed_packets"))."""
    return kw
