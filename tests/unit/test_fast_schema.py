"""The compiled schema check (server.compose.fast_schema) never accepts data the reference
validator (jsonschema, `Layout.validator`) refuses: every layout's samples, and every
sample with each of its values replaced by wrong ones, keys removed or added."""

from __future__ import annotations

from collections.abc import Iterator
from decimal import Decimal
from typing import Any

import pytest

from server.compose.composer import parse_data, validate
from server.compose.fast_schema import compile_fast_check
from server.errors import InvalidInput
from tests.layouts import shipped

_REGISTRY = shipped()
LAYOUTS = [_REGISTRY.get(layout.id, version) for layout in _REGISTRY.latest()
           for version in _REGISTRY.versions(layout.id)]
REPLACEMENTS: tuple[Any, ...] = (None, True, 0, -1, 10**20, Decimal("1.5"), Decimal("-0.001"),
                                 "", "x", "1" * 300, "2026-13-45", [], {}, ["x"], {"x": 1},
                                 # numeric strings past the schemas' bounds (schema_bounds)
                                 "1000000000000000", "-1000000000000000", "150", "-0.5")


def paths(value: Any, path: tuple = ()) -> Iterator[tuple]:
    yield path
    if isinstance(value, dict):
        for key, item in value.items():
            yield from paths(item, (*path, key))
    elif isinstance(value, list):
        for n, item in enumerate(value[:3]):
            yield from paths(item, (*path, n))


def copied(value: Any) -> Any:
    """A deep copy of parsed JSON data (dicts, lists and immutable scalars: str, int, bool,
    Decimal, None): what `copy.deepcopy` gives, several times faster (no memo)."""
    if isinstance(value, dict):
        return {key: copied(item) for key, item in value.items()}
    if isinstance(value, list):
        return [copied(item) for item in value]
    return value


def replaced(data: Any, path: tuple, value: Any) -> Any:
    out = copied(data)
    target = out
    for key in path[:-1]:
        target = target[key]
    target[path[-1]] = value
    return out


def removed(data: Any, path: tuple) -> Any:
    out = copied(data)
    target = out
    for key in path[:-1]:
        target = target[key]
    del target[path[-1]]
    return out


def variants(sample: dict) -> Iterator[Any]:
    for path in paths(sample):
        if not path:
            continue
        for value in REPLACEMENTS:
            yield replaced(sample, path, value)
        yield removed(sample, path)
        parent = path[:-1]
        holder = sample
        for key in parent:
            holder = holder[key]
        if isinstance(holder, dict):
            yield replaced(sample, (*parent, "unknown_key_xyz"), "x")


@pytest.mark.parametrize("layout", LAYOUTS, ids=lambda layout: layout.ref)
def test_the_compiled_check_agrees_with_jsonschema(layout):
    check = layout.fast_validator
    assert check is not None, f"{layout.ref}: its schema should compile"
    samples = [parse_data(path.read_text(encoding="utf-8"))
               for path in sorted(layout.path.glob("sample*.json"))]
    checked = refused = 0
    for sample in samples:
        assert check(sample) and not list(layout.validator.iter_errors(sample))
        for data in variants(sample):
            reference_valid = not any(True for _ in layout.validator.iter_errors(data))
            fast_valid = check(data)
            assert not (fast_valid and not reference_valid), (
                f"{layout.ref}: compiled check accepts what jsonschema refuses: "
                f"{next(layout.validator.iter_errors(data)).json_path}")
            checked += 1
            refused += not reference_valid
    assert checked > 200 and refused > 100  # the mutations really exercised the schema


def test_errors_still_come_from_jsonschema_with_their_paths():
    layout = shipped().get("card-invoice")
    data = parse_data(layout.sample_data())
    data["transactions"][1]["amount"] = "lots"
    del data["customer"]["name"]
    with pytest.raises(InvalidInput) as caught:
        validate(layout, data)
    fields = {v.field for v in caught.value.violations}
    assert "$.transactions[1].amount" in fields and "$.customer" in fields


@pytest.mark.parametrize("schema", [
    {"type": "array", "prefixItems": [{"type": "string"}]},
    {"type": "object", "unevaluatedProperties": False},
    {"type": "array", "items": [{"type": "string"}]},  # draft-7 tuple form
    {"properties": {"a": {"dependentRequired": {"a": ["b"]}}}},
])
def test_keywords_that_differ_between_drafts_leave_jsonschema_alone(schema):
    assert compile_fast_check(schema) is None


def test_defaults_are_never_written_into_the_data():
    check = compile_fast_check({"type": "object",
                                "properties": {"a": {"type": "string", "default": "x"}}})
    data: dict = {}
    assert check(data) and data == {}
