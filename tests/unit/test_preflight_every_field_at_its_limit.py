"""A document whose every free-text field is at its schema's maxLength (found by a
new-user tester): the refusal names each field and problem once, at most
`preflight.MAX_REPORTED` of them (it listed thousands, the same ones over and over), and
the address that leaves the envelope window is blamed on the recipient's own fields, not on
another field that happens to hold the same letters."""

from __future__ import annotations

import copy
import json
from datetime import UTC, datetime
from typing import Any

import pytest

from server.channels.pdf import PrintEngines, render_print
from server.channels.preflight import MAX_REPORTED
from server.compose.composer import ComposeRequest, compose
from server.compose.model import Channel
from server.errors import InvalidInput
from tests.layouts import shipped

LAYOUTS = shipped()
NOW = datetime(2026, 3, 2, 9, tzinfo=UTC)
RECIPIENT = ("$.customer.name", "$.customer.address.")
# Strings whose rule is code's, not the schema's: not free text (a national id is checked
# by its scheme, python-stdnum; since the 2.1.0 layouts the schema has no pattern for it).
CHECKED_BY_CODE = frozenset({"national_id"})


def _resolve(schema: dict, node: dict) -> dict:
    while "$ref" in node:
        node = schema["$defs"][node["$ref"].rsplit("/", 1)[-1]]
    return node


def _free_text(node: dict) -> bool:
    return "maxLength" in node and not {"pattern", "enum", "format"} & node.keys()


def at_limit(schema: dict, node: dict, data: Any, fill: str) -> None:
    """Every free-text string of `data` (no pattern, enum or format, not `CHECKED_BY_CODE`)
    at its maxLength."""
    node = _resolve(schema, node)
    if isinstance(data, dict):
        for key, value in data.items():
            sub = _resolve(schema, node.get("properties", {}).get(key, {}))
            if isinstance(value, str) and _free_text(sub) and key not in CHECKED_BY_CODE:
                data[key] = (fill * sub["maxLength"])[:sub["maxLength"]]
            else:
                at_limit(schema, sub, value, fill)
    elif isinstance(data, list) and "items" in node:
        item = _resolve(schema, node["items"])
        for i, value in enumerate(data):
            if isinstance(value, str) and _free_text(item):
                data[i] = (fill * item["maxLength"])[:item["maxLength"]]
            else:
                at_limit(schema, item, value, fill)


@pytest.mark.parametrize("fill", ["W", "Wi "])
def test_each_field_and_problem_once_and_the_window_blames_the_recipient(fill):
    layout = LAYOUTS.get("payment-reminder")
    data = json.loads((layout.path / "sample.json").read_text(encoding="utf-8"))
    data = copy.deepcopy(data)
    at_limit(layout.schema, layout.schema, data, fill)
    composition = compose(ComposeRequest(tenant="t", layout=layout, data=json.dumps(data),
                                         document_id="01JTEST", now=NOW,
                                         channels=(Channel.PRINT,)))
    with pytest.raises(InvalidInput) as refused:
        render_print(composition, layout, PrintEngines("typst"))
    violations = refused.value.violations
    pairs = [(v.field, v.description) for v in violations]
    assert len(pairs) == len(set(pairs)) and len(pairs) <= MAX_REPORTED, len(pairs)
    window = [v for v in violations if "envelope window" in v.description]
    assert window and all(v.field.startswith(RECIPIENT) for v in window), window
