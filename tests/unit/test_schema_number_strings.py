"""A layout schema's number bounds bind a numeric string as they bind the number it spells,
compared as Decimals (server.compose.schema_bounds). QA 2026-12-02: money and rates are sent
as strings ("1234.50", exact as Decimal), and `minimum` / `maximum` / `exclusiveMinimum` /
`exclusiveMaximum` bound only JSON numbers: b2b-invoice took a line's vat_rate "150",
card-invoice a transaction amount "1000000000000000" past its exclusiveMaximum 1e15."""

from __future__ import annotations

import copy
import json
from collections.abc import Iterator
from decimal import Decimal
from typing import Any

import pytest

from server.compose.composer import parse_data, validate
from server.compose.fast_schema import compile_fast_check
from server.compose.schema_bounds import string_in_bounds
from server.compose.schema_regex import DataValidator
from server.errors import InvalidInput
from tests.layouts import shipped

REGISTRY = shipped()
LAYOUTS = [REGISTRY.get(layout.id, version) for layout in REGISTRY.latest()
           for version in REGISTRY.versions(layout.id)]


def _violations(layout, data) -> set[tuple[str, str]]:
    try:
        validate(layout, data)
    except InvalidInput as exc:
        return {(v.field, v.description) for v in exc.violations}
    return set()


def _set(data: dict, path: tuple, value: Any) -> dict:
    out = copy.deepcopy(data)
    node = out
    for key in path[:-1]:
        node = node[key]
    node[path[-1]] = value
    return out


@pytest.mark.parametrize(("layout_id", "path", "value", "field", "why"), [
    ("b2b-invoice", ("lines", 0, "vat_rate"), "150", "$.lines[0].vat_rate",
     '"150" is greater than the maximum of 100'),
    ("b2b-invoice", ("lines", 0, "vat_rate"), "-0.5", "$.lines[0].vat_rate",
     '"-0.5" is less than the minimum of 0'),
    ("b2b-invoice", ("lines", 0, "unit_price"), "1000000000000000", "$.lines[0].unit_price",
     '"1000000000000000" is greater than or equal to the maximum of 1000000000000000'),
    ("b2b-invoice", ("lines", 0, "quantity"), " -1000000000000000.5 ", "$.lines[0].quantity",
     '" -1000000000000000.5 " is less than or equal to the minimum of -1000000000000000'),
    ("card-invoice", ("transactions", 0, "amount"), "1000000000000000.00",
     "$.transactions[0].amount",
     '"1000000000000000.00" is greater than or equal to the maximum of 1000000000000000'),
    ("card-invoice", ("card_account", "nominal_interest_percent"), "1000",
     "$.card_account.nominal_interest_percent",
     '"1000" is greater than or equal to the maximum of 1000'),
    ("payment-reminder", ("reminder", "fee"), "-1000000000000000", "$.reminder.fee",
     '"-1000000000000000" is less than or equal to the minimum of -1000000000000000'),
])
def test_a_numeric_string_past_a_bound_is_refused_at_its_path(layout_id, path, value, field,
                                                              why):
    layout = REGISTRY.get(layout_id)
    data = _set(parse_data(layout.sample_data()), path, value)
    assert layout.fast_validator(data) is False  # the compiled check lets none through
    assert _violations(layout, data) == {(field, why)}


def _numeric_leaves(value: Any, path: tuple = ()) -> Iterator[tuple]:
    """The paths of a sample's numeric strings (in the first two items of each list)."""
    if isinstance(value, dict):
        for key, item in value.items():
            yield from _numeric_leaves(item, (*path, key))
    elif isinstance(value, list):
        for n, item in enumerate(value[:2]):
            yield from _numeric_leaves(item, (*path, n))
    elif isinstance(value, str):
        try:
            Decimal(value)
        except ArithmeticError:
            return
        yield path


@pytest.mark.parametrize("layout", LAYOUTS, ids=lambda layout: layout.ref)
def test_every_sample_of_every_version_still_passes(layout):
    samples = sorted(layout.path.glob("sample*.json")) + sorted(layout.path.glob("samples/*"))
    assert samples
    for path in samples:
        data = parse_data(path.read_text(encoding="utf-8"))
        assert _violations(layout, data) == set(), path
        assert layout.fast_validator(data), path


def _reasons(why: str) -> str:
    """A violation's reason without the quoted object before a oneOf's forms (whose quote
    is cut at a length, which a string's two quote marks move)."""
    return why.partition(" matches none of the allowed forms: ")[2] or why


