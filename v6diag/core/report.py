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


_SCALARS = (str, int, float, bool, type(None))
_PLANS: dict[type, list] = {}  # per dataclass: what to_json does with each field, worked out once


def _plan(cls: type) -> list:
    plan = []
    for f in dataclasses.fields(cls):
        conv = f.metadata.get("json", True)
        if conv is False:
            continue
        plan.append((f.name, f.metadata.get("key", f.name), None if conv is True else conv,
                     f.metadata.get("round"), f.metadata.get("omit_none", False)))
    _PLANS[cls] = plan
    return plan


def to_json(obj: Any) -> Any:
    """Any report, record or value as JSON-ready data, honouring field metadata.
    Hot: checksum streams every flagged packet through it."""
    if type(obj) in _SCALARS:
        return obj
    plan = _PLANS.get(type(obj))
    if plan is None and dataclasses.is_dataclass(obj) and not isinstance(obj, type):
        plan = _plan(type(obj))
    if plan is not None:
        out = {}
        for name, key, conv, digits, omit_none in plan:
            value = getattr(obj, name)
            if value is None:
                if not omit_none:
                    out[key] = None
                continue
            if conv is not None:
                value = conv(value)
            elif digits is not None:
                value = round(value, digits)
            elif type(value) not in _SCALARS:
                value = to_json(value)
            out[key] = value
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
