"""Validate v6diag's JSON against the schemas it publishes (v6diag/schemas/)."""

from __future__ import annotations

import json
from functools import lru_cache
from importlib import resources


@lru_cache(maxsize=None)
def _validator(command: str):
    from jsonschema import Draft202012Validator
    from referencing import Registry, Resource

    folder = resources.files("v6diag") / "schemas"
    docs = {p.name: json.loads(p.read_text()) for p in folder.iterdir() if p.name.endswith(".json")}
    registry = Registry().with_resources(
        (doc["$id"], Resource.from_contents(doc)) for doc in docs.values())
    schema = docs[f"{command}.json"]
    Draft202012Validator.check_schema(schema)
    return Draft202012Validator(schema, registry=registry)


def validate(command: str, obj) -> None:
    """Raise jsonschema.ValidationError naming the first place `obj` breaks the schema."""
    _validator(command).validate(obj)


def validate_output(command: str, text: str) -> list:
    """A command's whole stdout: one JSON document, or NDJSON (conntrack, --watch)."""
    text = text.strip()
    try:
        objs = [json.loads(text)]
    except ValueError:
        objs = [json.loads(line) for line in text.splitlines() if line.strip()]
    for obj in objs:
        validate(command, obj)
    return objs
