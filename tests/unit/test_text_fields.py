"""`text_fields`: every string of the input with its JSON path, in document order, as the
print checks name a field (a key that is no identifier in brackets, list items by index)."""

from __future__ import annotations

import re
from decimal import Decimal

from server.compose.composer import parse_data
from server.compose.validation import input_fields, text_fields
from tests.layouts import shipped


def _reference(data, path="$"):
    """The plain recursive definition the walk must agree with."""
    if isinstance(data, str):
        yield path, data
    elif isinstance(data, dict):
        for key, item in data.items():
            step = f".{key}" if re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", key) else f"[{key!r}]"
            yield from _reference(item, path + step)
    elif isinstance(data, list):
        for i, item in enumerate(data):
            yield from _reference(item, f"{path}[{i}]")


def test_paths_and_order() -> None:
    data = {"a b": ["x", {"1k": "y", "ok": [["z"], 2, None]}], "n": 1, "é": "t", "_s": "u"}
    assert list(text_fields(data)) == [
        ("$['a b'][0]", "x"), ("$['a b'][1]['1k']", "y"), ("$['a b'][1].ok[0][0]", "z"),
        ("$['é']", "t"), ("$._s", "u")]
    assert list(text_fields("plain")) == [("$", "plain")]
    assert list(text_fields([])) == [] and list(text_fields(7)) == []


def test_every_sample_of_every_layout_agrees_with_the_plain_definition() -> None:
    for layout in shipped().latest():
        for sample in sorted(layout.path.glob("sample*.json")):
            data = parse_data(sample.read_text(encoding="utf-8"))
            assert list(text_fields(data)) == list(_reference(data)), sample


def test_input_fields_gives_the_numbers_too_not_booleans() -> None:
    data = parse_data('{"lines": [{"quantity": 12, "unit_price": 1450.50, "name": "x"}],'
                      ' "paid": true, "n": [3]}')
    strings, numbers = input_fields(data)
    assert strings == [("$.lines[0].name", "x")]
    assert numbers == [("$.lines[0].quantity", Decimal(12)),
                       ("$.lines[0].unit_price", Decimal("1450.50")), ("$.n[0]", Decimal(3))]
