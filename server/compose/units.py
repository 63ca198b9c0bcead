"""The word printed after an invoice line's quantity: "1 time", "7 timer", "1 hr", "7 stk.".

A line's unit is a UN/ECE Recommendation 20 code (EN 16931 BT-130: "HUR" hour, "MON" month,
"C62" one, "EA" each, "H87" piece, "LS" lump sum, ...). Layouts name units in their labels
(`labels.toml`, one word per locale), and a label is one word for every quantity: nb-NO
`unit_HUR = "timer"` is the plural, which printed "1 timer". Layout versions are immutable,
so `unit_word` takes the existing labels as they are and finds the form for the quantity:

1. A label `unit_<CODE>_<category>` (`unit_HUR_one = "time"`), category the quantity's CLDR
   plural category (`zero`, `one`, `two`, `few`, `many`, `other`), is the word. A layout
   that wants its own forms per quantity writes these; they win over everything below.
2. A label `unit_<CODE>` is the layout's word. When the code names a CLDR unit (`CLDR_UNITS`)
   and the label is one of that unit's CLDR forms in some length (long, short, narrow, in
   that order) for the locale, the word is CLDR's form for the quantity's category in the
   same length: da-DK "timer" is the long plural of duration-hour, so 1 prints "time";
   en-GB "hrs" is the short plural, so 1 prints "hr"; sv-SE "tim" and de-DE "Std." are short
   forms that are the same for every quantity; da-DK "md." is the short singular of
   duration-month, so 3 prints "mdr.". A label that is no CLDR form of its unit
   (fi-FI "h", nb-NO "mnd.") is an abbreviation the layout chose; it prints unchanged.
3. No label for the code: the piece codes C62 ("one"), H87 ("piece") and EA ("each") are
   one unit in Rec 20's words, so the label (1 or 2) of another of them is the word:
   en-GB "7 EA" prints "7 each" from `unit_C62`, nb-NO "7 stk.".
4. No label and a CLDR unit: CLDR's short form for the category (pl-PL 2 KGM "kg").
5. Otherwise the code itself, as the line gave it ("7 XYZ").

The plural category is CLDR's (Unicode TR 35, plural rules) through Babel, by the number's
operands, so a decimal counts as printed: da-DK 1.5 is "one" (CLDR: i = 1), en-GB 1.0 is
"other" ("1.0 hours"); callers pass the quantity with the decimals they print. Unit
patterns are CLDR's through Babel (the mapping `babel.units.format_unit` reads); a word is
a pattern less its "{0}" placeholder at either end ("{0} timer" -> "timer"); a pattern of
another shape is not used (the label, or the code, is printed instead).

Babel's locale data is slow to load, so the forms of a (locale, code, label) are read once
(`functools.lru_cache`); a bulk run's lines cost a plural-rule call and dictionary reads.
"""

from __future__ import annotations

from collections.abc import Mapping
from decimal import Decimal
from functools import lru_cache

from babel.plural import PluralRule

from server.compose.formatting import babel_locale

# UN/ECE Rec 20 code -> CLDR unit id (babel: locale._data["unit_patterns"] keys)
CLDR_UNITS: Mapping[str, str] = {
    "HUR": "duration-hour", "MIN": "duration-minute", "DAY": "duration-day",
    "WEE": "duration-week", "MON": "duration-month", "ANN": "duration-year",
    "KGM": "mass-kilogram", "GRM": "mass-gram", "TNE": "mass-tonne",
    "MTR": "length-meter", "KMT": "length-kilometer", "CMT": "length-centimeter",
    "LTR": "volume-liter", "MTQ": "volume-cubic-meter", "MTK": "area-square-meter",
    "KWH": "energy-kilowatt-hour",
}

# Rec 20 codes for one item: C62 "one", H87 "piece", EA "each" (the order a label is sought)
PIECE_CODES = ("C62", "H87", "EA")

_LENGTHS = ("long", "short", "narrow")
_PLACEHOLDER = "{0}"


def unit_word(quantity: Decimal, unit_code: str, words: Mapping[str, str], locale: str) -> str:
    """The unit word for `quantity` of `unit_code` in `locale` (module docstring: the rules).

    quantity: the line's quantity as printed (Decimal('1.5'), Decimal('7'); its sign is
    ignored, as CLDR's operands ignore it); unit_code: a Rec 20 code (BT-130); words: the
    layout's labels for `locale` (`unit_<CODE>` and `unit_<CODE>_<category>` keys are read);
    locale: a BCP 47 tag ("da-DK"). Returns a non-empty word, or `unit_code` when none is
    known. Raises InvalidInput for a locale Babel does not know (`babel_locale`)."""
    category = _plural_rule(locale)(quantity)
    codes = (unit_code, *(c for c in PIECE_CODES if c != unit_code)) \
        if unit_code in PIECE_CODES else (unit_code,)
    for code in codes:
        own = words.get(f"unit_{code}_{category}")
        if own:
            return own
        label = words.get(f"unit_{code}")
        if label:
            forms = _label_forms(locale, code, label)
            return _form(forms, category) if forms else label
    forms = _cldr_forms(locale, CLDR_UNITS[unit_code], "short") \
        if unit_code in CLDR_UNITS else None
    return _form(forms, category) if forms else unit_code


@lru_cache(maxsize=64)
def _plural_rule(locale: str) -> PluralRule:
    return babel_locale(locale).plural_form


def _form(forms: Mapping[str, str], category: str) -> str:
    # CLDR's lateral inheritance: a category without a pattern takes "other"'s
    return forms.get(category) or forms["other"]


@lru_cache(maxsize=1024)
def _label_forms(locale: str, unit_code: str, label: str) -> Mapping[str, str] | None:
    """Category -> word of the CLDR length that has `label` as a form, or None when the
    code names no CLDR unit or the label is no CLDR plural of it (an abbreviation)."""
    unit = CLDR_UNITS.get(unit_code)
    if unit is None:
        return None
    for length in _LENGTHS:
        forms = _cldr_forms(locale, unit, length)
        if forms is not None and label in forms.values():
            return forms
    return None


@lru_cache(maxsize=1024)
def _cldr_forms(locale: str, unit: str, length: str) -> Mapping[str, str] | None:
    """Category -> word of CLDR unit `unit` in `length` ("{0} timer" -> "timer"), or None
    when the locale has no such patterns or an "other" pattern of another shape."""
    patterns = babel_locale(locale)._data["unit_patterns"].get(unit, {}).get(length, {})
    forms = {}
    for category, pattern in patterns.items():
        if category == "per":  # "{0} per hour": not a count
            continue
        word = _word(pattern)
        if word:
            forms[category] = word
    return forms if "other" in forms else None


def _word(pattern: str) -> str | None:
    """"{0} timer" -> "timer", "{0}h" -> "h", "{0} h" -> "h"; None for another shape."""
    if pattern.count(_PLACEHOLDER) != 1:
        return None
    if pattern.startswith(_PLACEHOLDER):
        word = pattern[len(_PLACEHOLDER):]
    elif pattern.endswith(_PLACEHOLDER):
        word = pattern[:-len(_PLACEHOLDER)]
    else:
        return None
    return word.strip() or None
