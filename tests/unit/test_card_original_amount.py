"""A card transaction's original amount (`$.transactions[i].original`: the amount in the
currency the card was used in) has ISO 4217's decimals of its own currency, not capped at
EN 16931's two (it never reaches an e-invoice): KWD, BHD, JOD, OMR, TND, IQD, LYD 3, JPY, ISK,
KRW none, CLF 4. It is printed in the locale's digits with the ISO code ("1,234 KWD" in
nb-NO), and refused at its JSON path with more decimals than its currency has.

QA T3: 12.345 KWD was refused ("KWD has 2 decimals"), and 1500 JPY printed "1 500,00 JPY".
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

import pytest

from server.compose.composer import ComposeRequest, compose
from server.errors import InvalidInput
from tests.layouts import shipped

LAYOUTS = shipped()
NOW = datetime(2026, 3, 2, 8, 0, tzinfo=UTC)
NBSP = "\u00a0"
WHY = "send the amount the ledger books, rounded to the currency's minor unit"


def sample(version: str = "2.0.0", name: str = "sample.json") -> dict[str, Any]:
    return json.loads((LAYOUTS.get("card-invoice", version).path / name).read_text())


def with_original(data: dict[str, Any], currency: str, value: str) -> dict[str, Any]:
    """The first transaction (a purchase) made in `currency`."""
    data["transactions"][0]["original"] = {"currency": currency, "amount": value}
    return data


def composed(data: dict[str, Any], version: str = "2.0.0") -> dict[str, Any]:
    """The first transaction's row as the templates get it."""
    layout = LAYOUTS.get("card-invoice", version)
    comp = compose(ComposeRequest(tenant="fjordbank", layout=layout, data=json.dumps(data),
                                  document_id="01JTEST", now=NOW))
    return comp.context["transactions"][0]


def refused(data: dict[str, Any], version: str = "2.0.0") -> list[tuple[str, str]]:
    layout = LAYOUTS.get("card-invoice", version)
    with pytest.raises(InvalidInput) as info:
        compose(ComposeRequest(tenant="fjordbank", layout=layout, data=json.dumps(data),
                               document_id="01JTEST", now=NOW))
    return [(v.field, v.description) for v in info.value.violations]


@pytest.mark.parametrize("version", ["1.0.0", "2.0.0"])
@pytest.mark.parametrize("currency", ["KWD", "BHD", "JOD", "OMR", "TND", "IQD", "LYD"])
def test_a_three_decimal_currency_is_read_and_printed_with_three(version, currency):
    row = composed(with_original(sample(version), currency, "1.234"), version)
    assert row["foreign"] == f"1,234{NBSP}{currency}"  # nb-NO: decimal comma
    row = composed(with_original(sample(version), currency, "1234.5"), version)
    assert row["foreign"] == f"1{NBSP}234,500{NBSP}{currency}"


def test_the_locale_writes_the_digits():
    data = with_original(sample(name="samples/en-GB.json"), "KWD", "1234.5")
    assert composed(data)["foreign"] == f"1,234.500{NBSP}KWD"


@pytest.mark.parametrize("currency", ["JPY", "ISK", "KRW"])
def test_a_currency_without_minor_unit_prints_no_decimals(currency):
    assert composed(with_original(sample(), currency, "1500"))["foreign"] == (
        f"1{NBSP}500{NBSP}{currency}")
    assert composed(with_original(sample(), currency, "1500.00"))["foreign"] == (
        f"1{NBSP}500{NBSP}{currency}")


def test_four_decimal_units_of_account_keep_four():
    assert composed(with_original(sample(), "CLF", "0.0125"))["foreign"] == f"0,0125{NBSP}CLF"


@pytest.mark.parametrize(("currency", "value", "places", "written"), [
    ("KWD", "1.2345", 3, 4), ("OMR", "-0.0001", 3, 4), ("JPY", "1500.5", 0, 1),
    ("KRW", "9900.01", 0, 2), ("EUR", "27.995", 2, 3), ("CLF", "0.00125", 4, 5)])
def test_more_decimals_than_the_currency_has_are_refused_at_the_amount(currency, value, places,
                                                                      written):
    data = with_original(sample(), currency, value)
    if value.startswith("-"):  # a refund: the original has the sign of the amount
        data["transactions"][0]["amount"] = "-" + data["transactions"][0]["amount"]
    unit = f"{places} decimal{'s' if places != 1 else ''}"
    assert refused(data) == [("$.transactions[0].original.amount",
                              f"{currency} has {unit}; {value} has {written}: {WHY}")]


def test_a_withdrawn_currency_is_refused_at_the_currency():
    # Babel still knows DEM; ISO 4217 no longer lists it, so its decimals would be a guess
    [(field, why)] = refused(with_original(sample(), "DEM", "10.00"))
    assert field == "$.transactions[0].original.currency"
    assert why.startswith("DEM is not a current ISO 4217 currency")


def test_the_print_page_shows_the_original_amount():
    from server.channels.pdf import template_variables

    layout = LAYOUTS.get("card-invoice")
    comp = compose(ComposeRequest(
        tenant="fjordbank", layout=layout, document_id="01JTEST", now=NOW,
        data=json.dumps(with_original(sample(), "KWD", "12.345"))))
    html = layout.templates.get_template("print.html").render(**template_variables(comp))
    assert f"12,345{NBSP}KWD" in html


# --- QA T6: an original amount in the invoice's own currency ---------------------------------

SAME = ("is the invoice's own currency ({code}, $.currency): an original amount is the amount "
        "in the currency a transaction was made in when it was converted; leave original out "
        "of a {code} transaction")


@pytest.mark.parametrize(("version", "name", "code"), [
    ("1.0.0", "sample.json", "NOK"), ("2.0.0", "sample.json", "NOK"),
    ("2.0.0", "sample-sv-SE.json", "SEK"), ("2.0.0", "samples/de-DE.json", "EUR")])
def test_an_original_amount_in_the_invoices_own_currency_is_refused(version, name, code):
    # was: accepted, and printed a conversion at a rate of 1 that never happened
    data = sample(version, name)
    assert data["currency"] == code
    first = data["transactions"][0]
    first["original"] = {"currency": code, "amount": str(first["amount"])}
    last = len(data["transactions"]) - 1
    data["transactions"][last]["original"] = {"currency": code, "amount": "1"}
    assert refused(data, version) == [
        ("$.transactions[0].original.currency", SAME.format(code=code)),
        (f"$.transactions[{last}].original.currency", SAME.format(code=code))]


@pytest.mark.parametrize(("amount", "currency", "value", "rate"), [
    ("318.40", "EUR", "27.99", "11,3755"),       # 0.1 or more: 4 decimals, as always
    ("1612.45", "CZK", "3495.00", "0,4614"),
    ("105.30", "JPY", "1500", "0,07020"),         # was 0,0702
    ("6.54", "IDR", "10000.00", "0,0006540"),     # was 0,0007: 7 % off the rate booked
    ("0.01", "VND", "1000000", "0,0000000100"),  # at most 10 decimals
])
def test_a_conversion_rate_keeps_four_significant_digits(amount, currency, value, rate):
    """QA: the rate beside an original amount had 4 decimals whatever its size: 6.54 NOK
    for 10,000 IDR printed "Kurs 0,0007" (0.000654), and 412.80 NOK for a large original
    printed "Kurs 0,0000"."""
    data = with_original(sample(), currency, value)
    data["transactions"][0]["amount"] = amount
    assert composed(data)["rate"] == rate
