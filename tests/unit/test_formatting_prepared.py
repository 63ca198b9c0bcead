"""The prepared amount formatting (issue 14) writes Babel's text to the byte.

`server.compose.formatting` prepares a currency pattern once per (currency, locale) and
reads a locale's number symbols once (`_SymbolsRead`), instead of Babel looking both up on
every amount. These properties compare it with Babel's own `format_currency` and
`format_decimal` for random Decimals (negative, zero, large, many decimals) in the eight
countries' locales and in currencies of 0, 2 and 3 ISO 4217 digits (JPY, ISK; KWD).
"""

from __future__ import annotations

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
    expected = format_currency(amount, currency, locale=babel_locale(locale))
    assert pattern.apply(amount, _numbers_locale(locale)) == expected


@settings(max_examples=300, deadline=None)
@given(amount=decimals(), currency=st.sampled_from(CURRENCIES),
       locale=st.sampled_from(LOCALES))
def test_money_is_format_currency_with_the_locale_minus(amount, currency, locale):
    expected = formatting._signed(
        format_currency(amount, currency, locale=babel_locale(locale)), amount, locale)
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


# --- the prepared writers (`_Written`): Babel's NumberPattern.apply to the character -------


@st.composite
def long_decimals(draw: st.DrawFn) -> Decimal:
    """Finite Decimals of up to 40 digits (past the default context's 28, where Babel's
    normalize rounds) with 0-12 decimals, either sign."""
    digits = draw(st.integers(min_value=0, max_value=10**40 - 1))
    places = draw(st.integers(min_value=0, max_value=12))
    return Decimal((int(draw(st.booleans())), tuple(map(int, str(digits))), -places))


def _same_as_babel(write, pattern, locale: str, amount: Decimal) -> None:
    """`write(amount)` is Babel's `pattern.apply(amount, locale)`, or raises as it does."""
    try:
        expected = pattern.apply(amount, babel_locale(locale))
    except Exception as exc:  # noqa: BLE001 - the same refusal is the same answer
        with pytest.raises(type(exc)):
            write(amount)
        return
    assert write(amount) == expected


@settings(max_examples=500, deadline=None)
@given(amount=st.one_of(decimals(), long_decimals()), currency=st.sampled_from(CURRENCIES),
       locale=st.sampled_from(LOCALES))
def test_currency_writer_is_babels_apply(amount, currency, locale):
    write = formatting._currency_writer(currency, locale)
    assert write is not None and write._plain  # the fast path is what is tested
    _same_as_babel(write, _currency_pattern(currency, locale), locale, amount)


@settings(max_examples=500, deadline=None)
@given(amount=st.one_of(decimals(), long_decimals()), places=st.integers(0, 4),
       locale=st.sampled_from(LOCALES))
def test_number_writer_is_babels_apply(amount, places, locale):
    write = formatting._number_writer(places, locale)
    assert write._plain
    _same_as_babel(write, formatting._number_pattern(places), locale, amount)


@pytest.mark.parametrize("text", ["NaN", "-Infinity", "Infinity", "1E+40", "-0E-30"])
@pytest.mark.parametrize("locale", LOCALES)
def test_writers_odd_values_as_babel(text, locale):
    amount = Decimal(text)
    _same_as_babel(formatting._number_writer(2, locale), formatting._number_pattern(2),
                   locale, amount)
    _same_as_babel(formatting._currency_writer("EUR", locale),
                   _currency_pattern("EUR", locale), locale, amount)


def test_writer_leaves_other_patterns_to_babel():
    from babel.numbers import parse_pattern
    scaled = parse_pattern("#,##0.00%")  # a scale: not the plain path
    write = formatting._Written(scaled, "de-DE")
    assert not write._plain
    assert write(Decimal("0.1234")) == scaled.apply(Decimal("0.1234"), babel_locale("de-DE"))


@settings(max_examples=300, deadline=None)
@given(amount=st.one_of(decimals(), long_decimals(), st.just(Decimal(0)),
                        st.just(Decimal("-0E-9"))),
       places=st.integers(min_value=4, max_value=9), locale=st.sampled_from(LOCALES))
def test_number_writer_around_str_and_format(amount, places, locale):
    """Up to 6 places the writer reads the rounded value by `str`, past 6 by `:f` (where
    `str` would write an exponent, e.g. 0E-7): Babel's text either way."""
    _same_as_babel(formatting._number_writer(places, locale), formatting._number_pattern(places),
                   locale, amount)
