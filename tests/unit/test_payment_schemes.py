"""Payment schemes per country: references, accounts, the slip form, the codes' payloads, and
refusals that name the data's field (issue 15 item 2)."""

from __future__ import annotations

import io
import json
import re
from datetime import UTC, date, datetime
from decimal import Decimal

import pytest
import zxingcpp
from PIL import Image
from stdnum import iban as stdnum_iban
from stdnum import luhn
from virtuaaliviivakoodi import deconstruct_virtuaaliviivakoodi

from server.compose.composer import ComposeRequest, compose
from server.compose.payments import codes
from server.compose.payments.accounts import payment_account
from server.compose.payments.slips import SlipPaths, slip_form
from server.compose.references import ReferenceError, make_reference, parse_reference
from server.errors import InvalidInput
from tests.country_payments import compose_country
from tests.layouts import shipped

CREDITOR = "87654321"
PATHS = SlipPaths("$.issuer.payment_account", due_date="$.invoice.due_date")


# --- Denmark: FIK 71, 73, 75 -----------------------------------------------------------------


@pytest.mark.parametrize(("scheme", "card", "length"), [("fik", "71", 15), ("fik75", "75", 16)])
def test_fik_payment_id_has_its_luhn_digit(scheme: str, card: str, length: int) -> None:
    # The form printers' example: payment id 1 prints as "18" (8 is the check digit of 1).
    ref = make_reference(scheme, "1", creditor=CREDITOR)
    assert ref.value == f"+{card}<{'1'.zfill(length - 1)}8+{CREDITOR}<"
    for base in ("2026004711", "9" * (length - 1), "123"):
        ref = make_reference(scheme, base, creditor=CREDITOR)
        payment_id = ref.value[4:4 + length]
        assert luhn.is_valid(payment_id) and int(payment_id[:-1]) == int(base)
        assert parse_reference(scheme, ref.value, creditor=CREDITOR) == ref
        assert parse_reference(scheme, payment_id, creditor=CREDITOR) == ref  # bare id


def test_fik_wrong_check_digit_card_type_and_creditor_are_named() -> None:
    with pytest.raises(ReferenceError, match="check digit 9 does not match, expected 8"):
        parse_reference("fik75", "+75<0000000000000019+87654321<")
    with pytest.raises(ReferenceError, match="use fik75"):
        parse_reference("fik", "+75<0000000000000018+87654321<")
    with pytest.raises(ReferenceError, match="16 digits"):
        parse_reference("fik75", "+75<000000000000018+87654321<")
    with pytest.raises(ReferenceError, match="not the expected 12345678"):
        parse_reference("fik", "+71<000000000000018+87654321<", creditor="12345678")
    with pytest.raises(ReferenceError, match="card types 71, 73 and 75"):
        parse_reference("fik", "+04<000000000000018+87654321<")


def test_fik73_has_no_payment_id() -> None:
    ref = parse_reference("fik73", "+73<+87654321<")
    assert ref.value == "+73<+87654321<"
    with pytest.raises(ReferenceError, match="no payment id"):
        make_reference("fik73", "4711", creditor=CREDITOR)
    with pytest.raises(ReferenceError, match="no payment id"):
        parse_reference("fik73", "+73<4711+87654321<")


# --- UK reference, remittance text ----------------------------------------------------------


def test_uk_reference_format() -> None:
    ref = parse_reference("gb", " fjb 10042/4711 ")
    assert (ref.value, ref.display) == ("FJB 10042/4711", "FJB 10042/4711")
    assert parse_reference("gb", ref.display) == ref
    with pytest.raises(ReferenceError, match="1-18 characters"):
        parse_reference("gb", "X" * 19)
    with pytest.raises(ReferenceError, match="found '#'"):
        parse_reference("gb", "INV#12")


def test_remittance_text() -> None:
    ref = parse_reference("text", "Faktura 2026/03/4711,\n klient 10042")
    assert ref.value == "Faktura 2026/03/4711, klient 10042"
    assert parse_reference("text", ref.display) == ref
    assert parse_reference("text", "Zażółć gęślą jaźń ÄÖÜß").value == "Zażółć gęślą jaźń ÄÖÜß"
    with pytest.raises(ReferenceError, match="1-140 characters"):
        parse_reference("text", "x" * 141)
    with pytest.raises(ReferenceError, match="control character"):
        parse_reference("text", "abc\x07")


