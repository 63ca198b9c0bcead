"""Products are computed exactly, and an amount too large for any e-invoice is refused at its
line (found by QA).

Quantity 739181059823.204858 x price 9679317715601.108232 is 7154768327383549370111672.374766...
(37 digits); Decimal's default 28-digit precision rounded it to ...672.3748 before the
rounding to cents, and the archived UBL said LineExtensionAmount ...672.38. Now every
product is exact (`server.compose.invoice`), and a computed amount with more than 15 digits
before the point (`money.MAX_AMOUNT_DIGITS`, Finvoice's limit, as for every amount read) is
refused with INVALID_ARGUMENT at the JSON path of its line's quantity, or of the percentage
an allowance or charge came from.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from decimal import ROUND_HALF_UP, Decimal
from fractions import Fraction
from typing import Any

import pytest

from server.compose.composer import ComposeRequest, compose
from server.compose.invoice import line_net_amount, percent_of, vat_amount
from server.errors import InvalidInput
from tests.layouts import shipped

LAYOUT = shipped().get("b2b-invoice")
NOW = datetime(2026, 3, 2, 9, tzinfo=UTC)
QUANTITY, PRICE = Decimal("739181059823.204858"), Decimal("9679317715601.108232")


def cents(exact: Fraction) -> Decimal:
    """The exact value rounded half away from zero to cents, without Decimal arithmetic."""
    hundredths = exact * 100
    whole = int(abs(hundredths) + Fraction(1, 2))  # half up on the magnitude
    return (Decimal(whole if hundredths >= 0 else -whole) / 100).quantize(
        Decimal("0.01"), rounding=ROUND_HALF_UP)


def test_a_long_product_keeps_its_cent() -> None:
    assert line_net_amount(QUANTITY, PRICE) == Decimal("7154768327383549370111672.37")
    assert line_net_amount(QUANTITY, PRICE) == cents(Fraction(QUANTITY) * Fraction(PRICE))


@pytest.mark.parametrize(("base", "percent"), [
    # 28 digits of the product rounded it up to a half cent, the cent rounding up again
    (Decimal("962863707977763499999.36"), Decimal("12.500001")),
    (Decimal("-555092223518235731652.51"), Decimal("45.594302")),
])
def test_vat_and_percentages_of_long_amounts_are_exact(base, percent) -> None:
    exact = cents(Fraction(base) * Fraction(percent) / 100)
    assert vat_amount(base, percent) == exact
    assert percent_of(base, percent, "NOK") == exact


def test_a_quotient_by_a_base_quantity_is_rounded_once() -> None:
    base = Decimal("3")
    assert line_net_amount(QUANTITY, PRICE, base_quantity=base) == \
        cents(Fraction(QUANTITY) * Fraction(PRICE) / 3)


def _compose(edit) -> Any:
    data = json.loads((LAYOUT.path / "sample.json").read_text())
    edit(data)
    return compose(ComposeRequest(tenant="t", layout=LAYOUT, data=json.dumps(data),
                                  document_id="d", now=NOW))


def test_a_line_amount_beyond_15_digits_is_refused_at_its_quantity() -> None:
    def edit(data: dict[str, Any]) -> None:
        data["lines"][3].update(quantity=str(QUANTITY), unit_price=str(PRICE))

    with pytest.raises(InvalidInput) as caught:
        _compose(edit)
    [violation] = caught.value.violations
    assert violation.field == "$.lines[3].quantity"
    assert "$.lines[3].unit_price" in violation.description
    assert "25 digits before the decimal point" in violation.description


def test_an_allowance_beyond_15_digits_is_refused_at_its_percent() -> None:
    def edit(data: dict[str, Any]) -> None:
        data["allowances_charges"] = [{
            "is_charge": True, "reason": "Gebyr", "base_amount": "999999999999999.99",
            "percent": "1000", "vat_category": "S", "vat_rate": "25"}]

    with pytest.raises(InvalidInput) as caught:
        _compose(edit)
    assert [v.field for v in caught.value.violations] == ["$.allowances_charges[0].percent"]


def test_the_largest_line_amount_is_composed() -> None:
    def edit(data: dict[str, Any]) -> None:
        data["lines"] = data["lines"][:1]
        # exempt: 25 % VAT would take the total with VAT (BT-112) to 16 digits, refused
        data["lines"][0].update(quantity="3", unit_price="333333333333333.33",
                                vat_category="E", vat_rate="0")
        data.pop("allowances_charges", None)

    invoice = _compose(edit).invoice
    assert invoice.lines[0].net_amount == Decimal("999999999999999.99")


def _many_lines(count: int, price: str, category: str = "S", rate: str = "25"):
    def edit(data: dict[str, Any]) -> None:
        line = dict(data["lines"][0], quantity="1", unit_price=price, vat_category=category,
                    vat_rate=rate)
        line.pop("description", None)
        data["lines"] = [dict(line, id=str(i)) for i in range(1, count + 1)]
        data.pop("allowances_charges", None)
    return edit


def test_a_total_of_lines_each_within_15_digits_is_refused_at_the_lines() -> None:
    # 20 lines of 999 999 999 999 999.99 each are within the limit; their sum (BT-106,
    # 17 digits) is not. It was composed and archived (no channel, no check looked at the
    # sum), though Finvoice cannot write it; now refused at $.lines naming the term
    with pytest.raises(InvalidInput) as caught:
        _compose(_many_lines(20, "999999999999999.99"))
    assert caught.value.message == "amounts too large to compute exactly"
    [violation] = caught.value.violations
    assert violation.field == "$.lines"
    assert violation.description == (
        "the sum of the line net amounts (BT-106) has 17 digits before the decimal point; "
        "an amount has at most 15")


def test_a_total_with_vat_beyond_15_digits_names_bt_112() -> None:
    # 9 x 100 000 000 000 000 = 900 trillion fits; 25 % VAT on it takes BT-112 to 16 digits
    with pytest.raises(InvalidInput) as caught:
        _compose(_many_lines(9, "100000000000000.00"))
    [violation] = caught.value.violations
    assert violation.field == "$.lines"
    assert "the total with VAT (BT-112) has 16 digits" in violation.description


def test_one_vat_category_beyond_15_digits_is_refused_though_the_sum_fits() -> None:
    # an invoice may have negative lines: the categories cancel in BT-106, not in BT-116
    def edit(data: dict[str, Any]) -> None:
        _many_lines(2, "600000000000000.00", "E", "0")(data)
        data["lines"] += [dict(data["lines"][0], id=str(i), unit_price="-600000000000000.00",
                               vat_category="Z", vat_rate="0") for i in (3, 4)]

    with pytest.raises(InvalidInput) as caught:
        _compose(edit)
    [violation] = caught.value.violations
    assert violation.field == "$.lines"
    assert "taxable amount of VAT category E 0% (BT-116) has 16 digits" in \
        violation.description


def test_the_largest_total_is_composed() -> None:
    invoice = _compose(_many_lines(8, "99999999999999.99")).invoice  # x 1.25: 15 digits
    assert invoice.totals.payable == Decimal("999999999999999.90")


def test_a_card_invoice_total_beyond_15_digits_is_refused_at_its_transactions() -> None:
    # the card invoice's EN 16931 lines are the previous balance, the transactions, the
    # interest and the fees: their sum is named at the transactions, not at a `$.lines`
    # the card data does not have
    layout = shipped().get("card-invoice")
    data = json.loads((layout.path / "sample.json").read_text())
    data["transactions"][0]["amount"] = "999999999999999.99"
    with pytest.raises(InvalidInput) as caught:
        compose(ComposeRequest(tenant="t", layout=layout, data=json.dumps(data),
                               document_id="d", now=NOW))
    [violation] = caught.value.violations
    assert violation.field == "$.transactions"
    assert violation.description.startswith("the sum of the line net amounts (BT-106) has 16 "
                                            "digits before the decimal point")
