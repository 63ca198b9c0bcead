"""Locale formatting of amounts, numbers and dates, done once while composing (Babel).

Kanal locales are BCP 47 tags ("nb-NO", "sv-SE"); Babel wants "nb_NO".

Negative amounts carry one minus sign per locale, chosen here and nowhere else, so print,
e-mail and SMS agree: the locale's CLDR minus sign (`minus_sign`). That is U+2212 MINUS SIGN
for Norwegian, Swedish and Finnish, whose writing rules (Språkrådet, Svenska skrivregler,
Kielitoimisto) ask for the true minus: it is as wide as a digit and as the plus sign, so it
lines up in tabular columns and is not mistaken for a hyphen or a dash, and screen readers
say "minus". Danish, German, Polish and English keep CLDR's hyphen-minus. Babel's own output
is not trusted for it (Babel 2.19 writes "-1 234,50 kr" for nb-NO although CLDR's nb minus
is U+2212, and releases differ), so `money` and `number` put the chosen sign in place. The
SMS channel folds U+2212 into "-" with the rest of its GSM-7 normalising.

Numbers and money are Babel's (a faster hand-made grouping of digits was measured at
~1 ms per bulk document and not kept: formatting numbers for a locale is Babel's job), but
what Babel looks up again on every call is looked up once (issue 14): a (currency, locale)
pair's pattern with its symbol and digits in place (`_currency_pattern`), and the locale's
number symbols (`_SymbolsRead`): 1.3M fewer instructions per generated card invoice, of
20.3M for its whole Compose (0.8M the prepared pattern, 0.5M the symbols; callgrind,
load_tests/count_compose.py). The text is Babel's `format_currency` / `format_decimal` to
the byte (tested against them: tests/unit/test_formatting_prepared.py), but for CLDR's
currency spacing, which Babel leaves out: en-GB writes "NOK\u00a01,193.75", not
"NOK1,193.75" (`_currency_pattern`).
Dates repeat (a statement's transactions share a month), so a date's text is kept.
"""

from __future__ import annotations

import unicodedata
from collections.abc import Mapping
from datetime import date
from decimal import Decimal
from functools import cached_property, lru_cache
from typing import Any

from babel import Locale, UnknownLocaleError
from babel.dates import format_date as _format_date
from babel.numbers import (
    NumberPattern,
    format_currency,
    get_currency_name,
    get_currency_precision,
    get_currency_symbol,
    get_minus_sign_symbol,
    parse_pattern,
)

from server.errors import InvalidInput, quote


@lru_cache(maxsize=64)
def babel_locale(tag: str) -> Locale:
    """Parse a BCP 47 tag; an unknown locale is the caller's error."""
    try:
        return Locale.parse(tag.replace("-", "_"))
    except (UnknownLocaleError, ValueError) as exc:
        raise InvalidInput.field("locale", f"unknown locale {quote(tag)}") from exc


# ISO 4217 codes that name no money a customer can pay in: "no currency", the testing
# code, precious metals, bond-market units and supranational units of account.
NOT_TENDER = frozenset({"XXX", "XTS", "XAU", "XAG", "XPT", "XPD", "XBA", "XBB", "XBC", "XBD",
                        "XDR", "XSU", "XUA"})


def check_currency(code: str, field: str = "currency") -> str:
    """Return the ISO 4217 code of a currency one can pay in; InvalidInput (with `field`)
    for a malformed or unknown code, or one of NOT_TENDER (XXX, XAU, ...), which Babel
    would otherwise format as money and whose minor unit (none) would round amounts away."""
    if not (isinstance(code, str) and len(code) == 3 and code.isalpha() and code.isupper()):
        raise InvalidInput.field(field, f"{quote(code)} is not an ISO 4217 currency code")
    if not _known_currency(code):
        raise InvalidInput.field(field, f"unknown currency {quote(code)}")
    if code in NOT_TENDER:
        raise InvalidInput.field(field, f"{code} is an ISO 4217 code but no currency a "
                                 "document can be paid in")
    return code


@lru_cache(maxsize=512)
def _known_currency(code: str) -> bool:
    return get_currency_name(code, locale="en") != code


@lru_cache(maxsize=64)
def minus_sign(locale: str) -> str:
    """The sign of a negative amount in `locale`: CLDR's minus sign, U+2212 for nb, nn, sv,
    fi; "-" (hyphen-minus) for da, de, pl, en (see the module docstring)."""
    return get_minus_sign_symbol(babel_locale(locale))


def _signed(text: str, amount: Decimal, locale: str) -> str:
    """`text` (Babel's formatting of `amount`) with the locale's minus sign, and none on an
    amount that rounds to zero ("0,00", never "-0,00"). Only the sign can be a hyphen or a
    minus in a formatted number, so it is the one replaced."""
    if not amount.is_signed():
        return text
    sign = minus_sign(locale) if any(c in "123456789" for c in text) else ""
    return text.replace("-", sign, 1) if "-" in text else text.replace("\u2212", sign, 1)


class _Symbols(dict):
    """One locale's number symbols by numbering system ("latn" -> {"decimal": ",", ...}),
    each system read from CLDR when first asked for; KeyError for one the locale lacks
    (which Babel turns into UnsupportedNumberingSystemError, as it does for any Locale)."""

    def __init__(self, source: Mapping[str, Any]) -> None:
        super().__init__()
        self._source = source

    def __missing__(self, system: str) -> dict[str, str]:
        symbols = self[system] = dict(self._source[system].items())
        return symbols


