"""An invoice line without allowances or charges skips their arithmetic (issue 14), and its
computed line is what the allowance path gives for a zero charge, to the Decimal exponent."""

from __future__ import annotations

from dataclasses import replace
from decimal import Decimal

from hypothesis import given, settings
from hypothesis import strategies as st

from server.compose import invoice
from server.compose.en16931 import LineAllowanceCharge
from server.compose.invoice import LineInput


@st.composite
def lines(draw: st.DrawFn) -> tuple[LineInput, str]:
    """A line of random quantity, price (net, or gross less a discount) and base quantity,
    in a currency of 0, 2 or 3 decimals."""
    def dec(max_digits: int, places: int, signed: bool = False) -> Decimal:
        return Decimal(draw(st.integers(min_value=-10**max_digits if signed else 0,
                                         max_value=10**max_digits))).scaleb(-places)

    net_given = draw(st.booleans())
    price = dec(9, draw(st.integers(0, 6)))
    return LineInput(
        id="1", name="Item", quantity=dec(7, draw(st.integers(0, 4)), signed=True),
        unit_code="C62", unit_price=price if net_given else None,
        gross_price=None if net_given else price,
        price_discount=None if net_given else dec(3, 2),
        base_quantity=draw(st.sampled_from([None, Decimal(1), Decimal(10), Decimal("2.5")])),
        vat_category="S", vat_rate=Decimal(25),
    ), draw(st.sampled_from(["NOK", "JPY", "KWD", "EUR"]))


@settings(max_examples=300, deadline=None)
@given(case=lines())
def test_line_without_allowances_equals_the_allowance_path(case):
    line, currency = case
    fast = invoice._line(line, currency)
    zero_charge = LineAllowanceCharge(is_charge=True, amount=Decimal(0))
    general = invoice._line(replace(line, allowances_charges=(zero_charge,)), currency)
    assert fast == replace(general, allowances_charges=())
    # Decimal equality ignores the exponent; the documents print it
    assert fast.net_amount.as_tuple() == general.net_amount.as_tuple()
    assert fast.allowances_charges == ()


def test_line_without_allowances_is_rounded_once(monkeypatch):
    rounded = []

    def counting(value, currency=None):
        rounded.append(value)
        return round_money(value, currency)

    round_money = invoice.round_money
    monkeypatch.setattr(invoice, "round_money", counting)
    line = LineInput(id="1", name="Item", quantity=Decimal(3), unit_code="C62",
                     unit_price=Decimal("33.335"), vat_category="S", vat_rate=Decimal(25))
    assert invoice._line(line, "NOK").net_amount == Decimal("100.01")
    assert len(rounded) == 1  # the net, not the net again after an empty sum of charges
    with_charge = replace(line, allowances_charges=(
        LineAllowanceCharge(is_charge=True, amount=Decimal("1.50")),))
    assert invoice._line(with_charge, "NOK").net_amount == Decimal("101.51")


@settings(max_examples=300, deadline=None)
@given(quantity=st.decimals(min_value=-10**7, max_value=10**7, places=4),
       price=st.decimals(min_value=0, max_value=10**9, places=6),
       base=st.sampled_from([None, Decimal(0)]),
       currency=st.sampled_from(["NOK", "JPY", "KWD"]))
def test_line_net_without_base_quantity_is_the_division_by_one(quantity, price, base,
                                                               currency):
    """No base quantity (or 0) divides by nothing: what a division by 1 rounds to, to the
    Decimal exponent (and a zero net is +0 either way)."""
    net = invoice.line_net_amount(quantity, price, currency, base)
    by_one = invoice.round_money(quantity * price / Decimal(1), currency)
    assert net.as_tuple() == by_one.as_tuple()