# --- accounts ---------------------------------------------------------------------------------


def test_polish_nrb_is_checked_as_iban_pl() -> None:
    account = payment_account({"type": "pl_nrb", "number": "61109010140000071219812874"}, "$.a")
    assert account.display == "61 1090 1014 0000 0712 1981 2874"
    assert account.number == "PL61109010140000071219812874" and stdnum_iban.is_valid(
        account.number)
    with pytest.raises(InvalidInput) as info:  # one digit changed: the check digits fail
        payment_account({"type": "pl_nrb", "number": "61109010140000071219812875"}, "$.a")
    assert info.value.violations[0].field == "$.a.number"
    assert "check digits" in info.value.violations[0].description
    with pytest.raises(InvalidInput, match="26 digits"):
        payment_account({"type": "pl_nrb", "number": "6110901014"}, "$.a")


def test_uk_sort_code_and_account_number_format() -> None:
    account = payment_account(
        {"type": "gb_account", "number": "1926819", "sort_code": "601613"}, "$.a")
    assert (account.sort_code, account.display, account.number) == \
        ("60-16-13", "01926819", "60161301926819")
    with pytest.raises(InvalidInput) as info:
        payment_account({"type": "gb_account", "number": "31926819", "sort_code": "60-16"}, "$.a")
    assert info.value.violations[0].field == "$.a.sort_code"
    with pytest.raises(InvalidInput) as info:
        payment_account({"type": "gb_account", "number": "31926819"}, "$.a")
    assert info.value.violations[0].field == "$.a.sort_code"
    with pytest.raises(InvalidInput) as info:
        payment_account({"type": "gb_account", "number": "3192681X", "sort_code": "601613"},
                        "$.a")
    assert info.value.violations[0].field == "$.a.number"


def test_bic_is_checked() -> None:
    account = payment_account({"type": "iban", "number": "FI2112345600000785",
                               "bic": "ndeafihh"}, "$.a")
    assert account.bic == "NDEAFIHH"
    with pytest.raises(InvalidInput) as info:
        payment_account({"type": "iban", "number": "FI2112345600000785", "bic": "NDEA1IHH"},
                        "$.a")
    assert info.value.violations[0].field == "$.a.bic"
    assert payment_account({"type": "no_account", "number": "86011117947", "bic": "DNBANOKK"},
                           "$.a").bic == "DNBANOKK"  # BT-86 of a Norwegian e-invoice


# --- which form -------------------------------------------------------------------------------


def account(kind: str, number: str, **extra: str):
    return payment_account({"type": kind, "number": number, **extra}, "$.issuer.payment_account")


IBAN_FI = account("iban", "FI2112345600000785", bic="NDEAFIHH")
IBAN_DE = account("iban", "DE89370400440532013000", bic="COBADEFFXXX")


@pytest.mark.parametrize(("reference", "acct", "currency", "form"), [
    (make_reference("kid_mod10", "4711"), account("no_account", "86011117947"), "NOK", "giro"),
    (make_reference("ocr", "4711"), account("bankgiro", "5050-1055"), "SEK", "giro"),
    (make_reference("fik", "4711", creditor=CREDITOR), IBAN_DE, "DKK", "fik"),
    (make_reference("fi", "4711"), IBAN_FI, "EUR", "fi"),
    (make_reference("rf", "4711"), IBAN_FI, "EUR", "fi"),
    (make_reference("rf", "4711"), IBAN_DE, "EUR", "sepa"),
    (make_reference("text", "Rechnung 1"), IBAN_DE, "EUR", "sepa"),
    (make_reference("text", "Faktura 1"), account("pl_nrb", "61109010140000071219812874"),
     "PLN", "pl"),
    (make_reference("gb", "FJB1"), account("gb_account", "31926819", sort_code="601613"),
     "GBP", "gb"),
    (make_reference("rf", "4711"), account("iban", "NO9386011117947"), "NOK", "giro"),
])
def test_the_payment_chooses_the_form(reference, acct, currency: str, form: str) -> None:
    assert slip_form(reference, acct, currency, PATHS) == form


