"""An independent reader checks every machine-readable payment code Kanal prints (issue 15).

Each country's slip is composed and rendered with both PDF engines; the page is rasterised
(pdfium) and read back the way a payer's bank app or a scanner would:

- the EPC QR code (DE, AT; on the b2b invoice too) decoded by zxing-cpp: its EPC069-12
  fields give the IBAN, BIC, EUR amount and the RF reference or the remittance text;
- the Finnish virtual bar code decoded by zxing-cpp as Code 128, its 54 digits parsed by
  `virtuaaliviivakoodi` (another implementation of Finanssiala's guide): account, amount,
  reference and due date;
- the FIK code line, the KID and the OCR reference read from the PDF's text and validated
  with python-stdnum (Luhn), and accepted back by Kanal as input.

Every value read must equal what the Composition decided (amounts as Decimal, rounded once).
"""

from __future__ import annotations

import json
import re
from decimal import Decimal
from functools import cache

import numpy as np
import pypdfium2
import pytest
import zxingcpp
from stdnum import iban as stdnum_iban
from stdnum import iso11649, luhn
from virtuaaliviivakoodi import deconstruct_virtuaaliviivakoodi

from server.channels.pdf import PrintEngines
from server.channels.print_zones import find_intrusions
from server.compose.composer import ComposeRequest, compose
from server.compose.layouts import LayoutRegistry
from server.compose.model import Composition
from server.compose.references import parse_reference
from server.printing.profiles import builtin_profiles
from server.printing.zones import all_mark_zones, mark_zones
from tests.country_payments import COUNTRIES, NOW, compose_country, registry
from tests.layouts import shipped
from tests.pdf_conformance import pdf_a_problems, pdf_ua_findings
from tests.pdf_inspect import pages_text

ENGINES = PrintEngines()
BOTH = ("weasyprint", "typst")
DPI = 300
PROFILES = builtin_profiles()


def render(layout_id: str, composition: Composition, engine: str,
           layouts: LayoutRegistry | None = None) -> bytes:
    layout = (layouts or registry()).get(layout_id)
    return ENGINES.engine(engine).render(layout, composition).content


@cache
def country_pdf(layout_id: str, country: str, engine: str) -> bytes:
    """The print PDF of `compose_country(layout_id, country)`, rendered once for the tests
    that read it (the EPC QR, the slip's text, the mark zones and the standards)."""
    return render(layout_id, compose_country(layout_id, country), engine)


def last_page_image(pdf: bytes) -> np.ndarray:
    doc = pypdfium2.PdfDocument(pdf)
    page = doc[len(doc) - 1]
    return np.asarray(page.render(scale=DPI / 72, grayscale=True).to_pil().convert("L"))


def read_codes(pdf: bytes, fmt: zxingcpp.BarcodeFormat) -> list[str]:
    return [r.text for r in zxingcpp.read_barcodes(last_page_image(pdf), formats=fmt)]


def epc_fields(payload: str) -> dict[str, str]:
    """EPC069-12 version 002: one field per line, in this order."""
    names = ("service", "version", "charset", "identification", "bic", "name", "iban",
             "amount", "purpose", "reference", "text", "information")
    lines = payload.split("\n")
    return dict(zip(names, lines + [""] * (len(names) - len(lines)), strict=True))


def epc_amount(field: str) -> Decimal:
    assert field.startswith("EUR"), field
    return Decimal(field[3:])


# --- EPC QR code ------------------------------------------------------------------------------


@pytest.mark.parametrize("engine", BOTH)
@pytest.mark.parametrize(("layout_id", "country"), [
    ("card-invoice", "DE"), ("payment-reminder", "DE"), ("card-invoice", "AT"),
    ("payment-reminder", "AT"), ("b2b-invoice", "DE"), ("b2b-invoice", "AT"),
])
def test_epc_qr_decodes_to_the_payment(layout_id: str, country: str, engine: str) -> None:
    composition = compose_country(layout_id, country)
    slip = composition.context["payment"]["slip"]
    assert slip["form"] == "sepa"
    [payload] = read_codes(country_pdf(layout_id, country, engine),
                           zxingcpp.BarcodeFormat.QRCode)
    fields = epc_fields(payload)
    assert (fields["service"], fields["version"], fields["identification"]) == \
        ("BCD", "002", "SCT")
    account = layout_account(layout_id, country)
    assert fields["iban"] == stdnum_iban.compact(account["number"])
    assert stdnum_iban.is_valid(fields["iban"])
    assert fields["bic"] == account["bic"]
    assert epc_amount(fields["amount"]) == composition.amount_due
    reference = composition.payment_reference
    if reference.scheme == "rf":
        assert fields["reference"] == reference.value and not fields["text"]
        assert iso11649.is_valid(fields["reference"])
    else:
        assert fields["text"] == reference.value and not fields["reference"]


def layout_account(layout_id: str, country: str) -> dict:
    return COUNTRIES[country][2]


# --- Finnish virtual bar code -----------------------------------------------------------------


@pytest.mark.parametrize("engine", BOTH)
@pytest.mark.parametrize("layout_id", ["card-invoice", "payment-reminder", "b2b-invoice"])
@pytest.mark.parametrize("payment", [
    {"reference_scheme": "fi", "reference_base": "2026004711"},
    {"reference_scheme": "rf", "reference_base": "2026004711"},
], ids=["version4-national", "version5-rf"])
def test_finnish_virtual_bar_code_decodes_to_the_payment(layout_id: str, payment: dict,
                                                         engine: str) -> None:
    composition = compose_country(layout_id, "FI", payment=payment)
    slip = composition.context["payment"]["slip"]
    assert slip["form"] == "fi"
    pdf = render(layout_id, composition, engine)
    [digits] = read_codes(pdf, zxingcpp.BarcodeFormat.Code128)
    assert digits == slip["barcode_text"] and len(digits) == 54
    assert digits in pages_text(pdf)[-1].replace(" ", "")  # printed as text too
    parsed = deconstruct_virtuaaliviivakoodi(digits)
    reference = composition.payment_reference
    assert parsed.symbol.value == ("4" if reference.scheme == "fi" else "5")
    assert parsed.iban == "FI2112345600000785"
    assert parsed.euro_amount == composition.amount_due
    assert parsed.reference == reference.value
    assert parsed.due_date == composition.due_date


