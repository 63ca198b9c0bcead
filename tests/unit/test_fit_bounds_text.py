"""`fit_bounds_json` writes the text `json.dumps` wrote of its two dicts, byte for byte, from
entries kept per font chain (server/channels/advance_bounds.py, issue 14), and
`characters` finds what `set` finds.

The reference here is the function as it was: the character set by `set`, the `values`
dict by the same walk, and the whole written by `json.dumps`. Generated card invoices'
contexts (each twice: entries made, then entries kept) and odd JSON (escapes, tabs,
quotes, backslashes, control characters, numbers, literals, characters without a bound)
must give the same text.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime

from hypothesis import given, settings
from hypothesis import strategies as st

from load_tests.bench_bulk import composed_records
from server.channels.advance_bounds import (
    TEMPLATE_CHARACTERS,
    advance_bounds,
    chain_for,
    characters,
    fit_bounds_json,
    widest_word,
)
from server.channels.glyphs import print_composition
from server.channels.pdf import template_json
from server.compose.layouts import font_folders
from tests.layouts import shipped

NOW = datetime(2026, 3, 2, 7, 30, tzinfo=UTC)
LAYOUT = shipped().get("card-invoice")


def reference(context_json: str) -> str:
    """`fit_bounds_json` as it was written before its entries were kept."""
    chars = set(TEMPLATE_CHARACTERS).union(context_json)
    bounds = advance_bounds(chain_for(font_folders(LAYOUT), chars))
    values: dict[str, float] = {}
    stack: list[object] = [json.loads(context_json)]
    while stack:
        item = stack.pop()
        if isinstance(item, str):
            widest = widest_word(bounds, item)
            if widest is not None:
                values[item] = round(widest, 3)
        elif isinstance(item, dict):
            stack.extend(item.values())
        elif isinstance(item, list):
            stack.extend(item)
    return json.dumps({"chars": {c: bounds[c] for c in sorted(chars) if c in bounds},
                       "values": values}, ensure_ascii=False, separators=(",", ":"))


def test_card_invoices_get_the_text_json_dumps_wrote():
    for composition in composed_records(LAYOUT, 12, NOW):
        context = template_json(print_composition(composition, LAYOUT))
        expected = reference(context)
        assert fit_bounds_json(LAYOUT, context) == expected  # entries made
        assert fit_bounds_json(LAYOUT, context) == expected  # entries kept


ODD = st.lists(st.sampled_from(
    list("aZ 0-9\t\n\r\"\\/'{}[]:,.–−€øÅé\u0301\u00a0\u202f\x00\x1f\x7f")
    + ["ǄǄ", "ш", "😀", "ﷺ", "ि", "WWWWWWWW"]), max_size=12).map("".join)


@settings(max_examples=200, deadline=None)
@given(st.recursive(st.none() | st.booleans() | st.integers() | ODD,
                    lambda inner: st.lists(inner, max_size=4)
                    | st.dictionaries(ODD, inner, max_size=4), max_leaves=12))
def test_odd_json_gets_the_text_json_dumps_wrote(value):
    context = json.dumps({"v": value}, ensure_ascii=False, separators=(",", ":"))
    expected = reference(context)
    assert fit_bounds_json(LAYOUT, context) == expected
    assert fit_bounds_json(LAYOUT, context) == expected


@settings(max_examples=300, deadline=None)
@given(st.text())
def test_characters_finds_what_set_finds(text):
    assert characters(text) == set(text)