@pytest.mark.parametrize(("reference", "acct", "currency", "fields"), [
    (make_reference("fi", "4711"), IBAN_DE, "EUR",
     {"$.payment.reference_scheme", "$.issuer.payment_account.number"}),
    (make_reference("fi", "4711"), IBAN_FI, "SEK", {"$.currency"}),
    (make_reference("gb", "FJB1"), IBAN_DE, "GBP",
     {"$.payment.reference_scheme", "$.issuer.payment_account.type", "$.currency"}),
    (make_reference("text", "x"), account("no_account", "86011117947"), "NOK",
     {"$.payment.reference_scheme"}),
    (make_reference("text", "x"), account("pl_nrb", "61109010140000071219812874"), "EUR",
     {"$.currency"}),
])
def test_payments_no_bank_reads_are_refused_naming_fields(reference, acct, currency: str,
                                                           fields: set[str]) -> None:
    with pytest.raises(InvalidInput) as info:
        slip_form(reference, acct, currency, PATHS)
    assert {v.field for v in info.value.violations} == fields


def test_refusals_reach_compose_with_json_paths() -> None:
    cases = [
        ("FI", {"type": "iban", "number": "FI2112345600000785"},
         {"reference_scheme": "fi", "reference_base": "4711"},
         "$.issuer.payment_account.bic"),  # the Finnish form prints the BIC
        ("PL", {"type": "pl_nrb", "number": "61 1090 1014 0000 0712 1981 2875"}, None,
         "$.issuer.payment_account.number"),
        ("DK", None, {"reference_scheme": "fik75", "reference": "+75<0000000000000019+87654321<",
                      "creditor_number": "87654321"}, "$.payment.reference"),
        ("GB", None, {"reference_scheme": "gb", "reference": "INV#12"}, "$.payment.reference"),
        ("DE", {"type": "iban", "number": "DE89370400440532013000", "bic": "COBADEFFXXX"},
         {"reference_scheme": "fik", "reference_base": "12"}, "$.payment.creditor_number"),
    ]
    for country, acct, payment, field in cases:
        with pytest.raises(InvalidInput) as info:
            compose_country("card-invoice", country, payment=payment, account=acct)
        assert field in [v.field for v in info.value.violations], (country, info.value)


# --- the codes' payloads ----------------------------------------------------------------------


def test_finnish_virtual_bar_code_versions_4_and_5() -> None:
    due = date(2026, 4, 15)
    v4 = codes.fi_virtual_barcode(iban="FI2112345600000785", amount=Decimal("482.50"),
                                  reference=make_reference("fi", "2026004711"), due_date=due)
    assert v4 == "4" + "2112345600000785" + "000482" + "50" + "000" + \
        make_reference("fi", "2026004711").value.zfill(20) + "260415"
    v5 = codes.fi_virtual_barcode(iban="FI2112345600000785", amount=Decimal("482.50"),
                                  reference=make_reference("rf", "2026004711"), due_date=None)
    rf = make_reference("rf", "2026004711").value
    assert v5 == "5" + "2112345600000785" + "00048250" + rf[2:4] + rf[4:].zfill(21) + "000000"
    for digits, reference in ((v4, make_reference("fi", "2026004711").value), (v5, rf)):
        parsed = deconstruct_virtuaaliviivakoodi(digits)
        assert (parsed.iban, parsed.euro_amount, parsed.reference) == \
            ("FI2112345600000785", Decimal("482.50"), reference)
    # over 999 999,99 EUR the payer types the amount: zeros in the code
    big = codes.fi_virtual_barcode(iban="FI2112345600000785", amount=Decimal("1000000.00"),
                                   reference=make_reference("fi", "123"), due_date=due)
    assert big[17:25] == "00000000"
    with pytest.raises(ValueError):
        codes.fi_virtual_barcode(iban="DE89370400440532013000", amount=Decimal(1),
                                 reference=make_reference("fi", "123"), due_date=due)


def test_code128_svg_decodes_to_its_digits() -> None:
    digits = "4" + "2112345600000785" + "00048250" + "000" + "2026004711".zfill(20) + "260415"
    svg = codes.code128_svg(digits)
    assert svg.startswith("<svg") and "DOCTYPE" not in svg and "<text" not in svg
    # rasterise the SVG's bars (rects in mm) ourselves: no SVG renderer in the test deps
    bars = [(float(x), float(w)) for x, w in
            re.findall(r'<rect x="([\d.]+)mm" y="[\d.]+mm" width="([\d.]+)mm"', svg)]
    scale = 8  # px per mm
    width = int((max(x + w for x, w in bars) + 7) * scale)
    image = Image.new("L", (width, 120), 255)
    for x, w in bars:
        image.paste(0, (round(x * scale), 10, round((x + w) * scale), 110))
    [result] = zxingcpp.read_barcodes(image, formats=zxingcpp.BarcodeFormat.Code128)
    assert result.text == digits


