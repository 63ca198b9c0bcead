"""A schema's count limits say the limit and the count: 5,000 transactions on a card invoice
that takes 2,000 are refused 'has 5000 items; at most 2000 are allowed' at `$.transactions`,
not '[{...}, …] is too long' (QA)."""

from __future__ import annotations

import copy
import json
from datetime import UTC, datetime

import pytest
from jsonschema import Draft202012Validator

from server.compose.composer import ComposeRequest, compose
from server.compose.schema_errors import schema_violation
from server.errors import FieldViolation, InvalidInput
from tests.layouts import shipped


def test_too_many_transactions_names_the_limit():
    layout = shipped().get("card-invoice")
    data = json.loads((layout.path / "sample.json").read_text(encoding="utf-8"))
    assert layout.schema["properties"]["transactions"]["maxItems"] == 2000
    data["transactions"] = [copy.deepcopy(data["transactions"][0]) for _ in range(5000)]
    with pytest.raises(InvalidInput) as raised:
        compose(ComposeRequest(tenant="fjordbank", layout=layout, data=json.dumps(data),
                               document_id="01JTEST", now=datetime(2026, 3, 2, tzinfo=UTC)))
    assert raised.value.violations == [
        FieldViolation("$.transactions", "has 5000 items; at most 2000 are allowed")]
    assert "at most 2000" in str(raised.value)


SCHEMA = {
    "type": "object",
    "properties": {
        "few": {"type": "array", "maxItems": 2},
        "one": {"type": "array", "maxItems": 1},
        "none": {"type": "array", "maxItems": 0},
        "some": {"type": "array", "minItems": 3},
        "any": {"type": "array", "minItems": 1},
        "small": {"type": "object", "maxProperties": 1},
        "big": {"type": "object", "minProperties": 2},
    },
}


@pytest.mark.parametrize("field, value, why", [
    ("few", [1, 2, 3], "has 3 items; at most 2 are allowed"),
    ("one", [1, 2], "has 2 items; at most 1 is allowed"),
    ("none", [1], "has 1 item; it must be empty"),
    ("some", [1], "has 1 item; at least 3 are required"),
    ("any", [], "has 0 items; at least 1 is required"),
    ("small", {"a": 1, "b": 2}, "has 2 properties; at most 1 is allowed"),
    ("big", {"a": 1}, "has 1 property; at least 2 are required"),
])
def test_count_limits_say_the_count_and_the_limit(field, value, why):
    (error,) = Draft202012Validator(SCHEMA).iter_errors({field: value})
    assert schema_violation(error) == FieldViolation(f"$.{field}", why)


FORMS = {
    "type": "object",
    "properties": {
        "interest": {"oneOf": [
            {"type": "object", "properties": {"rate": {"type": "string"},
                                              "days": {"type": "integer"}},
             "required": ["rate", "days"], "additionalProperties": False},
            {"type": "object", "properties": {"amount": {"type": "string"}},
             "required": ["amount"], "additionalProperties": False}]},
        "payment": {"type": "object",
                    "properties": {"reference": {"type": "string"},
                                   "reference_base": {"type": "string"}},
                    "oneOf": [{"required": ["reference"]}, {"required": ["reference_base"]}]},
    },
}


def _violations(schema, data):
    return [schema_violation(e) for e in Draft202012Validator(schema).iter_errors(data)]


def test_a_value_no_form_takes_says_why_each_form_refused_it():
    # was '{"rate": "1", "days": 14, "amount": "2"} is not valid under any of the given
    # schemas': each branch came equally close, so neither the fault nor the way out showed
    [violation] = _violations(FORMS, {"interest": {"rate": "1", "days": 14, "amount": "2"}})
    assert violation == FieldViolation(
        "$.interest", '{"rate": "1", "days": 14, "amount": "2"} matches none of the allowed '
        'forms: form 1: additional properties are not allowed ("amount" was unexpected); '
        'form 2: additional properties are not allowed ("rate", "days" were unexpected)')


def test_a_value_two_forms_take_names_what_makes_it_both():
    # was '{"reference": "1", "reference_base": "2"} matches more than one of the allowed
    # forms': which two properties, and that only one may be given, left to guess
    [violation] = _violations(FORMS, {"payment": {"reference": "1", "reference_base": "2"}})
    assert violation == FieldViolation(
        "$.payment", '{"reference": "1", "reference_base": "2"} matches more than one of '
        'the allowed forms: it has "reference" and "reference_base"; give only one of them')


def test_the_closest_form_is_still_named_by_its_field():
    [violation] = _violations(FORMS, {"interest": {"rate": "1", "days": "14"}})
    assert violation == FieldViolation("$.interest.days", '"14" is not of type "integer"')
