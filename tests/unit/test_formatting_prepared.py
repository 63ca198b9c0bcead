"""The prepared amount formatting (issue 14) writes Babel's text to the byte.

`server.compose.formatting` prepares a currency pattern once per (currency, locale) and
reads a locale's number symbols once (`_SymbolsRead`), instead of Babel looking both up on
every amount. These properties compare it with Babel's own `format_currency` and
`format_decimal` for random Decimals (negative, zero, large, many decimals) in the eight
countries' locales and in currencies of 0, 2 and 3 ISO 4217 digits (JPY, ISK; KWD).
"""

from __future__ import annotations

import re
from decimal import Decimal

import pytest
from babel.numbers import format_currency, format_decimal
from hypothesis import given, settings
from hypothesis import strategies as st

from server.compose import formatting
from server.compose.formatting import _currency_pattern, _numbers_locale, babel_locale

LOCALES = ("nb-NO", "sv-SE", "da-DK", "fi-FI", "de-DE", "de-AT", "pl-PL", "en-GB")
CURRENCIES = ("NOK", "SEK", "DKK", "EUR", "PLN", "GBP", "USD", "CHF", "JPY", "ISK", "KWD")


@st.composite
def decimals(draw: st.DrawFn) -> Decimal:
    """Finite Decimals of up to 18 digits with 0-8 decimals, either sign (and -0)."""
    digits = draw(st.integers(min_value=0, max_value=10**18 - 1))
    places = draw(st.integers(min_value=0, max_value=8))
    sign = draw(st.booleans())
    return Decimal((int(sign), tuple(map(int, str(digits))), -places))


@settings(max_examples=400, deadline=None)
@given(amount=decimals(), currency=st.sampled_from(CURRENCIES),
       locale=st.sampled_from(LOCALES))
def test_prepared_currency_pattern_writes_format_currency_text(amount, currency, locale):
    pattern = _currency_pattern(currency, locale)
    assert pattern is not None  # none of these locales names the currency in words
    expected = with_currency_spacing(
        format_currency(amount, currency, locale=babel_locale(locale)))
    assert pattern.apply(amount, _numbers_locale(locale)) == expected


def with_currency_spacing(babel: str) -> str:
    """Babel's text with CLDR's currency spacing, which Babel leaves out: a letter of the
    symbol never touches a digit ("NOK1,234.50" in en-GB is "NOK\u00a01,234.50")."""
    return re.sub(r"(?<=[^\W\d_])(?=\d)|(?<=\d)(?=[^\W\d_])", "\u00a0", babel)


@settings(max_examples=300, deadline=None)
@given(amount=decimals(), currency=st.sampled_from(CURRENCIES),
       locale=st.sampled_from(LOCALES))
def test_money_is_format_currency_with_the_locale_minus(amount, currency, locale):
    spaced = with_currency_spacing(
        format_currency(amount, currency, locale=babel_locale(locale)))
    expected = formatting._signed(spaced, amount, locale)
    assert formatting.money(amount, currency, locale) == expected


@settings(max_examples=300, deadline=None)
@given(amount=decimals(), places=st.integers(min_value=0, max_value=4),
       locale=st.sampled_from(LOCALES))
def test_number_is_format_decimal_with_the_locale_minus(amount, places, locale):
    pattern = "#,##0." + "0" * places if places else "#,##0"
    expected = formatting._signed(
        format_decimal(amount, format=pattern, locale=babel_locale(locale)), amount, locale)
    assert formatting.number(amount, locale, places) == expected


@pytest.mark.parametrize(("amount", "currency", "locale", "text"), [
    ("-1234.5", "NOK", "nb-NO", "\u22121\u00a0234,50\u00a0kr"),
    ("1234.5", "EUR", "de-AT", "\u20ac\u00a01.234,50"),
    ("-1234.5", "GBP", "en-GB", "-\u00a31,234.50"),
    ("1234567", "JPY", "fi-FI", "1\u00a0234\u00a0567\u00a0\u00a5"),
    ("-12.3456", "KWD", "pl-PL", "-12,346\u00a0KWD"),
    ("-0.001", "SEK", "sv-SE", "0,00\u00a0kr"),
    # CLDR currency spacing (QA 2026-12-01: an en-GB credit note in NOK said "NOK1,193.75")
    ("1193.75", "NOK", "en-GB", "NOK\u00a01,193.75"),
    ("-1193.75", "SEK", "en-GB", "-SEK\u00a01,193.75"),
    ("5.75", "USD", "en-GB", "US$5.75"),  # "$" is a symbol character: no space
    ("1193.75", "PLN", "de-DE", "1.193,75\u00a0PLN"),  # the pattern has its space already
])
def test_money_texts(amount, currency, locale, text):
    assert formatting.money(Decimal(amount), currency, locale) == text


def test_symbols_read_once_are_the_locales_symbols():
    read = _numbers_locale("de-AT")
    assert read == babel_locale("de-AT")
    assert read.number_symbols["latn"] == dict(babel_locale("de-AT").number_symbols["latn"])
    assert read.number_symbols is read.number_symbols  # one read per locale
    with pytest.raises(KeyError):
        read.number_symbols["no-such-system"]