@pytest.mark.parametrize("layout", LAYOUTS, ids=lambda layout: layout.ref)
def test_every_bound_refuses_the_string_as_it_refuses_the_number(layout):
    # every number field of the sample, set past the schemas' bounds (1e15 amounts, 1000 %
    # rates, 100 % VAT, 0 and 1 as lower bounds) as a number and as a string
    sample = parse_data(layout.sample_data())
    bounded = 0
    for path in _numeric_leaves(sample):
        for text in ("1000000000000000", "-1000000000000000", "1000", "100.5", "-0.5"):
            number = parse_data(f'{{"n": {text}}}')["n"]  # as the JSON reader reads it
            as_number = _violations(layout, _set(sample, path, number))
            bounds = {(field, _reasons(why)) for field, why in as_number if "the m" in why}
            if not bounds:  # minimum / maximum of ...
                continue
            bounded += 1
            as_string = {(field, _reasons(why).replace(json.dumps(text), text))
                         for field, why in _violations(layout, _set(sample, path, text))}
            assert bounds <= as_string, (layout.ref, path, text)
    # the versions whose schemas bound numbers that may be strings
    assert bool(bounded) == (layout.id in ("b2b-invoice", "card-invoice", "payment-reminder")
                             and layout.version != "1.0.0"), bounded


@pytest.mark.parametrize(("schema", "value"), [
    # float would take 100.00000000000000001 for 100.0 and let it through
    ({"type": ["number", "string"], "maximum": 100}, "100.00000000000000001"),
    ({"type": ["number", "string"], "minimum": 0}, "-0.00000000000000000001"),
    ({"type": ["number", "string"], "exclusiveMaximum": 1}, "1.000"),
    ({"type": ["number", "string"], "multipleOf": 0.01}, "12.345"),
    ({"type": ["number", "string"], "multipleOf": 0.01}, "1e-999999999"),
])
def test_bounds_compare_decimals_never_floats_refused(schema, value):
    [error] = DataValidator(schema).iter_errors(value)
    assert error.validator in schema


@pytest.mark.parametrize(("schema", "value"), [
    # float would take 999999999999999.999999 for 1e15 and refuse it
    ({"type": ["number", "string"], "exclusiveMaximum": 1000000000000000},
     "999999999999999.999999"),
    ({"type": ["number", "string"], "maximum": 0.3}, "0.3"),
    ({"type": ["number", "string"], "multipleOf": 0.01}, "19.01"),
    ({"type": ["number", "string"], "multipleOf": 0.01}, "1e999999999"),
    ({"type": ["number", "string"], "minimum": 0}, "lots"),  # no number: pattern's, builders'
    ({"type": ["number", "string"], "minimum": 0}, "NaN"),
    ({"type": ["number", "string"], "minimum": 0}, "-Infinity"),
    ({"minimum": 1}, True),  # a boolean is no number
])
def test_bounds_compare_decimals_never_floats_accepted(schema, value):
    assert not list(DataValidator(schema).iter_errors(value))


def test_a_string_where_the_type_admits_none_is_refused_by_its_type_once():
    [error] = DataValidator({"type": "integer", "maximum": 3650}).iter_errors("5000")
    assert error.validator == "type"


def test_the_compiled_check_reads_string_bounds_too():
    check = compile_fast_check({"type": "object", "properties": {
        "rate": {"type": ["number", "string"], "minimum": 0, "maximum": 100,
                 "format": "decimal"}}})
    assert check({"rate": "100"}) and check({"rate": Decimal("99.5")}) and check({"rate": "x"})
    assert not check({"rate": "100.01"}) and not check({"rate": " -1"})
    assert not check({"rate": Decimal("100.01")})


@pytest.mark.parametrize("schema", [{"type": ["number", "string"], "multipleOf": 0.01},
                                    {"type": ["number", "string"], "maximum": 0.3}])
def test_bounds_the_compiled_check_cannot_read_exactly_leave_it_to_jsonschema(schema):
    assert compile_fast_check({"type": "object", "properties": {"x": schema}}) is None


@pytest.mark.parametrize("keyword", ["minimum", "maximum", "exclusiveMinimum",
                                     "exclusiveMaximum"])
def test_the_compiled_checks_string_test_answers_as_the_validator(keyword):
    validator = DataValidator({"type": ["number", "string"], keyword: 100})
    check = string_in_bounds({keyword: 100})
    for text in ("99.999999", "100", "100.0", " 100.000001", "1e2", "-1E+3", "1_000", "abc",
                 "NaN", "-Infinity", "", "1e999999999", "-1e-999999999"):
        assert check(text) == (not list(validator.iter_errors(text))), text
