"""The JSON users script against, held byte for byte: `--json` of every bundled
example (tests/examples.py), recorded in tests/golden/ and validated against the
published JSON Schema of its command (v6diag/schemas/).

Regenerate after an intended change with V6DIAG_UPDATE_GOLDEN=1 and say why in
the commit (and review the diff)."""

from __future__ import annotations

import json
import os

import pytest

from tests.conftest import ROOT
from tests.examples import CASES, GOLDEN, run_json
from tests.schemas import validate_output

UPDATE = os.environ.get("V6DIAG_UPDATE_GOLDEN") == "1"


@pytest.mark.parametrize("name, args", CASES, ids=[c[0] for c in CASES])
def test_json_of_bundled_examples_is_unchanged(v6diag_cmd, name, args):
    rc, got, err = run_json(v6diag_cmd, args, ROOT)
    assert rc in (0, 1), err
    path = GOLDEN / f"{name}.json"
    if UPDATE:
        path.write_text(got)
    assert path.exists(), f"no golden file {path.name}: run with V6DIAG_UPDATE_GOLDEN=1"
    assert got == path.read_text(), f"--json of {' '.join(args)} changed (golden {path.name})"


@pytest.mark.parametrize("name, command", [(c[0], c[1][0]) for c in CASES], ids=[c[0] for c in CASES])
def test_golden_files_follow_the_published_schema(name, command):
    assert validate_output(command, (GOLDEN / f"{name}.json").read_text())


def test_a_schema_rejects_what_breaks_the_contract():
    from jsonschema import ValidationError

    report = json.loads((GOLDEN / "discover-lan.json").read_text())
    report["hosts"][0]["iid_kind"] = "made-up"
    with pytest.raises(ValidationError):
        validate_output("discover", json.dumps(report))
    del report["hosts"]
    with pytest.raises(ValidationError):
        validate_output("discover", json.dumps(report))
