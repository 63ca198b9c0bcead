"""JSON Schema's number bounds for numbers and numeric strings alike, compared as Decimals.

A layout's schema admits money, rates and quantities as a JSON number or a numeric string
(`"type": ["number", "string"]`; `"1234.50"` keeps its exact decimals) and bounds them with
`minimum`, `maximum`, `exclusiveMinimum`, `exclusiveMaximum` (and may with `multipleOf`).
The standard's keywords bind numbers only, so a bound was a bound for `1234.5` and none for
`"1234.5"`: `"99999"` passed `"exclusiveMaximum": 1000` (QA 2026-12-02; until then only
the two interest rates were bounded by hand in the builders). Here the five keywords treat
a numeric string as the number it spells, exactly as they treat a number:

- a numeric string is what the builders read as a number (`builders.base.amount`:
  `Decimal(text.strip())`, finite); any other string is left to `pattern`, `type` and the
  builders, as before; so is a string where the schema's `type` admits none (its type
  refuses it);
- the value and the bound are compared as `Decimal`s, never as floats: a bound the schema
  writes as a float (`0.01`) is the decimal it spells (`Decimal(repr(bound))`), and
  `multipleOf` is exact (`Fraction`);
- errors are worded as jsonschema words them (`"150" is greater than the maximum of 100`
  once `server.compose.schema_errors` has shown the value as JSON), at the value's path.

`BOUNDS` (keyword -> jsonschema keyword function) extends the layouts' validator
(`server.compose.schema_regex.DataValidator`); `string_in_bounds` is the same check for the
compiled fast check (`server.compose.fast_schema`), which must never accept what the
validator refuses.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from decimal import Decimal, InvalidOperation
from fractions import Fraction
from typing import Any

from jsonschema import ValidationError

__all__ = ["BOUNDS", "KEYWORDS", "admits_strings", "as_decimal", "in_bounds",
           "string_in_bounds"]

KEYWORDS = ("minimum", "maximum", "exclusiveMinimum", "exclusiveMaximum", "multipleOf")


def as_decimal(value: Any) -> Decimal | None:
    """A number or numeric string as the exact Decimal it spells; None for anything else
    (a boolean, a non-numeric string, NaN or an infinity)."""
    if isinstance(value, bool):
        return None
    if isinstance(value, float):
        value = repr(value)  # the decimal the JSON text wrote, not the binary float
    if isinstance(value, str):
        try:
            value = Decimal(value.strip())
        except InvalidOperation:
            return None
    if isinstance(value, int):
        value = Decimal(value)
    return value if isinstance(value, Decimal) and value.is_finite() else None


def _refusal(keyword: str, bound: Any, instance: Any) -> str | None:
    """jsonschema's words for `instance` out of the `keyword` bound, or None within it (or
    when `instance` is no number and no numeric string, or the bound no number)."""
    value, limit = as_decimal(instance), as_decimal(bound)
    if value is None or limit is None:
        return None
    if keyword == "minimum" and value < limit:
        return f"{instance!r} is less than the minimum of {bound!r}"
    if keyword == "maximum" and value > limit:
        return f"{instance!r} is greater than the maximum of {bound!r}"
    if keyword == "exclusiveMinimum" and value <= limit:
        return f"{instance!r} is less than or equal to the minimum of {bound!r}"
    if keyword == "exclusiveMaximum" and value >= limit:
        return f"{instance!r} is greater than or equal to the maximum of {bound!r}"
    if keyword == "multipleOf" and limit > 0 and not is_multiple(value, limit):
        return f"{instance!r} is not a multiple of {bound!r}"
    return None


def is_multiple(value: Decimal, step: Decimal) -> bool:
    """Whether `value` is a whole multiple of `step` (> 0), exactly. The powers of ten are
    cut to what can matter first, so "1e999999999" costs no billion-digit integer."""
    v_sign, v_digits, v_exp = value.as_tuple()
    s_sign, s_digits, s_exp = step.as_tuple()
    v_int = int("".join(map(str, v_digits)))
    s_int = int("".join(map(str, s_digits)))
    if v_int == 0:
        return True
    shift = int(v_exp) - int(s_exp)  # value / step = v_int / s_int * 10**shift
    if shift >= 0:  # s_int has fewer than bit_length() factors of 2 or 5
        return Fraction(v_int * 10 ** min(shift, s_int.bit_length()), s_int).denominator == 1
    if -shift > len(v_digits):  # 10**-shift alone is beyond v_int
        return False
    return Fraction(v_int, s_int * 10 ** -shift).denominator == 1


def _keyword(name: str) -> Callable[..., Iterator[ValidationError]]:
    def check(validator: Any, bound: Any, instance: Any, schema: Any
              ) -> Iterator[ValidationError]:
        if isinstance(instance, bool) or not (validator.is_type(instance, "number")
                                              or isinstance(instance, str)
                                              and admits_strings(schema)):
            return
        message = _refusal(name, bound, instance)
        if message is not None:
            yield ValidationError(message)

    check.__name__ = name
    return check


BOUNDS = {name: _keyword(name) for name in KEYWORDS}


def admits_strings(schema: Mapping[str, Any]) -> bool:
    """Whether `schema`'s `type` (if any) admits a string: a bounded `"integer"` field
    refuses "5000" by its type already, and says so once."""
    types = schema.get("type", "string")
    return "string" in (types if isinstance(types, list) else [types])


def in_bounds(schema: Mapping[str, Any], instance: Any) -> bool:
    """Whether `instance` (a number or a string) is within every bound `schema` declares."""
    return all(_refusal(name, schema[name], instance) is None
               for name in KEYWORDS if name in schema)


def string_in_bounds(bounds: Mapping[str, Any]) -> Callable[[str], bool]:
    """`text -> bool`: a numeric string within `bounds` (a schema's bound keywords, none of
    them `multipleOf`), or a string that spells no number (its own keywords and the builders
    judge it). The same answers as `in_bounds`, with the bounds read once: it runs for every
    bounded string of every document (server.compose.fast_schema)."""
    if "multipleOf" in bounds:
        return lambda text: in_bounds(bounds, text)
    low = as_decimal(bounds.get("minimum"))
    high = as_decimal(bounds.get("maximum"))
    above = as_decimal(bounds.get("exclusiveMinimum"))
    below = as_decimal(bounds.get("exclusiveMaximum"))

    def check(text: str) -> bool:
        try:
            value = Decimal(text.strip())
        except InvalidOperation:
            return True
        if not value.is_finite():
            return True
        return not ((low is not None and value < low) or (high is not None and value > high)
                    or (above is not None and value <= above)
                    or (below is not None and value >= below))

    return check
