"""Locale formatting of amounts, numbers and dates, done once while composing (Babel).

Kanal locales are BCP 47 tags ("nb-NO", "sv-SE"); Babel wants "nb_NO".
"""

from __future__ import annotations

from datetime import date
from decimal import Decimal
from functools import lru_cache

from babel import Locale, UnknownLocaleError
from babel.dates import format_date as _format_date
from babel.numbers import format_currency, format_decimal, get_currency_name

from server.errors import InvalidInput


@lru_cache(maxsize=64)
def babel_locale(tag: str) -> Locale:
    """Parse a BCP 47 tag; an unknown locale is the caller's error."""
    try:
        return Locale.parse(tag.replace("-", "_"))
    except (UnknownLocaleError, ValueError) as exc:
        raise InvalidInput.field("locale", f"unknown locale {tag!r}") from exc


def check_currency(code: str, field: str = "currency") -> str:
    """Return the ISO 4217 code, or raise if Babel does not know it."""
    if not (isinstance(code, str) and len(code) == 3 and code.isalpha() and code.isupper()):
        raise InvalidInput.field(field, f"{code!r} is not an ISO 4217 currency code")
    if get_currency_name(code, locale="en") == code:
        raise InvalidInput.field(field, f"unknown currency {code!r}")
    return code


def money(amount: Decimal, currency: str, locale: str) -> str:
    """'12 345,67 kr' (nb-NO), '12 345,67 kr' (sv-SE), '€12,345.67' (en-IE)."""
    return format_currency(amount, currency, locale=babel_locale(locale))


def number(amount: Decimal, locale: str, places: int = 2) -> str:
    """A plain number with exactly `places` decimals: '12 345,67'."""
    pattern = "#,##0." + "0" * places if places else "#,##0"
    return format_decimal(amount, format=pattern, locale=babel_locale(locale))


def day(value: date, locale: str, style: str = "short") -> str:
    """'15.12.2026' (nb-NO, medium is '15. des. 2026'), '2026-12-15' (sv-SE)."""
    return _format_date(value, format=style, locale=babel_locale(locale))
