"""Limits on input data: the parser's (server/compose/data.py) for any data, the schemas' for
each field, and error messages that quote only a short prefix of a value."""

from __future__ import annotations

import base64
import json
import re
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import pytest

from server.compose.composer import ComposeRequest, compose, parse_data
from server.compose.data import MAX_DEPTH, MAX_STRING_CHARS, MAX_VALUES
from server.compose.layouts import DEFAULT_LAYOUTS_DIR, LayoutRegistry
from server.errors import InvalidInput
from tests.layouts import shipped

LAYOUTS = LayoutRegistry(DEFAULT_LAYOUTS_DIR)


def violations(text: str) -> list[tuple[str, str]]:
    with pytest.raises(InvalidInput) as info:
        parse_data(text)
    return [(v.field, v.description) for v in info.value.violations]


@pytest.mark.parametrize(("text", "field", "why"), [
    ('{"a": 1e309}', "$.a", "more than 18 digits before"),
    ('{"a": {"b": 123456789012345678901234567890}}', "$.a.b", "more digits than"),
    ('{"a": [1, -9999999999999999999]}', "$.a[1]", "more digits than"),
    ('{"a": 0.12345678901}', "$.a", "more than 10 digits after"),
    ('{"a": 1e-400}', "$.a", "more than 10 digits after"),
    ('{"a": NaN}', "$.a", "not a JSON number"),
    ('{"a": -Infinity}', "$.a", "not a JSON number"),
    ('{"a": "\\ud800"}', "$.a", "lone surrogate"),
    ('{"a": ["ok", "x\\udfffy"]}', "$.a[1]", "lone surrogate"),
    ('{"a": "nul\\u0000"}', "$.a", "U+0000"),
    ('{"a": "bell\\u0007"}', "$.a", "U+0007"),
    ('{"a": "\\uffff"}', "$.a", "U+FFFF"),
    ('{"a\\u0000b": 1}', "$", "key"),
    ('{"' + "k" * 101 + '": 1}', "$", "key"),
    ('{"a": "' + "x " * (MAX_STRING_CHARS // 2 + 1) + '"}', "$.a", "longer than"),
])
def test_values_outside_the_limits_are_refused_with_their_path(text, field, why):
    found = violations(text)
    assert len(found) == 1 and found[0][0] == field and why in found[0][1], found
    assert len(found[0][1]) < 200


def test_deep_nesting_is_refused_at_any_depth():
    assert violations('{"a": ' + "[" * (MAX_DEPTH + 1) + "]" * (MAX_DEPTH + 1) + "}")[0][1] \
        == f"nested deeper than {MAX_DEPTH} levels"
    deep = violations('{"a": ' + "[" * 900 + "]" * 900 + "}")
    assert [why for _, why in deep] == [f"nested deeper than {MAX_DEPTH} levels"]
    # beyond Python's recursion limit the parser itself gives up: still named at the path
    # of the first array MAX_DEPTH deep, as any depth is, not at `data`
    assert violations('{"a": ' + "[" * 100_000 + "]" * 100_000 + "}") == [
        ("$.a" + "[0]" * (MAX_DEPTH - 1), f"nested deeper than {MAX_DEPTH} levels")]


@pytest.mark.parametrize("inner", [
    lambda depth: '{"amount": 1}, ' + '{"n": ' * depth + "1" + "}" * depth,
    lambda depth: '"[{,", {"k\\",]": [0, ' + "[" * depth + "]" * depth + "]}",
], ids=["objects", "strings that look like structure"])
def test_nesting_past_the_parser_is_named_as_nesting_within_it(inner):
    """The path of JSON nested past Python's recursion limit (found by scanning the text)
    is the path the walk names for the same JSON nested less deep."""
    def text(depth: int) -> str:
        return '{"transactions": [' + inner(depth) + "]}"

    within = violations(text(MAX_DEPTH + 5))
    assert within[0][0].startswith("$.transactions[1]")
    assert violations(text(50_000)) == within


def test_good_data_keeps_exact_decimals_and_text():
    data = parse_data('{"a": 12345678901234567.5, "b": 0.1, "c": "tab\\tok \\ud83d\\ude00", '
                      '"d": 123456789012345678}')
    assert str(data["a"]) == "12345678901234567.5" and str(data["b"]) == "0.1"
    assert data["c"] == "tab\tok \U0001F600" and data["d"] == 123456789012345678


SAMPLE = (LAYOUTS.get("card-invoice").path / "sample.json").read_text(encoding="utf-8")
NUMBER = "<number %s>"  # written into the JSON text as the number literal itself


@pytest.mark.parametrize(("change", "field", "why"), [
    (lambda d: d["transactions"][-1].update(description="x\ufffey"),
     "$.transactions[{last}].description", "U+FFFE"),
    (lambda d: d["transactions"][-1].update(place="\ud800"),
     "$.transactions[{last}].place", "lone surrogate"),
    (lambda d: d["transactions"][-1].update({"k" * 101: 1}), "$.transactions[{last}]", "key"),
    (lambda d: d["customer"]["address"].update(
        lines=["Storgata " * (MAX_STRING_CHARS // 9 + 1)]),
     "$.customer.address.lines[0]", "longer than"),
    (lambda d: d["transactions"][-1].update(amount=NUMBER % "0.00000000001"),
     "$.transactions[{last}].amount", "more than 10 digits after"),
    (lambda d: d["transactions"][-1].update(amount=NUMBER % "1e18"),
     "$.transactions[{last}].amount", "more than 18 digits before"),
    (lambda d: d["customer"].update(deep=json.loads("[" * MAX_DEPTH + "]" * MAX_DEPTH)),
     "$.customer.deep" + "[0]" * (MAX_DEPTH - 2), "nested deeper"),
], ids=["noncharacter", "surrogate", "key", "long text", "decimals", "digits", "depth"])
def test_a_value_outside_the_limits_deep_in_a_real_document_is_found(change, field, why):
    """The limits' quick all-clear (one pass, no paths) never waves through what the
    path-naming walk refuses: one bad value among a whole card invoice's."""
    data = json.loads(SAMPLE)
    assert parse_data(SAMPLE)  # the sample itself is within the limits
    change(data)
    text = re.sub(r'"<number (.*?)>"', r"\1", json.dumps(data, ensure_ascii=False))
    found = violations(text)
    last = len(data["transactions"]) - 1
    assert [(f, w) for f, w in found if why in w] == [
        (field.format(last=last), next(w for _, w in found if why in w))], found


def test_more_values_than_the_limit_are_refused():
    assert violations('{"a": [' + ",".join(["0"] * MAX_VALUES) + "]}") == [
        ("$", f"has more than {MAX_VALUES} values")]


# --- the schemas ---------------------------------------------------------------------------


_MAPS = ("properties", "$defs", "patternProperties", "dependentSchemas")
_ONE = ("items", "additionalProperties", "not", "if", "then", "else", "contains",
        "propertyNames", "unevaluatedProperties", "unevaluatedItems")
_MANY = ("oneOf", "anyOf", "allOf", "prefixItems")


def _nodes(node: Any, path: str = "#"):
    """Every (sub)schema of a JSON Schema, with its JSON pointer."""
    if not isinstance(node, dict):
        return
    yield path, node
    for key in _MAPS:
        for name, sub in node.get(key, {}).items():
            yield from _nodes(sub, f"{path}/{key}/{name}")
    for key in _ONE:
        yield from _nodes(node.get(key), f"{path}/{key}")
    for key in _MANY:
        for n, sub in enumerate(node.get(key, [])):
            yield from _nodes(sub, f"{path}/{key}/{n}")


def _types(node: dict) -> set[str]:
    kind = node.get("type")
    return set(kind if isinstance(kind, list) else [kind])


@pytest.mark.parametrize("layout", LAYOUTS.latest(), ids=lambda layout: layout.ref)
def test_every_string_and_number_of_the_newest_schemas_is_bounded(layout):
    unbounded = [
        path for path, node in _nodes(dict(layout.schema))
        if ("string" in _types(node) and "maxLength" not in node
            and "enum" not in node and "const" not in node)
        or (_types(node) & {"number", "integer"}
            and not {"maximum", "exclusiveMaximum"} & node.keys())
        or (_types(node) & {"number", "integer"}
            and not {"minimum", "exclusiveMinimum"} & node.keys())
    ]
    assert not unbounded, f"{layout.ref}: fields without maxLength or range: {unbounded}"


def _compose(layout_ref: str, change) -> InvalidInput:
    layout_id, version = layout_ref.split("@")
    layout = LAYOUTS.get(layout_id, version)
    data = json.loads(layout.sample_data())
    change(data)
    text = json.dumps(data, ensure_ascii=False)
    with pytest.raises(InvalidInput) as info:
        compose(ComposeRequest(tenant="t", layout=layout, data=text.replace('"@BIG@"', "1e309"),
                               document_id="01J0000000000000000000000", now=datetime.now(UTC)))
    return info.value


@pytest.mark.parametrize("version", ["1.0.0", "2.0.0"])
def test_a_number_beyond_decimal_range_is_invalid_with_its_path(version):
    error = _compose(f"card-invoice@{version}",
                     lambda d: d["invoice"].__setitem__("previous_balance", "@BIG@"))
    assert [v.field for v in error.violations] == ["$.invoice.previous_balance"]


@pytest.mark.parametrize("version", ["1.0.0", "2.0.0"])
def test_b2b_amounts_beyond_any_invoice_are_invalid_not_a_crash(version):
    def huge(data):
        data["lines"][0]["quantity"] = "9" * 20
        data["lines"][0]["unit_price"] = "9" * 20
    error = _compose(f"b2b-invoice@{version}", huge)
    assert error.violations


def test_a_megabyte_value_is_quoted_as_a_short_prefix():
    big = "Å" * 1_000_000
    error = _compose("card-invoice@2.0.0", lambda d: d["customer"].__setitem__("name", big))
    assert [v.field for v in error.violations] == ["$.customer.name"]
    assert all(len(v.description) < 300 for v in error.violations)
    assert len(str(error)) < 1000
    date_error = _compose("b2b-invoice@2.0.0", lambda d: d.__setitem__("issue_date", "9" * 5000))
    assert {v.field for v in date_error.violations} == {"$.issue_date"}  # pattern, length
    assert all(len(v.description) < 300 for v in date_error.violations)


def test_a_pattern_ending_in_dollar_refuses_a_trailing_newline():
    """JSON Schema patterns are ECMA-262: `$` is the end of the text (Python's `$` also
    matched before a final newline) and `\\d` is [0-9]. Read centrally, for every layout."""
    import json as _json

    from server.compose.composer import validate
    from server.errors import InvalidInput as _InvalidInput

    layout = shipped().get("card-invoice", "2.0.0")
    data = _json.loads(layout.sample_data(), parse_float=Decimal)
    data["customer"]["mobile"] = "+4791234567\n"
    with pytest.raises(_InvalidInput) as info:
        validate(layout, data)
    assert [v.field for v in info.value.violations] == ["$.customer.mobile"]
    data["customer"]["mobile"] = "+4791234567"
    validate(layout, data)


def test_ecma_pattern_translation():
    from server.compose.schema_regex import DataValidator, ecma_to_python

    assert ecma_to_python(r"^\+[1-9][0-9]{6,14}$") == r"^\+[1-9][0-9]{6,14}\Z"
    assert ecma_to_python(r"^[\d$]+\$$") == r"^[0-9$]+\$\Z"
    digits = DataValidator({"type": "string", "pattern": r"^\d+$"})
    assert digits.is_valid("123") and not digits.is_valid("١٢٣") and not digits.is_valid("1\n")


def test_decimal_values_in_messages_are_written_as_numbers():
    from server.errors import quote

    assert quote(Decimal("0.0000001")) == "0.0000001"
    assert quote(Decimal("1.50")) == "1.50"


def test_values_in_messages_are_written_as_json_writes_them():
    # were Python reprs: True, None, 'a', {'days': Decimal('-14')}
    from server.errors import quote, quote_printed

    assert [quote(v) for v in (True, None, "a'b", 7)] == ["true", "null", '"a\'b"', "7"]
    assert quote({"rate_percent": Decimal("12.50"), "days": -14}) == (
        '{"rate_percent": 12.50, "days": -14}')
    assert quote("Ö" * 100) == '"' + "Ö" * 40 + '…"'  # cut inside its quotes
    assert quote_printed("100\xa0000\r\nkr") == '"100 000 kr"'


def test_an_amount_with_too_many_decimals_is_quoted_as_written():
    layout = LAYOUTS.get("card-invoice", "2.0.0")
    data = json.loads(layout.sample_data())
    data["transactions"][0]["amount"] = "__AMOUNT__"
    text = json.dumps(data).replace('"__AMOUNT__"', "0.0000001")
    with pytest.raises(InvalidInput) as info:
        compose(ComposeRequest(tenant="t", layout=layout, data=text, document_id="01D",
                               now=datetime.now(UTC)))
    assert [(v.field, v.description) for v in info.value.violations] == [
        ("$.transactions[0].amount", "0.0000001 has more than 6 decimals")]


def test_a_supporting_document_in_base64_may_be_longer_than_any_text():
    # EN 16931 BG-24: a 150 KB timesheet PDF is 200,000 base64 characters; the b2b schema
    # allows 4,000,000, and the data limits refused everything over 20,000
    layout = shipped().get("b2b-invoice")
    data = json.loads(layout.sample_data())
    content = base64.b64encode(bytes(range(256)) * 600).decode("ascii")
    assert len(content) > 10 * MAX_STRING_CHARS
    data["attachments"] = [{"id": "TS-1", "description": "Timeliste mars",
                            "filename": "timeliste.pdf", "mime_code": "application/pdf",
                            "content": content}]
    assert parse_data(json.dumps(data))["attachments"][0]["content"] == content
    compose(ComposeRequest(tenant="t", layout=layout, data=json.dumps(data), document_id="ATT",
                           now=datetime(2026, 3, 2, tzinfo=UTC)))  # the schema and EN 16931
    # text of that length is still refused, with its path
    data["attachments"][0]["content"] = "é" * (MAX_STRING_CHARS + 1)
    with pytest.raises(InvalidInput) as refused:
        parse_data(json.dumps(data))
    assert [v.field for v in refused.value.violations] == ["$.attachments[0].content"]
