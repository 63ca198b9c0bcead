"""Kanal never issues a payment reference it later refuses (issue 11, item 4).

For every layout with a payment slip and every scheme: a document composed from a
`payment.reference_base` prints a reference (`payment.reference` in the context, what the
slip, the email and the SMS show; `reference_value`, what a payer types) that the same layout
accepts back as `payment.reference`, giving the same reference; and python-stdnum, an
independent implementation, agrees with the check digits wherever it has the algorithm.
"""

from __future__ import annotations

import json
import random
from datetime import UTC, datetime

import pytest
from stdnum import iso11649, luhn
from stdnum.no import kontonr as no_kontonr
from stdnum.no import orgnr as no_orgnr

from server.compose.composer import ComposeRequest, compose
from server.compose.locales import REFERENCE_REGION
from server.compose.model import Composition
from server.compose.references import SCHEMES
from server.errors import InvalidInput
from tests.country_payments import compose_country
from tests.layouts import shipped

LAYOUTS = shipped()
NOW = datetime(2026, 3, 2, 9, tzinfo=UTC)
CREDITOR = "87654321"
PAYMENT_LAYOUTS = ("card-invoice", "payment-reminder", "b2b-invoice")
# Base lengths each scheme takes within the schemas' `reference_base` (1-24 digits).
BASE_LENGTHS = {"kid_mod10": (1, 24), "kid_mod11": (1, 24), "ocr": (1, 23),
                "ocr_luhn": (1, 24), "fik": (1, 14), "fik75": (1, 15), "fi": (3, 19),
                "rf": (1, 21), "gb": (1, 18), "text": (1, 24)}
# The schemes of the countries issue 15 added (and FIK and the Finnish reference, whose
# countries the layouts gained with it): composed with that country's payment data and
# locale (tests/country_payments.py), the slip of that country printed.
COUNTRY_OF = {"fik": "DK", "fik73": "DK", "fik75": "DK", "fi": "FI", "gb": "GB", "text": "PL"}


def mod11_remainder_10(base: str) -> bool:
    return sum(int(d) * (2 + i % 6) for i, d in enumerate(reversed(base))) % 11 == 1


def bases(scheme: str, count: int = 8) -> list[str]:
    rng = random.Random(f"round-trip-{scheme}")
    low, high = BASE_LENGTHS[scheme]
    out = [low * "1", high * "9", "1000001"[:high]]
    while len(out) < count:
        out.append("".join(rng.choice("0123456789") for _ in range(rng.randint(low, high))))
    return [b for b in out if not (scheme == "kid_mod11" and mod11_remainder_10(b))]


def sample_for(layout_id: str, scheme: str) -> dict | None:
    """The layout's sample of the scheme's region (a domestic scheme prints only on its own
    country's slip: server/compose/locales.py), the default sample for RF; None when the
    layout has no sample of that region."""
    layout = LAYOUTS.get(layout_id)
    slip = layout.section("print").get("payment_slip", True)  # b2b: no giro slip, any region
    region = REFERENCE_REGION.get(scheme) if slip else None
    samples = layout.manifest.get("samples", {})
    name = next((file for locale, file in samples.items()
                 if region is None or locale.endswith("-" + region)), None)
    return None if name is None else json.loads((layout.path / name).read_text("utf-8"))


def composed(layout_id: str, payment: dict) -> Composition:
    if payment["reference_scheme"] in COUNTRY_OF:
        return compose_country(layout_id, COUNTRY_OF[payment["reference_scheme"]],
                               payment=payment)
    layout = LAYOUTS.get(layout_id)
    data = sample_for(layout_id, payment["reference_scheme"]) or json.loads(layout.sample_data())
    data["payment"] = payment
    return compose(ComposeRequest(tenant="t", layout=layout, data=json.dumps(data),
                                  document_id="d", now=NOW))


def base_payment(scheme: str, base: str) -> dict:
    payment = {"reference_base": base, "reference_scheme": scheme}
    return {**payment, "creditor_number": CREDITOR} if scheme.startswith("fik") else payment


