"""ISO 4217 minor units (server/compose/codelists: iso4217.tsv + iso4217-other.tsv) are ISO's
own, for every currency of ISO 4217 List One, checked against the `iso4217` package (ISO's
published table). EN 16931 amounts cap them at 2 (`minor_unit`); `iso_minor_unit` does not.

QA T3: iso4217.tsv wrote KWD, BHD, JOD, OMR, TND, IQD, LYD with 2 decimals (ISO: 3) and CLF,
UYW with 2 (ISO: 4), so a card transaction's original amount of 12.345 KWD was refused.
"""

from __future__ import annotations

import pytest
from iso4217 import Currency

from server.compose.codelists import CURRENCIES, iso_minor_unit, minor_unit


def test_every_iso_4217_currency_has_isos_minor_unit():
    iso = {currency.code: currency.exponent for currency in Currency}
    assert {code: iso_minor_unit(code) for code in iso} == iso


@pytest.mark.parametrize(("code", "places"), [
    ("KWD", 3), ("BHD", 3), ("JOD", 3), ("OMR", 3), ("TND", 3), ("IQD", 3), ("LYD", 3),
    ("JPY", 0), ("ISK", 0), ("KRW", 0), ("CLF", 4), ("UYW", 4), ("NOK", 2), ("XCG", 2)])
def test_iso_minor_unit_is_not_capped(code, places):
    assert iso_minor_unit(code) == places


def test_en_16931_amounts_keep_at_most_two_decimals():
    # BR-DEC-*: the e-invoice list's minor units, capped; the list itself is unchanged
    assert [minor_unit(c) for c in ("KWD", "CLF", "JPY", "NOK", "XAU")] == [2, 2, 0, 2, 0]
    assert "XCG" not in CURRENCIES and "KWD" in CURRENCIES


def test_a_code_iso_gives_no_minor_unit_or_no_longer_lists_has_none():
    assert [iso_minor_unit(c) for c in ("XAU", "XXX", "DEM", "ANG")] == [None] * 4
