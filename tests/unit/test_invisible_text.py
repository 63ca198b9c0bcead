"""Bidi controls and invisible characters are refused in every text of the data, naming the
field and the character (server/compose/data.py, INVISIBLE).

QA M8: "\\u202eRLO override gnirts\\u202c" as a merchant name printed reversed (the spoofing
of CVE-2021-42574, "Trojan Source"), and U+200B / U+FEFF in customer.name made one customer
two for search and duplicate detection. Joiners and the implicit direction marks stay.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

import pytest

from server.compose.composer import ComposeRequest, compose, parse_data
from server.compose.model import Composition
from server.errors import InvalidInput
from tests.layouts import shipped

LAYOUTS = shipped()
NOW = datetime(2026, 3, 2, 8, 0, tzinfo=UTC)


def sample(layout_id: str) -> dict[str, Any]:
    return json.loads(LAYOUTS.get(layout_id).sample_data())


def run(layout_id: str, data: dict[str, Any]) -> Composition:
    return compose(ComposeRequest(tenant="fjordbank", layout=LAYOUTS.get(layout_id),
                                  data=json.dumps(data), document_id="01JTEST", now=NOW))


REFUSED = [
    ("\u202a", "LEFT-TO-RIGHT EMBEDDING"), ("\u202b", "RIGHT-TO-LEFT EMBEDDING"),
    ("\u202c", "POP DIRECTIONAL FORMATTING"), ("\u202d", "LEFT-TO-RIGHT OVERRIDE"),
    ("\u202e", "RIGHT-TO-LEFT OVERRIDE"), ("\u2066", "LEFT-TO-RIGHT ISOLATE"),
    ("\u2067", "RIGHT-TO-LEFT ISOLATE"), ("\u2068", "FIRST STRONG ISOLATE"),
    ("\u2069", "POP DIRECTIONAL ISOLATE"), ("\u200b", "ZERO WIDTH SPACE"),
    ("\u2060", "WORD JOINER"), ("\ufeff", "ZERO WIDTH NO-BREAK SPACE"),
]


@pytest.mark.parametrize(("char", "name"), REFUSED, ids=[f"U+{ord(c):04X}" for c, _ in REFUSED])
def test_each_invisible_character_is_refused_naming_field_and_character(char, name):
    data = sample("card-invoice")
    data["customer"]["name"] = f"Kari{char} Nordmann"
    with pytest.raises(InvalidInput) as info:
        run("card-invoice", data)
    [violation] = info.value.violations
    assert violation.field == "$.customer.name"
    assert f"U+{ord(char):04X} {name} at 4" in violation.description


@pytest.mark.parametrize(("layout_id", "where", "field"), [
    ("card-invoice", lambda d: d["transactions"][0], "$.transactions[0].description"),
    ("payment-reminder", lambda d: d["creditor"]["address"]["lines"].__setitem__(
        0, "\u202eRLO override gnirts\u202c") or None, "$.creditor.address.lines[0]"),
    ("b2b-invoice", lambda d: d["lines"][0], "$.lines[0].description"),
    ("welcome-letter", lambda d: d["customer"], "$.customer.name"),
])
def test_a_spoofed_text_is_refused_in_every_layout(layout_id, where, field):
    data = sample(layout_id)
    target = where(data)
    if target is not None:
        target[field.rsplit(".", 1)[1]] = "\u202eRLO override gnirts\u202c"
    with pytest.raises(InvalidInput) as info:
        run(layout_id, data)
    # one violation for the field, naming both of its bidi controls (RLO ... PDF)
    assert [(v.field, v.description) for v in info.value.violations] == [
        (field, "text holds 2 characters not allowed: U+202E RIGHT-TO-LEFT OVERRIDE at 0 and "
                "U+202C POP DIRECTIONAL FORMATTING at 20 (bidi control)")]


def test_joiners_and_direction_marks_are_kept():
    # the print fonts draw Latin only, so the characters stand in Latin text here: ZWNJ
    # (U+200C, in German "Auf\u200clage" keeps the f-l ligature apart), ZWJ (U+200D) and
    # the implicit marks LRM/RLM (U+200E/U+200F); in data that is all they ever were
    data = sample("card-invoice")
    data["customer"]["name"] = "Kari Nordmann \u200e(Oslo)\u200f"
    data["transactions"][0]["description"] = "Auf\u200clage Zeitschrift \u200d"
    composition = run("card-invoice", data)
    assert composition.recipient.name == data["customer"]["name"]
    assert parse_data(json.dumps({"name": "\u0645\u06cc\u200c\u062e\u0648\u0627\u0647\u0645",
                                  "emoji": "\U0001F468\u200d\U0001F469"})) is not None