class _SymbolsRead(Locale):
    """A Babel `Locale` whose `number_symbols` are plain dicts read once. Babel's number
    formatting asks for the group and the decimal symbol on every number, each time through
    its lazy locale-data mappings (alias resolution and a wrapper per lookup): about a fifth
    of formatting a number. Only `formatting`'s own number and money calls use it."""

    @cached_property
    def number_symbols(self) -> _Symbols:  # type: ignore[override]
        return _Symbols(super().number_symbols)


@lru_cache(maxsize=64)
def _numbers_locale(tag: str) -> _SymbolsRead:
    """The `_SymbolsRead` twin of `babel_locale(tag)`."""
    parsed = babel_locale(tag)
    return _SymbolsRead(parsed.language, parsed.territory, parsed.script, parsed.variant,
                        parsed.modifier)


@lru_cache(maxsize=256)
def _currency_pattern(currency: str, locale: str) -> NumberPattern | None:
    """The locale's standard currency pattern with what `format_currency` works out on every
    call already in place: the currency's symbol ("¤") and ISO code ("¤¤") in the prefixes
    and suffixes, and its ISO 4217 digits as the fraction digits. Applied without a
    currency, it writes Babel's text (NumberPattern.apply replaces the signs in the joined
    text, and no digit or separator is a "¤"). None for a pattern that names the currency in
    words ("¤¤¤", whose plural form depends on the amount) or has no number part: those
    are left to `format_currency`."""
    parsed = babel_locale(locale)
    pattern = parsed.currency_formats["standard"]
    affixes = (*pattern.prefix, *pattern.suffix)
    if any("¤¤¤" in affix for affix in affixes) or not pattern.number_pattern:
        return None
    symbol = get_currency_symbol(currency, parsed)

    def placed(affix: str, at_number: int) -> str:
        """The affix with the currency in place; `at_number`: the index of its character
        next to the number (-1 in a prefix, 0 in a suffix). CLDR's currency spacing (UTS #35
        Numbers, currencySpacing; root, which the Kanal locales inherit), which Babel leaves
        out: a currency sign at the number whose character there is no symbol or separator
        (currencyMatch [[:^S:]&[:^Z:]]: a letter, as in "NOK") is set apart by U+00A0, so
        en-GB's "¤#,##0.00" writes "NOK\u00a01,193.75" (as ICU does), and "£1,193.75"."""
        text = affix.replace("¤¤", currency.upper()).replace("¤", symbol)
        if not (affix and affix[at_number] == "¤" and text and _apart(text[at_number])):
            return text
        return text + "\u00a0" if at_number == -1 else "\u00a0" + text

    digits = get_currency_precision(currency)
    prepared = NumberPattern(
        pattern.pattern, (placed(pattern.prefix[0], -1), placed(pattern.prefix[1], -1)),
        (placed(pattern.suffix[0], 0), placed(pattern.suffix[1], 0)), pattern.grouping,
        pattern.int_prec, (digits, digits), pattern.exp_prec, pattern.exp_plus,
        pattern.number_pattern)
    prepared.scale = pattern.scale  # from the pattern's own signs, not the symbol's
    return prepared


def money(amount: Decimal, currency: str, locale: str) -> str:
    """'12 345,67 kr' (nb-NO), '12 345,67 kr' (sv-SE), '€12,345.67' (en-IE);
    '\u22121 299,00 kr' (nb-NO), '-1.299,00 kr.' (da-DK), 'NOK\u00a01,193.75' (en-GB).
    Babel's `format_currency` text (standard format, the currency's digits), with the
    pattern prepared once per currency and locale with CLDR's currency spacing, which Babel
    leaves out (`_currency_pattern`)."""
    pattern = _currency_pattern(currency, locale)
    if pattern is None:
        text = format_currency(amount, currency, locale=babel_locale(locale))
    else:
        text = pattern.apply(amount, _numbers_locale(locale))
    return _signed(text, amount, locale)


def _apart(char: str) -> bool:
    """CLDR currencyMatch: neither a symbol (S*) nor a separator (Z*)."""
    return unicodedata.category(char)[0] not in "SZ"


@lru_cache(maxsize=16)
def _number_pattern(places: int) -> NumberPattern:
    """The parsed pattern of `number` (Babel's format_decimal parses it on every call)."""
    return parse_pattern("#,##0." + "0" * places if places else "#,##0")


def number(amount: Decimal, locale: str, places: int = 2) -> str:
    """A plain number with exactly `places` decimals: '12 345,67', '\u2212299,00' (nb-NO).
    Babel's `format_decimal` with the pattern parsed once."""
    return _signed(_number_pattern(places).apply(amount, _numbers_locale(locale)), amount,
                   locale)


# Where banks write the numeric date otherwise than CLDR's short form: German and Austrian
# banks write the year in full (DIN 5008 numeric date TT.MM.JJJJ; CLDR de short is
# "dd.MM.yy"), Polish banks the day with two digits ("02.03.2026"; CLDR pl short "d.MM.y").
SHORT_DATE = {"de": "dd.MM.y", "pl": "dd.MM.y"}


@lru_cache(maxsize=4096)
def day(value: date, locale: str, style: str = "short") -> str:
    """'15.12.2026' (nb-NO, medium is '15. des. 2026'), '2026-12-15' (sv-SE), '15.12.2026'
    (de-DE, pl-PL: `SHORT_DATE`), '15/12/2026' (en-GB), '15.12.2026' (da-DK, fi-FI)."""
    pattern = SHORT_DATE.get(locale.split("-")[0]) if style == "short" else None
    return _format_date(value, format=pattern or style, locale=babel_locale(locale))
