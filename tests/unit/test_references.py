"""Payment references: check digits per scheme, round trips, and precise refusals."""

from __future__ import annotations

import random
import re

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from stdnum import iso11649, luhn
from stdnum.no import kontonr as no_kontonr
from stdnum.no import orgnr as no_orgnr

from server.compose.model import PaymentReference
from server.compose.references import (
    SCHEMES,
    ReferenceError,
    default_scheme,
    make_reference,
    parse_reference,
)

CREDITOR = "12345678"
DIGITS = "0123456789"

# Base length range make_reference accepts, per scheme (from the design notes' limits).
BASE_LENGTHS = {
    "kid_mod10": (1, 24),  # KID 2-25 incl. check digit
    "kid_mod11": (1, 24),
    "ocr": (1, 23),  # OCR 2-25 incl. length digit and check digit
    "ocr_luhn": (1, 24),
    "fik": (1, 14),  # payment id 15 digits incl. check digit, zero-padded
    "fik75": (1, 15),  # payment id 16 digits incl. check digit, zero-padded
    "fi": (3, 19),  # Finnish 4-20 incl. check digit
    "rf": (1, 21),  # ISO 11649: up to 21 characters after RF + check digits
}


# The schemes whose reference is a digit base with check digit(s) appended; FIK 73 (no
# payment id), the UK reference and remittance text have no check digits and their own tests
# (test_payment_schemes.py).
DIGIT_SCHEMES = tuple(s for s in SCHEMES if s not in ("fik73", "gb", "text"))


def make(scheme: str, base: str) -> PaymentReference:
    return make_reference(scheme, base, creditor=CREDITOR)


def mod11_remainder_10(base: str) -> bool:
    """Whether the KID MOD11 check of `base` would be "-" (textbook formula, weights 2..7
    from the right), i.e. a base Kanal refuses."""
    return sum(int(d) * (2 + i % 6) for i, d in enumerate(reversed(base))) % 11 == 1


def parse(scheme: str, value: str) -> PaymentReference:
    return parse_reference(scheme, value, creditor=CREDITOR)


def random_bases(scheme: str, count: int = 300, seed: int = 11649) -> list[str]:
    """Bases `make_reference` accepts (for kid_mod11: none whose check would be "-")."""
    rng = random.Random(f"{seed}-{scheme}")
    low, high = BASE_LENGTHS[scheme]
    bases = [low * "0", high * "9", low * "1", high * "1"]  # the edges of the length range
    while len(bases) < count:
        bases.append("".join(rng.choice(DIGITS) for _ in range(rng.randint(low, high))))
    if scheme == "kid_mod11":
        bases = [base for base in bases if not mod11_remainder_10(base)]
    return bases


# --- the examples of the design notes and published ones --------------------------------------


@pytest.mark.parametrize(
    ("scheme", "base", "value"),
    [
        ("kid_mod10", "123456789", "1234567897"),
        ("kid_mod11", "123456789", "1234567892"),
        ("ocr", "12345", "1234574"),
        ("fi", "123", "1232"),
        ("rf", "1232", "RF111232"),
        # Wikipedia's Luhn example, 7992739871 -> 3.
        ("kid_mod10", "7992739871", "79927398713"),
        ("ocr_luhn", "7992739871", "79927398713"),
        # Finnish: 6*7 + 5*3 + 4*1 + 3*7 + 2*3 + 1*1 = 89 -> (10 - 9) % 10 = 1.
        ("fi", "123456", "1234561"),
        # The ISO 11649 example used by stdnum and Wikipedia.
        ("rf", "539007547034", "RF18539007547034"),
        # MOD11 where 11 - (sum mod 11) = 11: 2*2 + 1*3 + 1*4 = 11 -> "0".
        ("kid_mod11", "112", "1120"),
    ],
)
def test_examples(scheme: str, base: str, value: str) -> None:
    ref = make_reference(scheme, base)
    assert ref.scheme == scheme
    assert ref.value == value
    assert parse_reference(scheme, value) == ref


def test_fik_example_code_line() -> None:
    # Base padded to 01234567890123; Luhn from the right: 6+2+2+0+9+8+5+6+1+4+6+2+2+0 = 53 -> 7.
    ref = make_reference("fik", "1234567890123", creditor=CREDITOR)
    assert ref == PaymentReference(
        scheme="fik",
        value="+71<012345678901237+12345678<",
        display="+71<012345678901237+12345678<",
    )
    assert parse_reference("fik", ref.value) == ref


