"""`formatting.number` and `formatting.money` write what Babel writes (its
`NumberPattern.apply`, then Kanal's one minus sign), for every locale Babel knows, while
formatting the digits without Babel where the pattern allows it (server/compose/formatting.py,
"Speed"). A difference in grouping, symbols, rounding, sign, currency symbol or spacing
fails here; a pattern the fast path does not take (Indian grouping, say) is Babel's own.
"""

from __future__ import annotations

from datetime import date
from decimal import Decimal as D

import pytest
from babel.dates import format_date
from babel.localedata import locale_identifiers
from babel.numbers import format_currency

from server.compose import formatting
from server.compose.formatting import babel_locale, day, money, number

LOCALES = sorted(tag.replace("_", "-") for tag in locale_identifiers())
AMOUNTS = [D("0"), D("-0"), D("0.004"), D("-0.004"), D("0.005"), D("0.015"), D("-0.015"),
           D("0.5"), D("1"), D("-1"), D("12.3"), D("999.995"), D("1000"), D("-1234.56"),
           D("12345.675"), D("1E+3"), D("1.00000"), D("-999999999999999999.9999999999"),
           D("123456789012345678")]
CURRENCIES = ["NOK", "SEK", "DKK", "EUR", "PLN", "ISK", "JPY", "USD", "GBP", "CHF", "BHD"]


def babel_number(amount: D, locale: str, places: int) -> str:
    """What `number` wrote before the fast path: Babel's apply, then the minus sign."""
    pattern = formatting._number_pattern(places)
    return formatting._signed(pattern.apply(amount, babel_locale(locale)), amount, locale)


def babel_money(amount: D, currency: str, locale: str) -> str:
    return formatting._signed(format_currency(amount, currency, locale=babel_locale(locale)),
                              amount, locale)


@pytest.mark.parametrize("locale", LOCALES)
def test_number_and_money_are_babel_s_in_every_locale(locale: str) -> None:
    for amount in AMOUNTS:
        for places in (0, 2, 4):
            assert number(amount, locale, places) == babel_number(amount, locale, places), (
                amount, places)
        for currency in CURRENCIES:
            assert money(amount, currency, locale) == babel_money(amount, currency, locale), (
                amount, currency)


def test_the_fast_path_is_taken_for_kanal_s_locales() -> None:
    for locale in ("nb-NO", "nn-NO", "sv-SE", "da-DK", "fi-FI", "de-DE", "pl-PL", "en-GB"):
        assert formatting._currency_affixes("EUR", locale) is not None, locale
    assert formatting._currency_affixes("INR", "en-IN") is None  # grouped (3, 2): Babel's


def test_what_is_no_finite_decimal_goes_to_babel() -> None:
    assert number(D("Infinity"), "nb-NO") == babel_number(D("Infinity"), "nb-NO", 2)
    assert money(D("-Infinity"), "NOK", "nb-NO") == babel_money(D("-Infinity"), "NOK", "nb-NO")


def test_a_date_is_babel_s_and_kept() -> None:
    value = date(2026, 12, 15)
    assert day(value, "nb-NO") == format_date(value, "short", locale=babel_locale("nb-NO"))
    assert day(value, "de-DE") == "15.12.2026"  # DIN 5008, not CLDR's short "15.12.26"
    assert day(value, "nb-NO", "medium") == format_date(value, "medium",
                                                         locale=babel_locale("nb-NO"))
    assert day.cache_info().hits >= 0 and day(value, "nb-NO") is day(value, "nb-NO")