# --- code lines and references in the text ----------------------------------------------------


@pytest.mark.parametrize("engine", BOTH)
@pytest.mark.parametrize("layout_id", ["card-invoice", "payment-reminder", "b2b-invoice"])
@pytest.mark.parametrize("scheme", ["fik", "fik75"])
def test_fik_code_line_in_the_pdf_validates(layout_id: str, scheme: str, engine: str) -> None:
    composition = compose_country(layout_id, "DK", payment={
        "reference_scheme": scheme, "reference_base": "2026004711",
        "creditor_number": "87654321"})
    text = pages_text(render(layout_id, composition, engine))[-1]
    match = re.search(r"\+(7[15])<\s*(\d+)\s*\+(\d{8})<", text)
    assert match, text[-600:]
    card, payment_id, creditor = match.groups()
    assert card == ("71" if scheme == "fik" else "75")
    assert len(payment_id) == (15 if card == "71" else 16)
    assert luhn.is_valid(payment_id) and creditor == "87654321"
    line = f"+{card}<{payment_id}+{creditor}<"
    assert parse_reference(scheme, line, creditor="87654321") == composition.payment_reference


@pytest.mark.parametrize("engine", BOTH)
@pytest.mark.parametrize(("sample", "scheme"), [("sample.json", "kid_mod10"),
                                                ("sample-sv-SE.json", "ocr")])
def test_kid_and_ocr_on_the_giro_validate(sample: str, scheme: str, engine: str) -> None:
    layouts = shipped()
    layout = layouts.get("card-invoice")
    data = json.loads((layout.path / sample).read_text("utf-8"))
    composition = compose(ComposeRequest(tenant="t", layout=layout, data=json.dumps(data),
                                         document_id="d", now=NOW))
    reference = composition.payment_reference
    assert reference.scheme == scheme
    text = pages_text(render("card-invoice", composition, engine, layouts))[-1]
    assert reference.display in text
    digits = reference.display.replace(" ", "")
    assert luhn.is_valid(digits)
    if scheme == "ocr":  # the length digit: the whole length mod 10
        assert int(digits[-2]) == len(digits) % 10
    assert parse_reference(scheme, reference.display) == reference


# --- what each country's slip prints ----------------------------------------------------------


@pytest.mark.parametrize("engine", BOTH)
@pytest.mark.parametrize(("country", "expected"), [
    ("PL", ["POLECENIE PRZELEWU", "Nr rachunku odbiorcy", "61 1090 1014 0000 0712 1981 2874",
            "Tytułem", "Faktura 2026/03/4711, klient 10042"]),
    ("GB", ["bank giro credit", "Sort code", "60-16-13", "31926819", "FJB 10042 4711"]),
    ("DK", ["INDBETALINGSKORT", "Betalings-id", "Kreditornr."]),
    ("FI", ["TILISIIRTO GIRERING", "NDEAFIHH", "FI21 1234 5600 0007 85"]),
])
def test_country_slip_text(country: str, expected: list[str], engine: str) -> None:
    text = pages_text(country_pdf("payment-reminder", country, engine))[-1]
    flat = " ".join(text.split()).casefold()  # field labels print in capitals
    for item in expected:
        assert " ".join(item.split()).casefold() in flat, (item, flat[-800:])


# --- the slips keep the print zones and the archive standards ---------------------------------

COUNTRY_CASES = [(layout_id, country, engine)
                 for layout_id in ("card-invoice", "payment-reminder")
                 for country in ("DK", "FI", "DE", "AT", "PL", "GB") for engine in BOTH] + [
    ("b2b-invoice", country, engine) for country in ("DK", "FI", "DE") for engine in BOTH]


@pytest.mark.parametrize(("layout_id", "country", "engine"), COUNTRY_CASES)
def test_country_slip_keeps_mark_zones_blank_and_is_pdf_a_and_ua(layout_id: str, country: str,
                                                                  engine: str) -> None:
    """No ink in any print profile's OMR / DataMatrix zone, by pixels and by the render-time
    preflight's page objects (as tests/unit/test_layout_print_zones.py checks the samples),
    and the PDF stays PDF/A-3 and PDF/UA-1 with the codes in it (each image has its
    alternative text)."""
    pdf = country_pdf(layout_id, country, engine)
    document = pypdfium2.PdfDocument(pdf)
    px = 100 / 25.4
    for index, page in enumerate(document):
        gray = np.asarray(page.render(scale=100 / 72, grayscale=True).to_pil().convert("L"))
        for name, profile in PROFILES.items():
            if profile.duplex and index % 2:
                continue
            for zone in (z.rect for z in mark_zones(profile)):
                window = gray[int(zone.y * px):int(zone.bottom * px) + 1,
                              max(0, int(zone.x * px)):int(zone.right * px) + 1]
                assert int((window < 200).sum()) == 0, (name, zone, index)
    assert find_intrusions(pdf, all_mark_zones()) == []  # the render-time preflight's view
    assert pdf_a_problems(pdf, ua=True) == []
    assert pdf_ua_findings(pdf) == []