def test_ocr_length_digit_counts_both_digits_and_wraps_mod_10() -> None:
    assert make_reference("ocr", "12345").value[-2] == "7"  # 5 + 2 = 7 digits
    value = make_reference("ocr", "12345678").value  # 10 digits -> length digit 0
    assert len(value) == 10 and value[-2] == "0"


@pytest.mark.parametrize(
    ("scheme", "base", "display"),
    [
        ("kid_mod10", "123456789", "12345 67897"),
        ("kid_mod11", "123456789", "12345 67892"),
        ("ocr", "12345", "12 34574"),
        ("fi", "123", "1232"),
        ("fi", "123456", "12 34561"),
        ("rf", "539007547034", "RF18 5390 0754 7034"),
        ("rf", "1232", "RF11 1232"),
    ],
)
def test_display_groups(scheme: str, base: str, display: str) -> None:
    assert make_reference(scheme, base).display == display


# --- round trips and single-digit errors ------------------------------------------------------


@pytest.mark.parametrize("scheme", DIGIT_SCHEMES)
def test_round_trip(scheme: str) -> None:
    for base in random_bases(scheme):
        ref = make(scheme, base)
        assert ref.scheme == scheme
        assert parse(scheme, ref.value) == ref, base
        # The payer may type the grouped form, or paste it with no-break / thin spaces.
        assert parse(scheme, ref.display) == ref, base
        assert parse(scheme, " \u00a0" + ref.display.replace(" ", "\u2009") + "\n") == ref
        if scheme == "fik":
            assert ref.value[4:19].endswith(luhn.calc_check_digit(base.zfill(14)))
        elif scheme == "fik75":
            assert ref.value[4:20].endswith(luhn.calc_check_digit(base.zfill(15)))
        elif scheme == "rf":
            assert ref.value.startswith("RF") and ref.value.endswith(base)
        else:
            assert ref.value.startswith(base)


def _digit_positions(scheme: str, value: str) -> range:
    if scheme == "fik":
        return range(4, 19)  # the payment id; the creditor number has no check digit
    if scheme == "fik75":
        return range(4, 20)
    if scheme == "rf":
        return range(2, len(value))  # check digits and body, not the "RF" letters
    return range(len(value))


@pytest.mark.parametrize("scheme", DIGIT_SCHEMES)
def test_every_changed_digit_is_rejected(scheme: str) -> None:
    for base in random_bases(scheme, count=25, seed=7):
        value = make(scheme, base).value
        for pos in _digit_positions(scheme, value):
            for digit in DIGITS:
                if digit == value[pos]:
                    continue
                changed = value[:pos] + digit + value[pos + 1 :]
                with pytest.raises(ReferenceError,
                                   match="does not match|do not match|no digit is a valid"):
                    parse(scheme, changed)


def test_kid_mod11_whose_check_would_be_dash_is_rejected_whatever_the_digit() -> None:
    for digit in DIGITS:
        with pytest.raises(ReferenceError, match="base 6 has MOD11 remainder 10, so no digit"):
            parse_reference("kid_mod11", "6" + digit)


# --- cross-checks against python-stdnum -------------------------------------------------------


@pytest.mark.parametrize("scheme", ["kid_mod10", "ocr_luhn", "ocr"])
def test_luhn_schemes_agree_with_stdnum(scheme: str) -> None:
    for base in random_bases(scheme):
        value = make_reference(scheme, base).value
        assert luhn.validate(value) == value
        if scheme == "ocr":
            assert int(value[-2]) == len(value) % 10


def test_fik_payment_id_agrees_with_stdnum() -> None:
    for base in random_bases("fik"):
        value = make(scheme="fik", base=base).value
        assert re.fullmatch(r"\+71<\d{15}\+12345678<", value)
        assert luhn.is_valid(value[4:19])


def test_rf_agrees_with_stdnum() -> None:
    for base in random_bases("rf"):
        ref = make_reference("rf", base)
        assert iso11649.validate(ref.display) == ref.value
        assert iso11649.format(ref.value) == ref.display
    # and the other way: stdnum refuses what we refuse for a bad check
    with pytest.raises(ReferenceError):
        parse_reference("rf", "RF17 5390 0754 7034")
    assert not iso11649.is_valid("RF17 5390 0754 7034")


