"""The print preflight's outsized line sum uses the price's base quantity (EN 16931 BT-149):
the line net amount (BT-131) the invoice prints is quantity x price / base quantity
(server.compose.invoice.line_net_amount), not quantity x price.

Before: a line priced per 0.001 unit whose sum of 1 000 000 000,00 ran into the VAT rate was
not recognised (quantity x price has 7 integer digits), so the line's name was blamed; and a
line priced per 20 000 units (quantity x price 11 digits, printed sum 2 500 000,50) was
blamed for another line's overflow. Rendered through the print channel (the layout's own
engine), as in production.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from decimal import Decimal

import pytest

from server.channels.pdf import PrintEngines, engine_of, render_print
from server.channels.preflight import _outsized_amount
from server.compose.composer import ComposeRequest, compose
from server.compose.invoice import line_net_amount
from server.compose.model import Channel
from server.errors import InvalidInput
from tests.layouts import shipped
from tests.pdf_inspect import pages_text

LAYOUTS = shipped()
NOW = datetime(2026, 3, 2, 9, tzinfo=UTC)
# 2.3.0: the newest b2b-invoice whose columns cannot hold every amount (2.4.0 prints them
# all, tests/unit/test_b2b_24.py); the preflight names the field there
LAYOUT = LAYOUTS.get("b2b-invoice", "2.3.0")


def data_with(*lines: dict[str, str]) -> dict:
    data = json.loads((LAYOUT.path / "sample.json").read_text(encoding="utf-8"))
    for line, values in zip(data["lines"], lines, strict=False):
        line.update(values)
    return data


def refused_fields(data: dict) -> set[str]:
    composition = compose(ComposeRequest(tenant="t", layout=LAYOUT, data=json.dumps(data),
                                         document_id="01JTEST", now=NOW,
                                         channels=(Channel.PRINT,)))
    with pytest.raises(InvalidInput) as refused:
        render_print(composition, LAYOUT, PrintEngines(engine_of(LAYOUT)))
    return {v.field for v in refused.value.violations}


# per 0.001 unit: quantity x price 1 000 000 (7 digits), the printed line sum 10 digits
SMALL_BASE = {"quantity": "1", "unit_price": "1000000.00", "base_quantity": "0.001"}
# per 20 000 units: quantity x price 50 000 010 000 (11 digits), printed 2 500 000,50
LARGE_BASE = {"quantity": "20000", "unit_price": "2500000.50", "base_quantity": "20000"}


def test_a_line_sum_made_outsized_by_a_small_base_quantity_is_named():
    assert line_net_amount(Decimal("1"), Decimal("1000000.00"),
                           base_quantity=Decimal("0.001")) == Decimal("1000000000.00")
    assert refused_fields(data_with(SMALL_BASE)) == {"$.lines[0].unit_price"}


def test_a_line_with_a_large_base_quantity_is_not_blamed_for_another_lines_sum():
    assert refused_fields(data_with(LARGE_BASE, SMALL_BASE)) == {"$.lines[1].unit_price"}


def test_a_large_base_quantity_alone_prints_its_line_sum_and_passes():
    composition = compose(ComposeRequest(tenant="t", layout=LAYOUT,
                                         data=json.dumps(data_with(LARGE_BASE)),
                                         document_id="01JTEST", now=NOW,
                                         channels=(Channel.PRINT,)))
    pdf = render_print(composition, LAYOUT, PrintEngines(engine_of(LAYOUT))).content
    assert "2500000,50" in "".join(pages_text(pdf)).replace(" ", "").replace("\xa0", "")


def test_the_line_sum_is_exact_for_the_largest_amounts_the_schema_admits():
    class Composition:  # what _outsized_amount reads of one
        source_text = [("$.lines[0].quantity", "99999999999999.99999"),
                       ("$.lines[0].unit_price", "999999999999999.99"),
                       ("$.lines[0].base_quantity", "0.0000000000000000000000000001")]
        source_numbers: list = []

    # 58 integer digits: no InvalidOperation from quantizing past 28 digits of precision
    assert _outsized_amount(Composition(), "9" * 40, lambda path: True) == (
        "$.lines[0].unit_price")


def test_the_printed_price_names_its_base_quantity():
    """A price per 100 units (BT-149) is printed '4,99 / 100': before, the line read
    '1 000 stk 4,99 ... 49,90', and quantity x printed price (4 990,00) was not the line sum."""
    data = data_with({"quantity": "1000", "unit_price": "4.99", "base_quantity": "100",
                      "unit_code": "C62"})
    composition = compose(ComposeRequest(tenant="t", layout=LAYOUT, data=json.dumps(data),
                                         document_id="01JTEST", now=NOW,
                                         channels=(Channel.PRINT,)))
    assert composition.context["lines"][0]["unit_price"] == "4,99 / 100"
    assert composition.context["lines"][0]["net"] == "49,90"
    assert composition.context["lines"][1]["unit_price"] == "399,00"  # no base quantity
    pdf = render_print(composition, LAYOUT, PrintEngines(engine_of(LAYOUT))).content
    assert "4,99 / 100" in " ".join(pages_text(pdf))