def test_epc_qr_amount_range_and_structured_reference() -> None:
    rf = make_reference("rf", "4711")
    svg = codes.epc_qr_svg(name="Fjordbank AG", iban="DE89370400440532013000",
                           amount=Decimal("12.30"), reference=rf, text=None, bic="COBADEFFXXX")
    assert svg.startswith("<svg") and "viewBox" in svg
    with pytest.raises(ValueError):
        codes.epc_qr_svg(name="Fjordbank AG", iban="DE89370400440532013000",
                         amount=Decimal("0"), reference=rf, text=None, bic=None)


def test_epc_qr_payee_name_over_70_characters_ends_at_a_word(monkeypatch) -> None:
    # EPC069-12 takes a beneficiary name of at most 70 characters; an 80-character issuer
    # name (the card-invoice schema allows 80) was cut inside a word ("... und Kundenservi")
    made = []

    def make_epc_qr(**kwargs):
        made.append(segno_epc_qr(**kwargs))
        return made[-1]

    segno_epc_qr = codes.helpers.make_epc_qr
    monkeypatch.setattr(codes.helpers, "make_epc_qr", make_epc_qr)
    name = "Fjordbank Kreditkarten Deutschland GmbH, Kartenservice und Kundenservice Berlin"
    codes.epc_qr_svg(name=name, iban="DE89370400440532013000", amount=Decimal("12.30"),
                     reference=make_reference("rf", "4711"), text=None, bic="COBADEFFXXX")
    png = io.BytesIO()
    made[0].save(png, kind="png", scale=4)
    [read] = zxingcpp.read_barcodes(Image.open(png), formats=zxingcpp.BarcodeFormat.QRCode)
    assert read.text.split("\n")[5] == \
        "Fjordbank Kreditkarten Deutschland GmbH, Kartenservice und"


def test_fik73_slip_asks_for_a_message_not_a_payment_id() -> None:
    composition = compose_country("payment-reminder", "DK", payment={
        "reference_scheme": "fik73", "reference": "+73<+87654321<",
        "creditor_number": "87654321"})
    slip = composition.context["payment"]["slip"]
    assert slip["code_line"] == "+73< +87654321<"
    assert [f["key"] for f in slip["fields"]] == ["card_type", "creditor", "amount"]
    assert "meddelelsen" in slip["labels"]["note"] and "betalings-id" not in \
        slip["labels"]["note"]


@pytest.mark.parametrize(("sample", "currency"), [
    ("sv-SE", "EUR"), ("sv-SE", "JPY"), (None, "EUR"), (None, "SEK")])
def test_a_domestic_giro_account_in_another_currency_is_refused(sample, currency):
    """A bankgiro clears SEK and a Norwegian account number NOK: the tester's EUR and JPY
    invoices to a bankgiro were accepted and printed in kronor/øre boxes."""
    layout = shipped().get("card-invoice")
    data = json.loads(layout.sample_data(sample))
    data["currency"] = currency
    for row in data["transactions"]:  # an original in the invoice's own currency is refused
        if row.get("original", {}).get("currency") == currency:
            del row["original"]
    if currency == "JPY":  # no minor unit: the sample's øre would be refused first
        data = whole_amounts(data)
    with pytest.raises(InvalidInput) as info:
        compose(ComposeRequest(tenant="t", layout=layout, data=json.dumps(data),
                               document_id="d", now=datetime(2026, 3, 2, tzinfo=UTC),
                               locale="sv-SE" if sample else "nb-NO"))
    assert "$.currency" in {v.field for v in info.value.violations}


MONEY_KEYS = {"amount", "previous_balance", "payments_received", "credit_limit", "floor"}


def whole_amounts(value):
    """The card invoice's amounts without decimals (for a currency without a minor unit)."""
    if isinstance(value, dict):
        return {k: str(round(Decimal(v))) if k in MONEY_KEYS and isinstance(v, str)
                else whole_amounts(v) for k, v in value.items()}
    if isinstance(value, list):
        return [whole_amounts(v) for v in value]
    return value