# --- KID MOD11 "-": never issued, never accepted ----------------------------------------------


def test_kid_mod11_base_whose_check_would_be_dash_is_refused() -> None:
    # 1000005: 5*2 + 1*2 = 12 -> 12 mod 11 = 1 -> 11 - 1 = 10, "-" (the issue's example).
    with pytest.raises(ReferenceError) as info:
        make_reference("kid_mod11", "1000005")
    message = str(info.value)
    assert "1000005" in message and "remainder 10" in message and "'-'" in message
    assert "use another base" in message and "kid_mod10" in message
    for base in ("6", "23"):  # 6*2 = 12; 3*2 + 2*3 = 12
        with pytest.raises(ReferenceError, match="remainder 10"):
            make_reference("kid_mod11", base)
    # The weights repeat after six digits: in 1000001 the 7th digit from the right has weight
    # 2 again, 1*2 + 1*2 = 4 -> 11 - 4 = 7; a leading 7 then weighs 3: 4 + 21 = 25 -> 3 -> 8.
    assert make_reference("kid_mod11", "1000001").value == "10000017"
    assert make_reference("kid_mod11", "71000001").value == "710000018"


@settings(max_examples=300, deadline=None)
@given(st.text(DIGITS, min_size=1, max_size=24))
def test_kanal_never_issues_a_kid_ending_in_dash(base: str) -> None:
    try:
        ref = make_reference("kid_mod11", base)
    except ReferenceError as exc:
        assert mod11_remainder_10(base) and "remainder 10" in str(exc)
        return
    assert not mod11_remainder_10(base)
    assert ref.value[-1].isdigit() and "-" not in ref.display
    assert parse_reference("kid_mod11", ref.display) == ref


def test_kid_ending_in_dash_is_refused_as_input() -> None:
    for value in ("23-", " 2 3 - ", "1000005-", "2-3-", "123456789-"):
        with pytest.raises(ReferenceError, match="ends in '-'"):
            parse_reference("kid_mod11", value)
    with pytest.raises(ReferenceError, match=r"found '-' at position 2"):
        parse_reference("kid_mod11", "2-34")
    with pytest.raises(ReferenceError, match=r"found '-' at position 3"):
        parse_reference("kid_mod10", "23-")
    with pytest.raises(ReferenceError, match=r"found '-' at position 3"):
        make_reference("kid_mod11", "23-")


def test_kid_mod11_agrees_with_stdnum() -> None:
    # stdnum has no KID module, but two Norwegian numbers use the same MOD11 (weights 2..7
    # from the right): the 11-digit account number (kontonr, 10 digits + check) and the
    # organisation number (orgnr, 8 digits + check).
    rng = random.Random("kid-mod11-stdnum")
    for length, module in ((10, no_kontonr), (8, no_orgnr)):
        for _ in range(300):
            base = str(rng.randint(1, 9)) + "".join(rng.choice(DIGITS) for _ in range(length - 1))
            if mod11_remainder_10(base):
                with pytest.raises(ReferenceError):
                    make_reference("kid_mod11", base)
                continue
            assert module.is_valid(make_reference("kid_mod11", base).value), base


# --- refusals with precise messages ------------------------------------------------------------


def test_wrong_check_digit_message() -> None:
    with pytest.raises(ReferenceError) as info:
        parse_reference("kid_mod10", "1234567893")
    assert str(info.value) == "KID (MOD10) 1234567893: check digit 3 does not match, expected 7"
    with pytest.raises(ReferenceError, match="check digit 0 does not match, expected 2"):
        parse_reference("fi", "1230")
    with pytest.raises(ReferenceError, match="check digits 12 do not match, expected 11"):
        parse_reference("rf", "RF12 1232")


def test_ocr_names_the_wrong_digit() -> None:
    with pytest.raises(ReferenceError, match="length digit 8 does not match the length 7"):
        parse_reference("ocr", "1234584")
    with pytest.raises(ReferenceError, match="check digit 5 does not match, expected 4"):
        parse_reference("ocr", "1234575")
    # Without the length digit only Luhn is checked: 12345 -> 123455.
    assert parse_reference("ocr_luhn", "123455").value == "123455"


