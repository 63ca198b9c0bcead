"""A monetary amount with more decimals than its currency's minor unit is refused at its JSON
path, in every layout (server/compose/builders/base.py `amount(..., currency=)`); prices,
quantities, rates and percentages keep their decimals.

QA M6: NOK transactions 0.005 x 3, -0.015 and 100.125 printed 0,01 / 0,01 / 0,01 / -0,02 /
100,13 and a total of 100,14, while the exact sum 100.125 rounds to 100,13: the document's
total differed from the ledger by 1 øre. credit_limit 50000.001 and a reminder amount of
4312.505 were accepted too.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from server.compose.composer import ComposeRequest, compose
from server.compose.model import Composition
from server.errors import InvalidInput
from tests.layouts import shipped

LAYOUTS = shipped()
NOW = datetime(2026, 3, 2, 8, 0, tzinfo=UTC)
WHY = "send the amount the ledger books, rounded to the currency's minor unit"


def sample(layout_id: str, version: str | None = None) -> dict[str, Any]:
    layout = LAYOUTS.get(layout_id, version) if version else LAYOUTS.get(layout_id)
    return json.loads(layout.sample_data())


def run(layout_id: str, data: dict[str, Any], version: str | None = None) -> Composition:
    layout = LAYOUTS.get(layout_id, version) if version else LAYOUTS.get(layout_id)
    return compose(ComposeRequest(tenant="fjordbank", layout=layout, data=json.dumps(data),
                                  document_id="01JTEST", now=NOW))


def refused(layout_id: str, data: dict[str, Any], version: str | None = None
            ) -> list[tuple[str, str]]:
    with pytest.raises(InvalidInput) as info:
        run(layout_id, data, version)
    return [(v.field, v.description) for v in info.value.violations]


def test_the_testers_half_ore_transactions_are_refused_not_rounded():
    # the statement QA sent (dec3.json): every sub-øre amount is named
    data = sample("card-invoice")
    data["transactions"] = [
        {"date": f"2026-02-0{i + 1}", "description": name, "amount": value}
        for i, (name, value) in enumerate(zip("ABCDE", ["0.005", "0.005", "0.005", "-0.015",
                                                        "100.125"], strict=True))]
    assert refused("card-invoice", data) == [
        ("$.transactions[0].amount", f"NOK has 2 decimals; 0.005 has 3: {WHY}"),
        ("$.transactions[1].amount", f"NOK has 2 decimals; 0.005 has 3: {WHY}"),
        ("$.transactions[2].amount", f"NOK has 2 decimals; 0.005 has 3: {WHY}"),
        ("$.transactions[3].amount", f"NOK has 2 decimals; -0.015 has 3: {WHY}"),
        ("$.transactions[4].amount", f"NOK has 2 decimals; 100.125 has 3: {WHY}")]


@pytest.mark.parametrize("version", ["1.0.0", "2.0.0"])
@pytest.mark.parametrize(("change", "field", "value"), [
    (lambda d, v: d["transactions"][2].update(amount=v), "$.transactions[2].amount",
     "-12.345"),
    (lambda d, v: d["card_account"].update(credit_limit=v), "$.card_account.credit_limit",
     "50000.001"),
    (lambda d, v: d["invoice"].update(previous_balance=v), "$.invoice.previous_balance",
     "12480.555"),
    (lambda d, v: d["invoice"].update(payments_received=v), "$.invoice.payments_received",
     "5000.0001"),
    (lambda d, v: d["fees"][0].update(amount=v), "$.fees[0].amount", "39.005"),
    (lambda d, v: d["interest"].update(amount=v), "$.interest.amount", "136.525"),
    (lambda d, v: d["minimum_payment"].update(floor=v), "$.minimum_payment.floor", "300.001"),
], ids=["transaction", "credit_limit", "previous_balance", "payments", "fee", "interest",
        "floor"])
def test_every_card_invoice_amount_has_at_most_the_currencys_decimals(version, change, field,
                                                                      value):
    data = sample("card-invoice", version)
    change(data, value)
    places = len(value.split(".")[1])
    assert refused("card-invoice", data, version) == [
        (field, f"NOK has 2 decimals; {value} has {places}: {WHY}")]


def test_a_foreign_amount_has_the_decimals_of_its_own_currency():
    data = sample("card-invoice")
    row = next(r for r in data["transactions"] if r.get("original"))
    index = data["transactions"].index(row)
    row["original"] = {"amount": "27.995", "currency": row["original"]["currency"]}
    [(field, why)] = refused("card-invoice", data)
    assert field == f"$.transactions[{index}].original.amount"
    assert why.startswith(f"{row['original']['currency']} has 2 decimals; 27.995 has 3")


@pytest.mark.parametrize(("change", "field", "value"), [
    (lambda d, v: d["invoice"].update(amount_outstanding=v), "$.invoice.amount_outstanding",
     "4312.505"),
    (lambda d, v: d["reminder"].update(fee=v), "$.reminder.fee", "35.001"),
    (lambda d, v: d["reminder"].update(interest={"amount": v}), "$.reminder.interest.amount",
     "20.675"),
])
def test_every_reminder_amount_has_at_most_the_currencys_decimals(change, field, value):
    data = sample("payment-reminder")
    change(data, value)
    assert refused("payment-reminder", data) == [
        (field, f"NOK has 2 decimals; {value} has 3: {WHY}")]


@pytest.mark.parametrize(("change", "field", "rule"), [
    (lambda d: d["allowances_charges"][0].update(amount="1000.005"),
     "$.allowances_charges[0].amount", "BR-DEC-01"),
    (lambda d: d["allowances_charges"][1].update(amount="250.005"),
     "$.allowances_charges[1].amount", "BR-DEC-05"),
    (lambda d: d["allowances_charges"][0].update(base_amount="10000.005", percent="10")
     or d["allowances_charges"][0].pop("amount"), "$.allowances_charges[0].base_amount",
     "BR-DEC-02"),
    (lambda d: d.update(prepaid_amount="10.005"), "$.prepaid_amount", "BR-DEC-16"),
    (lambda d: d.update(rounding_amount="0.005"), "$.rounding_amount", "BR-DEC-17"),
    (lambda d: d["lines"][0].update(allowances_charges=[
        {"is_charge": False, "reason": "Rabatt", "base_amount": "100.005", "percent": "5"}]),
     "$.lines[0].allowances_charges[0].base_amount", "BR-DEC-25"),
    (lambda d: d.update(vat_accounting={"currency": "SEK", "tax_total": "100.005"}),
     "$.vat_accounting.tax_total", "BR-DEC-15"),
], ids=["allowance", "charge", "base", "prepaid", "rounding", "line base", "vat accounting"])
def test_every_b2b_invoice_amount_has_at_most_the_currencys_decimals(change, field, rule):
    data = sample("b2b-invoice")
    change(data)
    [(found, why)] = refused("b2b-invoice", data)
    currency = "SEK" if rule == "BR-DEC-15" else "NOK"
    assert found == field and why.startswith(f"[{rule}] {currency} has 2 decimals;"), why


def test_prices_quantities_and_rates_keep_their_decimals():
    # EN 16931 BT-146 (net price) and BT-129 (quantity) have no decimal limit; a rate and a
    # percentage are no amounts
    data = sample("b2b-invoice")
    data["lines"][0].update(quantity="12.125", unit_price="1450.125")
    invoice = run("b2b-invoice", data).invoice
    assert invoice is not None and str(invoice.lines[0].unit_price) == "1450.125"
    card = sample("card-invoice")
    card["card_account"]["nominal_interest_percent"] = "21.945"
    card["minimum_payment"]["rate_percent"] = "3.125"
    card["card_account"]["credit_limit"] = "50000.000"  # trailing zeros are no decimals
    assert run("card-invoice", card).amount_due is not None


def test_a_currency_without_minor_unit_takes_whole_amounts_only():
    # the minor unit is ISO 4217's (the one every amount is rounded to): JPY has none
    from server.compose.builders.base import money_decimals

    assert str(money_decimals(Decimal("1500"), "$.x", "JPY")) == "1500"
    with pytest.raises(InvalidInput) as info:
        money_decimals(Decimal("1500.5"), "$.x", "JPY")
    assert info.value.violations[0].description.startswith("JPY has 0 decimals; 1500.5 has 1")


def test_the_minor_unit_agrees_with_babels_currency_data_for_kanals_currencies():
    # One minor unit for reading and rounding: the ISO 4217 code list the e-invoices validate
    # against (server/compose/codelists/iso4217.tsv, capped at 2 by EN 16931 BR-DEC). Babel's
    # (CLDR's) digits agree for the currencies of Kanal's countries; where they differ (HUF:
    # CLDR 0, ISO 2; KWD: 3, an EN 16931 amount has 2) reading with Babel and rounding with
    # the code list would disagree, so the code list decides both.
    from babel.numbers import get_currency_precision

    from server.compose.codelists import minor_unit

    for currency in ("NOK", "SEK", "DKK", "EUR", "PLN", "GBP", "ISK", "JPY"):
        assert minor_unit(currency) == get_currency_precision(currency), currency


@settings(max_examples=400, deadline=None)
@given(digits=st.integers(min_value=0, max_value=10**15 - 1),
       places=st.integers(min_value=0, max_value=6), negative=st.booleans(),
       currency=st.sampled_from(["NOK", "EUR", "JPY", "ISK", "KWD"]))
def test_money_decimals_keeps_or_refuses_by_the_decimals_written(digits, places, negative,
                                                                 currency):
    """Trailing zeros are no decimals: an amount within the minor unit comes back with
    exactly its decimals and the same value (a zero as +0); any other is refused with the
    count of its decimals."""
    from server.compose.builders.base import money_decimals
    from server.compose.codelists import minor_unit

    value = Decimal((int(negative), tuple(map(int, str(digits))), -places))
    written = max(-value.normalize().as_tuple().exponent, 0)
    unit = minor_unit(currency)
    if written > unit:
        with pytest.raises(InvalidInput, match=f"has {written}: {WHY}"):
            money_decimals(value, "$.x", currency)
        return
    kept = money_decimals(value, "$.x", currency)
    assert kept == value and kept.as_tuple().exponent == -unit
    assert not kept.is_signed() or kept < 0