def check_with_stdnum(scheme: str, base: str, value: str) -> None:
    """The check digits by python-stdnum, where it implements the scheme's algorithm."""
    if scheme in ("kid_mod10", "ocr_luhn"):
        assert luhn.is_valid(value) and value[:-1] == base
    elif scheme == "ocr":  # Luhn over base + length digit, the length digit = length mod 10
        assert luhn.is_valid(value) and int(value[-2]) == len(value) % 10
    elif scheme == "kid_mod11":
        # stdnum has no KID module; the Norwegian account number (10 digits + check) and
        # organisation number (8 + check) use the same MOD11, weights 2..7 from the right.
        if len(base) == 10 and not base.startswith("0000"):
            assert no_kontonr.is_valid(value)
        elif len(base) == 8:
            assert no_orgnr.is_valid(value)
        assert value[-1].isdigit()  # never "-"
    elif scheme in ("fik", "fik75"):
        card, length = ("71", 15) if scheme == "fik" else ("75", 16)
        payment_id = value[4:4 + length]
        assert value == f"+{card}<{payment_id}+{CREDITOR}<" and luhn.is_valid(payment_id)
        assert int(payment_id[:-1]) == int(base)
    elif scheme in ("gb", "text"):  # no check digits exist: the reference is the base
        assert value == base
    elif scheme == "rf":
        assert iso11649.is_valid(value) and value.endswith(base)
    elif scheme == "fi":
        # stdnum 2.2 has no Finnish reference number; its RF form must be a valid ISO 11649.
        assert value[:-1] == base and iso11649.is_valid(
            "RF" + iso11649.mod_97_10.calc_check_digits(value + "RF") + value)


@pytest.mark.parametrize("layout_id", PAYMENT_LAYOUTS)
@pytest.mark.parametrize("scheme", SCHEMES)
def test_every_printed_reference_is_accepted_back(layout_id: str, scheme: str) -> None:
    extra = {"creditor_number": CREDITOR} if scheme.startswith("fik") else {}
    if scheme == "fik73":  # no payment id, so no base: the code line given is printed back
        issued = composed(layout_id, {"reference": f"+73<+{CREDITOR}<",
                                      "reference_scheme": scheme, **extra})
        for form in (issued.context["payment"]["reference"],
                     issued.context["payment"]["slip"]["code_line"]):
            back = composed(layout_id, {"reference": form, "reference_scheme": scheme, **extra})
            assert back.payment_reference == issued.payment_reference
        return
    if scheme not in COUNTRY_OF and sample_for(layout_id, scheme) is None:
        # No locale of the scheme's country in this layout: refused, never printed wrong.
        with pytest.raises(InvalidInput) as info:
            composed(layout_id, base_payment(scheme, bases(scheme)[0]))
        assert "$.payment.reference_scheme" in [v.field for v in info.value.violations]
        return
    for base in bases(scheme):
        issued = composed(layout_id, base_payment(scheme, base))
        reference = issued.payment_reference
        printed = issued.context["payment"]["reference"]
        typed = issued.context["payment"]["reference_value"]
        assert (printed, typed) == (reference.display, reference.value)
        check_with_stdnum(scheme, base, reference.value)
        slip = issued.context["payment"]["slip"]
        forms = [printed, typed]
        if slip and slip["code_line"]:  # the FIK code line as the slip prints it
            forms.append(slip["code_line"])
        for form in forms:
            back = composed(layout_id, {"reference": form, "reference_scheme": scheme, **extra})
            assert back.payment_reference == reference, (layout_id, scheme, base, form)


@pytest.mark.parametrize("layout_id", PAYMENT_LAYOUTS)
def test_kid_mod11_base_with_remainder_10_is_refused_naming_the_field(layout_id: str) -> None:
    # The example: 1000005 would print as the KID "1000005-".
    with pytest.raises(InvalidInput) as info:
        composed(layout_id, {"reference_base": "1000005", "reference_scheme": "kid_mod11"})
    [violation] = info.value.violations
    assert violation.field == "$.payment.reference_base"
    assert "remainder 10" in violation.description and "kid_mod10" in violation.description
    # The KID it used to print is refused as input too, by the schema.
    with pytest.raises(InvalidInput) as info:
        composed(layout_id, {"reference": "1000005-", "reference_scheme": "kid_mod11"})
    assert info.value.violations[0].field == "$.payment.reference"


def test_fik_without_creditor_number_names_it() -> None:
    with pytest.raises(InvalidInput) as info:
        composed("card-invoice", {"reference_base": "12345", "reference_scheme": "fik"})
    assert [v.field for v in info.value.violations] == ["$.payment.creditor_number"]