@pytest.mark.parametrize(
    ("scheme", "base", "message"),
    [
        ("kid_mod10", "1" * 25, r"KID \(MOD10\) base must be 1-24 digits, got 25"),
        ("kid_mod11", "1" * 25, r"KID \(MOD11\) base must be 1-24 digits, got 25"),
        ("ocr", "1" * 24, "OCR reference base must be 1-23 digits, got 24"),
        ("ocr_luhn", "1" * 25, "OCR reference base must be 1-24 digits, got 25"),
        ("fi", "12", "Finnish reference base must be 3-19 digits, got 2"),
        ("fi", "1" * 20, "Finnish reference base must be 3-19 digits, got 20"),
        ("fik", "1" * 15, "FIK payment id base must be 1-14 digits, got 15"),
        ("rf", "1" * 22, "RF creditor reference base must be 1-21 digits, got 22"),
    ],
)
def test_base_of_wrong_length(scheme: str, base: str, message: str) -> None:
    with pytest.raises(ReferenceError, match=message):
        make(scheme, base)


@pytest.mark.parametrize(
    ("scheme", "value", "message"),
    [
        ("kid_mod10", "7", r"must be 2-25 digits including check, got 1"),
        ("kid_mod10", "1" * 26, r"must be 2-25 digits including check, got 26"),
        ("ocr", "26", r"must be 3-25 digits including check, got 2"),
        ("ocr_luhn", "1" * 26, r"must be 2-25 digits including check, got 26"),
        ("fi", "123", r"must be 4-20 digits including check, got 3"),
        ("fi", "1" * 21, r"must be 4-20 digits including check, got 21"),
        ("fik", "+71<12345678901234+12345678<", "must be 15 digits including check, got 14"),
        ("rf", "RF11", "has no reference after the check digits"),
        ("rf", "RF" + "0" * 24, r"must be 1-21 digits, got 22"),
    ],
)
def test_reference_of_wrong_length(scheme: str, value: str, message: str) -> None:
    with pytest.raises(ReferenceError, match=message):
        parse(scheme, value)


@pytest.mark.parametrize("scheme", DIGIT_SCHEMES)
def test_letters_are_refused(scheme: str) -> None:
    with pytest.raises(ReferenceError, match=r"only digits 0-9, found 'A' at position 2"):
        make(scheme, "1A34")
    valid = make(scheme, "12345").value
    # Put a letter in the middle of the part a payer types digits into.
    pos = {"fik": 6, "fik75": 6, "rf": 6}.get(scheme, 2)
    with pytest.raises(ReferenceError, match=rf"only digits 0-9, found 'X' at position {pos}"):
        parse(scheme, valid[: pos - 1] + "X" + valid[pos:])


@pytest.mark.parametrize("scheme", DIGIT_SCHEMES)
def test_unicode_digits_are_refused(scheme: str) -> None:
    # str.isdigit() says True for these; no bank does.
    for odd in ("\uff11\uff12\uff13\uff14", "12\u00b234", "\u0661\u0662\u0663\u0664"):
        with pytest.raises(ReferenceError, match="only digits 0-9"):
            make(scheme, odd)


@pytest.mark.parametrize("scheme", DIGIT_SCHEMES)
def test_empty_is_refused(scheme: str) -> None:
    with pytest.raises(ReferenceError, match="is empty"):
        make(scheme, "")
    for blank in ("", "   ", "\t\n"):
        with pytest.raises(ReferenceError, match="is empty"):
            parse(scheme, blank)


def test_base_is_taken_as_given() -> None:
    with pytest.raises(ReferenceError, match="found ' ' at position 4"):
        make_reference("kid_mod10", "123 456")


def test_non_string_is_refused() -> None:
    with pytest.raises(ReferenceError, match="must be a string, got int"):
        make_reference("kid_mod10", 12345)  # type: ignore[arg-type]
    with pytest.raises(ReferenceError, match="must be a string, got NoneType"):
        parse_reference("fi", None)  # type: ignore[arg-type]


@pytest.mark.parametrize("scheme", ["KID", "kid", "mod10", "", "iban"])
def test_unknown_scheme(scheme: str) -> None:
    with pytest.raises(ReferenceError, match=f"unknown payment reference scheme '{scheme}'"):
        make_reference(scheme, "12345")
    with pytest.raises(ReferenceError, match="expected one of kid_mod10, kid_mod11, ocr"):
        parse_reference(scheme, "1234567897")


