"""The one rounding rule for money: every amount is rounded once, here, while composing.

Rule (the same for every currency, parameterised by its minor unit): an amount is rounded
half away from zero ("half-up": 0.005 -> 0.01, -0.005 -> -0.01) to the currency's minor
unit as ISO 4217 defines it, at most 2 decimals because EN 16931 amounts have at most two
(BR-DEC-*): NOK, SEK, DKK, EUR, PLN, GBP -> 0.01; JPY, ISK -> 1. The minor unit comes from
the ISO 4217 code list (`server.compose.codelists`). A zero is always positive: `-0.00`
never reaches a document (EN 16931 validators read "-0.00" as not zero, BR-E-09/BR-Z-09).

Where the rule applies: an input amount is never rounded: one with more decimals than its
currency's minor unit is refused when a builder reads it (`builders.base.amount` with a
currency, INVALID_ARGUMENT at its JSON path), because rounding a ledger's 0.005 line by line
made a document's total differ from the ledger's. Every sum or product the documents show
(line nets, VAT, totals, balances, interest) is rounded once when it is computed.
Everything after that (Babel formatting for print, e-mail and SMS, the XML writers) only
displays the rounded value: `server.compose.formatting` rounds with this same rule before
Babel, so Babel's own half-even rounding never decides.

Cash rounding (the amount due rounded to the smallest coin, BT-114) is a different,
explicit step: `round_to_increment`.
"""

from __future__ import annotations

from decimal import ROUND_HALF_UP, Decimal
from functools import lru_cache

from server.compose.codelists import minor_unit

ZERO = Decimal("0.00")
# Digits before the decimal point of any amount, read or computed (below a quadrillion):
# Finvoice 3.0 amounts have at most 15 (`monetaryAmount`, `epiAmount`: -?[0-9]{1,15}), and
# with 2 decimals an amount then has 17 digits, so sums of them stay exact within Decimal's
# default 28-digit precision.
MAX_AMOUNT_DIGITS = 15


@lru_cache(maxsize=512)  # a bulk document rounds some 200 amounts: one lookup a currency
def quantum(currency: str | None) -> Decimal:
    """The currency's smallest amount as a Decimal exponent: Decimal('0.01'), Decimal('1')."""
    return Decimal(1).scaleb(-minor_unit(currency)) if currency else Decimal("0.01")


@lru_cache(maxsize=32)
def _places_quantum(places: int) -> Decimal:
    return Decimal(1).scaleb(-places)


def round_money(value: Decimal, currency: str | None = None) -> Decimal:
    """Round half away from zero to the currency's minor unit; a zero result is +0."""
    result = value.quantize(quantum(currency), rounding=ROUND_HALF_UP)
    return result.copy_abs() if result.is_zero() else result


def round_places(value: Decimal, places: int) -> Decimal:
    """The same rule for a fixed number of decimals (display of non-money numbers)."""
    result = value.quantize(_places_quantum(places), rounding=ROUND_HALF_UP)
    return result.copy_abs() if result.is_zero() else result


def round_to_increment(value: Decimal, increment: Decimal) -> Decimal:
    """Cash rounding: `value` to the nearest multiple of `increment` (e.g. 1 krona,
    0.50 DKK), half away from zero."""
    steps = (value / increment).quantize(Decimal(1), rounding=ROUND_HALF_UP)
    result = steps * increment
    return result.copy_abs() if result.is_zero() else result


def is_rounded(value: Decimal, currency: str | None) -> bool:
    """True when `value` has no more decimals than the currency's minor unit."""
    return value == value.quantize(quantum(currency))
