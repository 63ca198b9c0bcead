"""Payment references: a reference base -> a structured reference with check digit(s).

A creditor numbers an invoice (customer number, invoice number, ...); the bank wants that
number with check digit(s) in the scheme of the country it pays in, so that a mistyped
reference is refused at the payer's bank and the payment can be matched automatically:

- ``kid_mod10`` / ``kid_mod11``  Norway, KID with a MOD10 (Luhn) or MOD11 check digit
- ``ocr`` / ``ocr_luhn``         Sweden, OCR with length digit + Luhn, or Luhn only
- ``fik`` / ``fik75``            Denmark, FIK code line of card type 71 (15-digit payment id)
                                 or 75 (16 digits), the payment id ending in a Luhn digit
- ``fik73``                      Denmark, FIK card type 73: no payment id (the payer writes
                                 a message), only the creditor number: ``+73<+creditor<``
- ``fi``                         Finland, national reference (weights 7, 3, 1)
- ``rf``                         ISO 11649 creditor reference (MOD 97-10), usable across SEPA
- ``gb``                         United Kingdom, the payer's reference of a Bacs / Faster
                                 Payments credit (1-18 characters; no check digit exists)
- ``text``                       unstructured remittance information: the SEPA
                                 "Verwendungszweck" (DE, AT) or the Polish transfer title
                                 ("tytuł przelewu"), 1-140 characters

`make_reference` appends the check digit(s) to a base; `parse_reference` checks a complete
reference as a payer or a tenant's data supplies it. Both return the same frozen
`PaymentReference`, so for every valid base ``parse(make(base).value) == make(base)`` and
``parse(make(base).display) == make(base)``: every reference Kanal prints is accepted back.

KID MOD11 and "-": when the MOD11 remainder is 10 the check "digit" would be "-". Several
Norwegian banks refuse such KIDs and a KID field that takes digits only cannot hold one, so
Kanal never issues or prints one: a base whose check would be "-" is refused with a message
saying what to do instead (another base, e.g. the next invoice number, or KID MOD10), and a
complete KID ending in "-" is refused as input. Changing the base or the algorithm behind
the creditor's back is not an option: the bank's KID agreement fixes the algorithm, and the
creditor matches payments on the base.

python-stdnum provides Luhn, MOD 97-10 and ISO 11649 and is used for them. It has no module
for the KID MOD11 variant, the Swedish OCR length digit, the Danish FIK code line or the
Finnish national reference (stdnum 2.2: ``stdnum.no``, ``stdnum.se``, ``stdnum.dk`` and
``stdnum.fi`` hold only person, company, VAT and account numbers), so those few lines are
written here.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass

from stdnum import iso11649, luhn
from stdnum.iso7064 import mod_97_10

from server.compose.model import PaymentReference

__all__ = [
    "SCHEMES",
    "ReferenceError",
    "default_scheme",
    "make_reference",
    "parse_reference",
]


# Shadows the builtin ReferenceError (weak references) inside this module only; the name is
# part of the agreed API. Import it as `references.ReferenceError` where that matters.
class ReferenceError(ValueError):
    """Why a reference or base is invalid (message is shown to callers)."""


SCHEMES: tuple[str, ...] = ("kid_mod10", "kid_mod11", "ocr", "ocr_luhn", "fik", "fik73", "fik75",
                            "fi", "rf", "gb", "text")

# Display grouping. Digit references are grouped in fives *from the right*: that is how
# Finnish references are printed by convention, it keeps the check digit(s) in the last
# group where the payer compares them, and Norwegian and Swedish giros have no stricter rule,
# so one rule serves all three. RF goes in groups of four from the left like an IBAN (the
# ISO 11649 / stdnum presentation). FIK is shown as its code line: Danish payers type card
# type, payment id and creditor exactly as they appear there.
_DIGIT_GROUP = 5


# --- small helpers --------------------------------------------------------------------------


def _compact(value: str) -> str:
    """Remove every whitespace character, including the no-break and thin spaces that come
    along when a reference is copied out of a PDF (str.split() knows them all)."""
    return "".join(value.split())


def _group_from_right(text: str, size: int = _DIGIT_GROUP) -> str:
    head = len(text) % size
    groups = [text[:head]] if head else []
    groups += [text[i : i + size] for i in range(head, len(text), size)]
    return " ".join(groups)


def _require_str(what: str, value: object) -> str:
    if not isinstance(value, str):
        raise ReferenceError(f"{what} must be a string, got {type(value).__name__}")
    return value


def _require_digits(what: str, text: str, *, start: int = 1) -> None:
    """ASCII digits only: str.isdigit() would let through '²' or Arabic-Indic digits that no
    bank accepts. `start` is the 1-based position of text[0] within what the caller sent."""
    for offset, char in enumerate(text):
        if not "0" <= char <= "9":
            raise ReferenceError(
                f"{what} may contain only digits 0-9, found {char!r} at position {start + offset}"
            )


def _require_length(what: str, text: str, low: int, high: int, unit: str = "digits") -> None:
    if not text:
        raise ReferenceError(f"{what} is empty")
    if not low <= len(text) <= high:
        raise ReferenceError(f"{what} must be {low}-{high} {unit}, got {len(text)}")


def _mismatch(what: str, value: str, name: str, found: str, expected: str) -> ReferenceError:
    verb = "do" if name.endswith("digits") else "does"
    return ReferenceError(f"{what} {value}: {name} {found} {verb} not match, expected {expected}")


# --- check digit calculations stdnum does not have -------------------------------------------


def _kid_mod11(base: str) -> str:
    """Norwegian KID MOD11: weights 2, 3, 4, 5, 6, 7 repeating from the rightmost digit;
    check = 11 - (sum mod 11), where 11 becomes "0" and 10 becomes "-" (the bank rule's
    check character, which Kanal refuses to issue: see the module docstring)."""
    total = sum(int(d) * (2 + i % 6) for i, d in enumerate(reversed(base)))
    check = 11 - total % 11
    return {11: "0", 10: "-"}.get(check, str(check))


def _finnish(base: str) -> str:
    """Finnish national reference: weights 7, 3, 1 repeating from the rightmost digit;
    check = (10 - sum mod 10) mod 10."""
    weights = (7, 3, 1)
    total = sum(int(d) * weights[i % 3] for i, d in enumerate(reversed(base)))
    return str((10 - total % 10) % 10)


def _ocr_length_digit(base: str) -> str:
    """Swedish OCR length digit: the full length (base + length digit + check digit) mod 10."""
    return str((len(base) + 2) % 10)


# --- schemes with check characters appended to a digit base ----------------------------------


@dataclass(frozen=True, slots=True)
class _Appended:
    """A scheme whose reference is `base + suffix`, the suffix computed from the base."""

    label: str
    min_total: int  # bank limits on the complete reference, check characters included
    max_total: int
    suffix_len: int
    suffix: Callable[[str], str]

    @property
    def min_base(self) -> int:
        # At least one digit of base: a reference that is only check digits identifies nothing.
        return max(1, self.min_total - self.suffix_len)

    @property
    def max_base(self) -> int:
        return self.max_total - self.suffix_len

    def build(self, scheme: str, base: str) -> PaymentReference:
        value = base + self.suffix(base)
        return PaymentReference(scheme=scheme, value=value, display=_group_from_right(value))


_APPENDED: dict[str, _Appended] = {
    # Norway: KID 2-25 characters including the check digit.
    "kid_mod10": _Appended("KID (MOD10)", 2, 25, 1, luhn.calc_check_digit),
    "kid_mod11": _Appended("KID (MOD11)", 2, 25, 1, _kid_mod11),
    # Sweden: OCR 2-25 digits including the length digit (if any) and the check digit.
    "ocr": _Appended(
        "OCR reference",
        2,
        25,
        2,
        lambda base: (length := _ocr_length_digit(base)) + luhn.calc_check_digit(base + length),
    ),
    "ocr_luhn": _Appended("OCR reference", 2, 25, 1, luhn.calc_check_digit),
    # Finland: 4-20 digits including the check digit, hence a base of 3-19 digits.
    "fi": _Appended("Finnish reference", 4, 20, 1, _finnish),
}


_DASH_ADVICE = ("Norwegian banks refuse KIDs ending in '-', so Kanal never issues one: use "
                "another base (e.g. the next invoice or customer number) or kid_mod10")


def _make_appended(scheme: str, spec: _Appended, base: str) -> PaymentReference:
    what = f"{spec.label} base"
    _require_length(what, base, spec.min_base, spec.max_base)
    _require_digits(what, base)
    if scheme == "kid_mod11" and spec.suffix(base) == "-":
        raise ReferenceError(
            f"{what} {base} has MOD11 remainder 10, so its check character would be '-'. "
            + _DASH_ADVICE
        )
    return spec.build(scheme, base)


def _parse_appended(scheme: str, spec: _Appended, value: str) -> PaymentReference:
    what = spec.label
    if not value:
        raise ReferenceError(f"{what} is empty")
    if scheme == "kid_mod11" and value.endswith("-"):
        raise ReferenceError(f"{what} {value} ends in '-' (MOD11 remainder 10). " + _DASH_ADVICE)
    _require_digits(what, value)
    _require_length(
        what, value, spec.min_base + spec.suffix_len, spec.max_total, "digits including check"
    )
    base, found = value[: -spec.suffix_len], value[-spec.suffix_len :]
    expected = spec.suffix(base)
    if scheme == "kid_mod11" and expected == "-":
        raise ReferenceError(
            f"{what} {value}: its base {base} has MOD11 remainder 10, so no digit is a valid "
            "check. " + _DASH_ADVICE
        )
    if scheme == "ocr":
        # Check the two digits separately so the message names the one that is wrong.
        if found[0] != expected[0]:
            raise ReferenceError(
                f"{what} {value}: length digit {found[0]} does not match the length "
                f"{len(value)}, expected {expected[0]}"
            )
        found, expected = found[1], expected[1]
    if found != expected:
        raise _mismatch(what, value, "check digit", found, expected)
    return spec.build(scheme, base)


# --- Denmark: FIK (Fælles indbetalingskort) card types 71, 73 and 75 -------------------------
# The code line a Danish payer types into the online bank: card type, payment id (71: 15
# digits, 75: 16 digits, each ending in a Luhn check digit; 73: none) and the creditor's
# 8-digit FI creditor number. Sources: Finans Danmark / Nets "Fælles indbetalingskort"
# rules as the form printers publish them: payment id 1 prints as "18" (Luhn).

_FIK_CARD = {"fik": "71", "fik75": "75", "fik73": "73"}
_FIK_SCHEME = {card: scheme for scheme, card in _FIK_CARD.items()}
_FIK_ID_LEN = {"71": 15, "75": 16, "73": 0}  # payment id including its Luhn check digit
_FIK_CREDITOR_LEN = 8
# Split the code line leniently and check each part afterwards, so a wrong card type or a
# short payment id gets its own message instead of a generic "malformed code line".
_FIK_LINE = re.compile(r"\+(?P<card>[^<+]*)<(?P<payment_id>[^<+]*)\+(?P<creditor>[^<+]*)<")


def _fik_creditor(creditor: str | None) -> str:
    if creditor is None or not _compact(_require_str("FIK creditor number", creditor)):
        raise ReferenceError("FIK needs the creditor's 8-digit creditor number (creditor=...)")
    number = _compact(creditor)
    _require_digits("FIK creditor number", number)
    if len(number) != _FIK_CREDITOR_LEN:
        raise ReferenceError(f"FIK creditor number must be 8 digits, got {len(number)}")
    return number


def _fik(scheme: str, payment_id: str, creditor: str) -> PaymentReference:
    line = f"+{_FIK_CARD[scheme]}<{payment_id}+{creditor}<"
    return PaymentReference(scheme=scheme, value=line, display=line)


def _make_fik(scheme: str, base: str, creditor: str | None) -> PaymentReference:
    id_len = _FIK_ID_LEN[_FIK_CARD[scheme]]
    if not id_len:
        raise ReferenceError(
            "FIK card type 73 has no payment id, so it takes no reference_base: give the "
            "code line as reference ('+73<+creditor number<'), or use fik (71) or fik75")
    what = "FIK payment id base"
    _require_length(what, base, 1, id_len - 1)
    _require_digits(what, base)
    creditor = _fik_creditor(creditor)
    # The payment id is fixed-length: shorter bases are zero-padded on the left, which
    # keeps the number's value (and the creditor's matching on it) unchanged.
    padded = base.zfill(id_len - 1)
    return _fik(scheme, padded + luhn.calc_check_digit(padded), creditor)


def _parse_fik(scheme: str, value: str, creditor: str | None) -> PaymentReference:
    what = "FIK payment id"
    card = _FIK_CARD[scheme]
    id_len = _FIK_ID_LEN[card]
    if not value:
        raise ReferenceError("FIK code line is empty")
    if value.startswith("+"):
        match = _FIK_LINE.fullmatch(value)
        if match is None:
            raise ReferenceError(
                f"FIK code line {value!r} must have the form +{card}<"
                f"{'payment id' if id_len else ''}+creditor number<")
        if match["card"] != card:
            other = _FIK_SCHEME.get(match["card"])
            raise ReferenceError(
                f"FIK card type {match['card']!r} does not fit reference_scheme {scheme} "
                f"(card type {card})" + (f": use {other}" if other else
                                         ": Kanal supports card types 71, 73 and 75"))
        payment_id, line_creditor = match["payment_id"], _fik_creditor(match["creditor"])
        if creditor is not None and _fik_creditor(creditor) != line_creditor:
            raise ReferenceError(
                f"FIK creditor number {line_creditor} in the code line is not the expected "
                f"{_fik_creditor(creditor)}"
            )
        start = value.index("<") + 2  # 1-based position of the payment id in the code line
    else:
        # Danish online banks ask for card type, payment id and creditor in separate fields,
        # so a bare payment id is accepted too when the creditor number is known.
        payment_id, line_creditor, start = value, _fik_creditor(creditor), 1
    if not id_len:
        if payment_id:
            raise ReferenceError(f"FIK card type 73 has no payment id, found {payment_id!r}")
        return _fik(scheme, "", line_creditor)
    _require_digits(what, payment_id, start=start)
    if len(payment_id) != id_len:
        raise ReferenceError(
            f"{what} of card type {card} must be {id_len} digits including check, "
            f"got {len(payment_id)}"
        )
    found, expected = payment_id[-1], luhn.calc_check_digit(payment_id[:-1])
    if found != expected:
        raise _mismatch(what, payment_id, "check digit", found, expected)
    return _fik(scheme, payment_id, line_creditor)


# --- ISO 11649 RF creditor reference ----------------------------------------------------------

_RF_MAX_BODY = 21  # ISO 11649: "RF" + 2 check digits + up to 21 characters


def _rf(body: str) -> PaymentReference:
    # MOD 97-10 over body + "RF" + check digits, as ISO 11649 moves the prefix to the end.
    value = "RF" + mod_97_10.calc_check_digits(body + "RF") + body
    return PaymentReference(scheme="rf", value=value, display=iso11649.format(value))


def _check_rf_body(what: str, body: str, *, start: int = 1) -> None:
    _require_length(what, body, 1, _RF_MAX_BODY)
    # ISO 11649 also allows letters, but Kanal keeps RF references numeric: the Finnish
    # virtual bank barcode (version 5) carries the RF reference as digits only, and a numeric
    # body is what every Nordic bank's entry field accepts.
    _require_digits(what, body, start=start)


def _make_rf(base: str) -> PaymentReference:
    _check_rf_body("RF creditor reference base", base)
    return _rf(base)


def _parse_rf(value: str) -> PaymentReference:
    what = "RF creditor reference"
    if not value:
        raise ReferenceError(f"{what} is empty")
    value = value.upper()  # payers type "rf18..." too; the letters are case-insensitive
    if not value.startswith("RF"):
        raise ReferenceError(f"{what} {value} must start with RF")
    check = value[2:4]
    _require_digits(what, check, start=3)
    if len(check) != 2:
        raise ReferenceError(f"{what} {value} is missing its two check digits after RF")
    body = value[4:]
    if not body:
        raise ReferenceError(f"{what} {value} has no reference after the check digits")
    _check_rf_body(what, body, start=5)
    expected = _rf(body)
    if check != expected.value[2:4]:
        raise _mismatch(what, value, "check digits", check, expected.value[2:4])
    return expected


# --- UK payer reference, unstructured remittance text ----------------------------------------

# Bacs and Faster Payments carry an 18-character reference of these characters (Bacs
# "Service user reference"); no check digit scheme exists, so the format is all there is
# to check.
_GB_MAX = 18
_GB_CHARS = re.compile(r"[A-Z0-9 &./-]+")
# SEPA (EPC) and Polish Elixir remittance: 140 characters of the Latin character set the
# banks carry (EPC217-08 "SEPA requirements for an extended character set"), no control
# characters; Polish and German letters are allowed (banks convert or keep them).
_TEXT_MAX = 140


def _make_gb(value: str) -> PaymentReference:
    what = "UK payment reference"
    _require_length(what, value, 1, _GB_MAX, "characters")
    upper = value.upper()
    if not _GB_CHARS.fullmatch(upper):
        bad = next(c for c in upper if not _GB_CHARS.fullmatch(c))
        raise ReferenceError(
            f"{what} may contain only letters A-Z, digits, space and & . / -, found {bad!r}")
    return PaymentReference(scheme="gb", value=upper, display=upper)


def _make_text(value: str) -> PaymentReference:
    what = "remittance text"
    text = " ".join(value.split())  # one line: newlines and tabs become single spaces
    _require_length(what, text, 1, _TEXT_MAX, "characters")
    for offset, char in enumerate(text):
        if not char.isprintable():
            raise ReferenceError(f"{what} contains a control character at position {offset + 1}")
    return PaymentReference(scheme="text", value=text, display=text)


# --- public API -------------------------------------------------------------------------------


def _check_scheme(scheme: str) -> None:
    if scheme not in SCHEMES:
        raise ReferenceError(
            f"unknown payment reference scheme {scheme!r}, expected one of {', '.join(SCHEMES)}"
        )


def make_reference(scheme: str, base: str, *, creditor: str | None = None) -> PaymentReference:
    """Append the check digit(s) of `scheme` to a digits-only `base`.

    `creditor` is the Danish creditor number and is required for the FIK schemes; the others
    have no creditor part and ignore it, so a caller may pass a tenant's setting uniformly.
    The base is taken as given (no whitespace removal): it comes from data, not from a person.
    """
    _check_scheme(scheme)
    base = _require_str("reference base", base)
    if scheme in _APPENDED:
        return _make_appended(scheme, _APPENDED[scheme], base)
    if scheme in _FIK_CARD:
        return _make_fik(scheme, base, creditor)
    if scheme == "gb":
        return _make_gb(base)
    if scheme == "text":
        return _make_text(base)
    return _make_rf(base)


def parse_reference(scheme: str, value: str, *, creditor: str | None = None) -> PaymentReference:
    """Validate a complete reference as the payer types it (whitespace is removed).

    For the FIK schemes, `value` is the code line (``+71<payment id+creditor<``,
    ``+75<...``, ``+73<+creditor<``); when `creditor` is given it must match the code line's,
    and a bare payment id is accepted too. "gb" and "text" keep inner spaces.
    Raises ReferenceError naming what is wrong: characters, length or check digit(s).
    """
    _check_scheme(scheme)
    value = _require_str("payment reference", value)
    if scheme == "gb":  # spaces are part of a UK reference; only the ends are trimmed
        return _make_gb(value.strip())
    if scheme == "text":
        return _make_text(value)
    value = _compact(value)
    if scheme in _APPENDED:
        return _parse_appended(scheme, _APPENDED[scheme], value)
    if scheme in _FIK_CARD:
        return _parse_fik(scheme, value, creditor)
    return _parse_rf(value)


def default_scheme(currency: str, country: str | None = None) -> str:
    """The reference scheme a payer in that currency (and country) expects by default.

    NOK -> KID MOD10 (the common Norwegian agreement), SEK -> OCR with length digit
    (Bankgirot's strongest check), DKK -> FIK 71 (needs a creditor number), EUR in Finland ->
    the Finnish national reference, GBP -> the UK payer reference, PLN -> the Polish
    transfer title (free text), any other currency -> RF, which every SEPA bank accepts.
    """
    currency = currency.strip().upper()
    country = country.strip().upper() if country else None
    if currency == "NOK":
        return "kid_mod10"
    if currency == "SEK":
        return "ocr"
    if currency == "DKK":
        return "fik"
    if currency == "EUR" and country == "FI":
        return "fi"
    if currency == "GBP":
        return "gb"
    if currency == "PLN":
        return "text"
    return "rf"