# --- FIK --------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("creditor", "message"),
    [
        (None, "needs the creditor's 8-digit creditor number"),
        ("", "needs the creditor's 8-digit creditor number"),
        ("1234567", "creditor number must be 8 digits, got 7"),
        ("123456789", "creditor number must be 8 digits, got 9"),
        ("1234567A", "found 'A' at position 8"),
    ],
)
def test_fik_creditor_is_required_and_checked(creditor: str | None, message: str) -> None:
    with pytest.raises(ReferenceError, match=message):
        make_reference("fik", "12345", creditor=creditor)


def test_fik_creditor_whitespace_is_removed() -> None:
    ref = make_reference("fik", "12345", creditor="1234 5678")
    assert ref.value.endswith("+12345678<")


def test_fik_parse_code_line() -> None:
    # Luhn of 00000000012345 from the right: 1 + 4 + 6 + 2 + 2 = 15 -> 5.
    ref = make_reference("fik", "12345", creditor=CREDITOR)
    assert ref.value == "+71<000000000123455+12345678<"
    # Without a creditor the code line's own creditor is used.
    assert parse_reference("fik", ref.value) == ref
    assert parse_reference("fik", "+71< 000000000 123455 +12345678<") == ref
    # A bare payment id is accepted when the creditor is known.
    assert parse_reference("fik", "000000000123455", creditor=CREDITOR) == ref
    with pytest.raises(ReferenceError, match="needs the creditor's 8-digit creditor number"):
        parse_reference("fik", "000000000123455")


def test_fik_parse_refusals() -> None:
    with pytest.raises(ReferenceError,
                       match="card type '04' does not fit .* card types 71, 73 and 75"):
        parse_reference("fik", "+04<000000000123455+12345678<")
    with pytest.raises(ReferenceError, match=r"must have the form \+71<payment id\+creditor"):
        parse_reference("fik", "+71<000000000123455+12345678")
    with pytest.raises(ReferenceError, match="creditor number must be 8 digits, got 7"):
        parse_reference("fik", "+71<000000000123455+1234567<")
    with pytest.raises(
        ReferenceError, match="12345678 in the code line is not the expected 87654321"
    ):
        parse_reference("fik", "+71<000000000123455+12345678<", creditor="87654321")
    with pytest.raises(ReferenceError, match="check digit 4 does not match, expected 5"):
        parse_reference("fik", "+71<000000000123454+12345678<")


# --- RF ----------------------------------------------------------------------------------------


def test_rf_parse_tolerates_case_and_refuses_malformed() -> None:
    assert parse_reference("rf", "rf11 1232").value == "RF111232"
    with pytest.raises(ReferenceError, match="must start with RF"):
        parse_reference("rf", "1232")
    with pytest.raises(ReferenceError, match="missing its two check digits"):
        parse_reference("rf", "RF1")
    with pytest.raises(ReferenceError, match="found 'X' at position 4"):
        parse_reference("rf", "RF1X1232")
    # ISO 11649 allows letters (stdnum accepts this one); Kanal keeps RF numeric.
    assert iso11649.is_valid("RF18 5390 0754 70Y")
    with pytest.raises(ReferenceError, match="found 'Y' at position 15"):
        parse_reference("rf", "RF18 5390 0754 70Y")


# --- default scheme ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("currency", "country", "scheme"),
    [
        ("NOK", None, "kid_mod10"),
        ("NOK", "NO", "kid_mod10"),
        ("SEK", "SE", "ocr"),
        ("DKK", "DK", "fik"),
        ("EUR", "FI", "fi"),
        ("eur", "fi", "fi"),
        ("EUR", "DE", "rf"),
        ("EUR", None, "rf"),
        ("USD", "US", "rf"),
        ("GBP", None, "gb"),
        ("PLN", "PL", "text"),
    ],
)
def test_default_scheme(currency: str, country: str | None, scheme: str) -> None:
    assert default_scheme(currency, country) == scheme
    assert scheme in SCHEMES


def test_public_surface() -> None:
    assert SCHEMES == ("kid_mod10", "kid_mod11", "ocr", "ocr_luhn", "fik", "fik73", "fik75",
                       "fi", "rf", "gb", "text")
    assert issubclass(ReferenceError, ValueError)
