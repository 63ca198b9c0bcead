"""Issue 12: each e-invoice failure and each refusal of valid data, as a regression test.

Every test starts from the b2b-invoice (or card-invoice) sample, changes what the issue
names, composes the document the way the API does and checks the e-invoice as a receiving
access point would (XSD, CEN schematron, Peppol rules: `einvoice_validation`), or checks the
refusal names the caller's JSON path and the rule.
"""

from __future__ import annotations

import copy
import io
import json
import sys
from collections.abc import Callable
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

import pikepdf
import pytest
from lxml import etree

from server.channels import Renderers
from server.compose.composer import ComposeRequest, compose
from server.compose.model import Channel
from server.errors import InvalidInput
from tests.layouts import shipped

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
import einvoice_validation as ev  # noqa: E402

LAYOUTS = shipped()
NOW = datetime(2026, 3, 2, 9, tzinfo=UTC)
RENDERERS = Renderers()
UBL = {"cac": "urn:oasis:names:specification:ubl:schema:xsd:CommonAggregateComponents-2",
       "cbc": "urn:oasis:names:specification:ubl:schema:xsd:CommonBasicComponents-2"}
SE_ADDRESS = {"lines": ["Kungsgatan 1"], "postal_code": "111 43", "city": "STOCKHOLM",
              "country": "SE"}
DK_ADDRESS = {"lines": ["Vesterbrogade 1"], "postal_code": "1620", "city": "KØBENHAVN V",
              "country": "DK"}
FI_ADDRESS = {"lines": ["Kotikatu 3 B 12"], "postal_code": "33100", "city": "TAMPERE",
              "country": "FI"}


def b2b(edit: Callable[[dict[str, Any]], None] | None = None,
        sample: str = "sample.json") -> dict[str, Any]:
    data = json.loads((LAYOUTS.get("b2b-invoice").path / sample).read_text())
    if edit:
        edit(data)
    return data


def compose_einvoice(data: dict[str, Any], layout_id: str = "b2b-invoice",
                     locale: str | None = None):
    layout = LAYOUTS.get(layout_id)
    composition = compose(ComposeRequest(tenant="t", layout=layout, data=json.dumps(data),
                                         document_id="d", now=NOW, locale=locale,
                                         channels=(Channel.EINVOICE,)))
    [output] = RENDERERS.render(composition, layout)
    return composition, output


def refusal(data: dict[str, Any], layout_id: str = "b2b-invoice") -> dict[str, str]:
    with pytest.raises(InvalidInput) as info:
        compose_einvoice(data, layout_id)
    return {v.field: v.description for v in info.value.violations}


def assert_valid(report: ev.Report) -> None:
    assert report.errors == [], report.errors


def cii_of(output) -> bytes:
    with pikepdf.open(io.BytesIO(output.content)) as pdf:
        return pdf.attachments["factur-x.xml"].get_file().read_bytes()


# --- failures Kanal sent -----------------------------------------------------------------------


def _swedish_buyer(data: dict[str, Any]) -> None:
    data["customer"].update(address=SE_ADDRESS, org_number="556036-0793",
                            vat_id="SE556036079301", peppol_id="0007:5560360793")


def test_swedish_org_number_with_hyphen_is_normalised_for_the_buyer() -> None:
    _, output = compose_einvoice(b2b(_swedish_buyer))
    doc = etree.fromstring(output.content)
    legal = doc.find("cac:AccountingCustomerParty/cac:Party/cac:PartyLegalEntity/cbc:CompanyID",
                     UBL)
    assert (legal.text, legal.get("schemeID")) == ("5560360793", "0007")  # R049: 10 digits
    assert_valid(ev.validate_ubl(output.content))


def _swedish_seller(data: dict[str, Any]) -> None:
    data["currency"] = "SEK"
    data["seller"].update(org_number="556036-0793", vat_id="SE556036079301",
                          peppol_id="0007:556036-0793", address=SE_ADDRESS,
                          payment_account={"type": "bankgiro", "number": "5805-6201"})
    data["payment"] = {"reference_base": "2026014420"}
    for line in data["lines"]:
        if line["vat_category"] == "S" and line["vat_rate"] == "15":
            line["vat_rate"] = "12"
    data["exemption_reasons"] = {"E": "Undantag enligt 10 kap. 33 § ML"}


def test_swedish_org_number_with_hyphen_is_normalised_for_the_seller() -> None:
    _, output = compose_einvoice(b2b(_swedish_seller))
    doc = etree.fromstring(output.content)
    party = doc.find("cac:AccountingSupplierParty/cac:Party", UBL)
    assert party.findtext("cac:PartyLegalEntity/cbc:CompanyID", namespaces=UBL) == "5560360793"
    assert party.findtext("cbc:EndpointID", namespaces=UBL) == "5560360793"
    means = doc.find("cac:PaymentMeans", UBL)
    assert means.findtext("cac:PayeeFinancialAccount/cac:FinancialInstitutionBranch/cbc:ID",
                          namespaces=UBL) == "SE:BANKGIRO"  # SE-R-007..012
    report = ev.validate_ubl(output.content)
    assert report.errors == [] and report.warnings == [], report


def test_card_invoice_sv_se_with_a_peppol_id_is_a_valid_peppol_invoice() -> None:
    data = json.loads((LAYOUTS.get("card-invoice").path / "sample-sv-SE.json").read_text())
    data["customer"]["peppol_id"] = "0007:5560360793"
    _, output = compose_einvoice(data, "card-invoice", "sv-SE")
    doc = etree.fromstring(output.content)
    legal = doc.find("cac:AccountingSupplierParty/cac:Party/cac:PartyLegalEntity/cbc:CompanyID",
                     UBL)
    assert legal.text.isdigit() and len(legal.text) == 10
    report = ev.validate_ubl(output.content)
    assert report.errors == [] and report.warnings == [], report


def test_blank_line_description_is_absent_not_an_empty_element() -> None:
    def edit(data: dict[str, Any]) -> None:
        data["lines"][0]["description"] = " "
        data["note"] = "\t"

    _, output = compose_einvoice(b2b(edit))
    assert b"<cbc:Description/>" not in output.content
    assert b"<cbc:Note/>" not in output.content
    assert_valid(ev.validate_ubl(output.content))  # includes PEPPOL-EN16931-R008


def test_blank_buyer_reference_does_not_count_as_one() -> None:
    def edit(data: dict[str, Any]) -> None:
        data["buyer_reference"] = " "
        del data["order_reference"]

    got = refusal(b2b(edit))
    assert got["$.buyer_reference"].startswith("[PEPPOL-EN16931-R003]")


def test_withdrawn_endpoint_scheme_is_refused_with_the_rule() -> None:
    got = refusal(b2b(lambda d: d["customer"].update(peppol_id="9955:5560360793")))
    assert list(got) == ["$.customer.peppol_id"]
    assert got["$.customer.peppol_id"].startswith("[PEPPOL-EN16931-CL008]")


def test_current_endpoint_scheme_0216_is_accepted() -> None:
    _, output = compose_einvoice(b2b(lambda d: d["customer"].update(
        peppol_id="0216:003712345671")))
    endpoint = etree.fromstring(output.content).find(
        "cac:AccountingCustomerParty/cac:Party/cbc:EndpointID", UBL)
    assert (endpoint.get("schemeID"), endpoint.text) == ("0216", "003712345671")
    assert_valid(ev.validate_ubl(output.content))


@pytest.mark.parametrize("category", ["E", "Z"])
def test_zero_rated_refund_never_writes_minus_zero(category: str) -> None:
    def edit(data: dict[str, Any]) -> None:
        del data["customer"]["peppol_id"]  # Factur-X: the CII the issue names
        data["lines"].append({"id": "6", "name": "Refusjon gebyr", "quantity": "-1",
                              "unit_code": "C62", "unit_price": "100.00",
                              "vat_category": category, "vat_rate": "0"})
        if category == "E":  # make E's base negative
            data["lines"][4]["unit_price"] = "0.00"

    _, output = compose_einvoice(b2b(edit))
    cii = cii_of(output)
    assert b"-0.00" not in cii
    assert_valid(ev.validate_cii(cii))  # BR-E-09 / BR-Z-09 read "-0.00" as not zero


def test_finvoice_with_a_charge_before_an_allowance_is_valid() -> None:
    def edit(data: dict[str, Any]) -> None:
        data["customer"] = {"customer_id": "F-1", "name": "Matti Meikäläinen",
                            "address": FI_ADDRESS}
        data["currency"] = "EUR"
        data["seller"]["payment_account"] = {"type": "iban", "number": "NO9386011117947"}
        data["payment"] = {"reference_base": "1232", "reference_scheme": "rf"}
        data["allowances_charges"].reverse()  # the charge first

    composition, output = compose_einvoice(b2b(edit))
    assert output.facts["syntax"] == "finvoice-3.0"
    assert_valid(ev.validate_finvoice(output.content))


def _priced_line(**price: str) -> Callable[[dict[str, Any]], None]:
    def edit(data: dict[str, Any]) -> None:
        data["allowances_charges"] = []
        data["lines"] = [{"id": "1", "name": "Item", "quantity": "3", "unit_code": "C62",
                          "vat_category": "S", "vat_rate": "25", **price}]
    return edit


@pytest.mark.parametrize("price", [
    {"unit_price": "70", "gross_price": "100", "price_discount": "20"},  # the tester's case
    {"unit_price": "70", "gross_price": "100"},  # written as a 0.00 discount on base 100.00
])
def test_net_price_that_is_not_gross_less_discount_is_refused(price: dict[str, str]) -> None:
    # Kanal wrote PriceAmount 70.00 beside a 20.00 allowance on base 100.00, which the
    # receiving access point rejects (PEPPOL-EN16931-R046)
    got = refusal(b2b(_priced_line(**price)))
    assert list(got) == ["$.lines[0].unit_price"]
    text = got["$.lines[0].unit_price"]
    assert text.startswith("[PEPPOL-EN16931-R046]")
    assert "BT-146" in text and "BT-148" in text and "BT-147" in text
    expected = "80" if "price_discount" in price else "100"
    assert f"= {expected}, not 70" in text


@pytest.mark.parametrize("price", [
    {"unit_price": "80.00", "gross_price": "100", "price_discount": "20"},
    {"gross_price": "100", "price_discount": "20"},  # the net price computed
])
def test_net_price_beside_gross_price_and_discount_is_valid(price: dict[str, str]) -> None:
    composition, output = compose_einvoice(b2b(_priced_line(**price)))
    assert composition.invoice.lines[0].net_amount == Decimal("240.00")
    price_el = etree.fromstring(output.content).find("cac:InvoiceLine/cac:Price", UBL)
    assert price_el.findtext("cbc:PriceAmount", namespaces=UBL) == "80.00"
    report = ev.validate_ubl(output.content)
    assert report.errors == [] and report.warnings == [], report


def _card_fi(edit: Callable[[dict[str, Any]], None] | None = None) -> dict[str, Any]:
    data = json.loads((LAYOUTS.get("card-invoice").path / "samples/fi-FI.json").read_text())
    assert data["issuer"]["payment_account"]["bic"] == "NDEAFIHH"
    if edit:
        edit(data)
    return data


def test_card_invoice_finvoice_carries_the_issuers_bic() -> None:
    # it had an empty <EpiBfiPartyDetails/> and no SellerBic: the card builder dropped BT-86
    _, output = compose_einvoice(_card_fi(), "card-invoice")
    assert output.facts["syntax"] == "finvoice-3.0"
    doc = etree.fromstring(output.content)
    [bfi] = doc.findall("EpiDetails/EpiPartyDetails/EpiBfiPartyDetails/EpiBfiIdentifier")
    assert (bfi.text, bfi.get("IdentificationSchemeName")) == ("NDEAFIHH", "BIC")
    [seller_bic] = doc.findall("SellerInformationDetails/SellerAccountDetails/SellerBic")
    assert (seller_bic.text, seller_bic.get("IdentificationSchemeName")) == ("NDEAFIHH", "BIC")
    assert_valid(ev.validate_finvoice(output.content))


def test_card_invoice_peppol_ubl_carries_the_issuers_bic() -> None:
    data = _card_fi(lambda d: d["customer"].update(peppol_id="0216:003712345671"))
    _, output = compose_einvoice(data, "card-invoice")
    assert output.facts["syntax"] == "peppol-bis-3-ubl"
    [bic] = etree.fromstring(output.content).findall(
        "cac:PaymentMeans/cac:PayeeFinancialAccount/cac:FinancialInstitutionBranch/cbc:ID", UBL)
    assert bic.text == "NDEAFIHH"
    report = ev.validate_ubl(output.content)
    assert report.errors == [] and report.warnings == [], report


def test_card_invoice_factur_x_carries_the_issuers_bic() -> None:
    def to_sweden(data: dict[str, Any]) -> None:  # not a Finnish consumer: no Finvoice
        data["customer"]["address"] = SE_ADDRESS

    _, output = compose_einvoice(_card_fi(to_sweden), "card-invoice", "fi-FI")
    assert output.facts["syntax"] == "factur-x-en16931"
    cii = cii_of(output)
    ram = "urn:un:unece:uncefact:data:standard:ReusableAggregateBusinessInformationEntity:100"
    bics = etree.fromstring(cii).findall(
        f".//{{{ram}}}PayeeSpecifiedCreditorFinancialInstitution/{{{ram}}}BICID")
    assert [b.text for b in bics] == ["NDEAFIHH"]
    assert_valid(ev.validate_cii(cii))


@pytest.mark.parametrize(("layout_id", "path", "where"), [
    ("b2b-invoice", ("lines", 0, "name"), "$.lines[0].name"),
    ("b2b-invoice", ("customer", "name"), "$.customer.name"),
    ("card-invoice", ("transactions", 0, "description"), "$.transactions[0].description"),
    ("payment-reminder", ("customer", "name"), "$.customer.name"),
    ("welcome-letter", ("letter", "subject"), "$.letter.subject"),
])
def test_control_character_is_refused_with_the_field_path(layout_id: str, path: tuple,
                                                         where: str) -> None:
    layout = LAYOUTS.get(layout_id)
    data = json.loads(layout.sample_data())
    node = data
    for key in path[:-1]:
        node = node[key]
    node[path[-1]] = "Vertical\x0btab"
    with pytest.raises(InvalidInput) as info:
        compose(ComposeRequest(tenant="t", layout=layout, data=json.dumps(data),
                               document_id="d", now=NOW))
    [violation] = info.value.violations
    assert violation.field == where
    assert "U+000B" in violation.description


# --- valid data Kanal refused ------------------------------------------------------------------


def _danish_buyer(cvr: str) -> Callable[[dict[str, Any]], None]:
    def edit(data: dict[str, Any]) -> None:
        data["customer"].update(address=DK_ADDRESS, org_number=cvr, vat_id="DK13585628",
                                peppol_id="0184:13585628")
    return edit


@pytest.mark.parametrize("cvr", ["13585628", "13 58 56 28"])
def test_danish_buyer_cvr_of_eight_digits_is_accepted(cvr: str) -> None:
    _, output = compose_einvoice(b2b(_danish_buyer(cvr)))
    legal = etree.fromstring(output.content).find(
        "cac:AccountingCustomerParty/cac:Party/cac:PartyLegalEntity/cbc:CompanyID", UBL)
    assert (legal.text, legal.get("schemeID")) == ("13585628", "0184")
    assert_valid(ev.validate_ubl(output.content))


def _danish_invoice(data: dict[str, Any]) -> None:
    data["currency"] = "DKK"
    data["seller"].update(org_number="13585628", vat_id="DK13585628",
                          peppol_id="0184:13585628", address=DK_ADDRESS,
                          payment_account={"type": "iban", "number": "DK5000400440116243"})
    data["customer"].update(address=DK_ADDRESS, org_number="55133018", vat_id="DK55133018",
                            peppol_id="0184:55133018")
    data["payment"] = {"reference_base": "2026014420", "creditor_number": "86135567"}
    data["exemption_reasons"] = {"E": "Momsfritaget, momsloven § 13"}
    for line in data["lines"]:
        if line["vat_category"] == "S":
            line["vat_rate"] = "25"
    for ac in data["allowances_charges"]:
        ac["vat_rate"] = "25"


def test_dkk_invoice_with_the_default_fik_reference() -> None:
    composition, output = compose_einvoice(b2b(_danish_invoice))
    assert composition.payment_reference.scheme == "fik"
    doc = etree.fromstring(output.content)
    [fik] = doc.findall("cac:PaymentMeans", UBL)  # one means code per invoice (UBL-SR-47)
    assert fik.findtext("cbc:PaymentMeansCode", namespaces=UBL) == "93"
    assert fik.findtext("cbc:PaymentID", namespaces=UBL) == "71#" + composition.payment_reference \
        .value[4:19]
    assert fik.findtext("cac:PayeeFinancialAccount/cbc:ID", namespaces=UBL) == "86135567"
    report = ev.validate_ubl(output.content)  # DK-R-005, DK-R-010, DK-R-011
    assert report.errors == [] and report.warnings == [], report


def test_danish_credit_note_with_a_negative_amount_due_is_refused_with_the_rule() -> None:
    # its total is positive (check_en16931's credit-note rule passes) but the paid amount
    # makes BT-115 negative, which DK-R-016 rejects between Danish parties
    data = b2b(_danish_invoice, "sample-credit-note.json")
    data["prepaid_amount"] = "100000"
    got = refusal(data)
    assert list(got) == ["$.prepaid_amount"]
    assert got["$.prepaid_amount"].startswith("[DK-R-016]")


def test_danish_credit_note_with_a_part_prepaid_is_valid() -> None:
    data = b2b(_danish_invoice, "sample-credit-note.json")
    data["prepaid_amount"] = "100"
    composition, output = compose_einvoice(data)
    assert 0 < composition.invoice.totals.payable < composition.invoice.totals.tax_inclusive
    assert_valid(ev.validate_ubl(output.content))


def _intra_community(data: dict[str, Any]) -> None:
    data["customer"].update(address={"lines": ["Hauptstraße 5"], "postal_code": "10115",
                                     "city": "Berlin", "country": "DE"},
                            vat_id="DE123456788", org_number=None,
                            peppol_id="0088:4000001123452")
    del data["customer"]["org_number"]
    data["lines"] = [{"id": "1", "name": "Maskinvare", "quantity": "2", "unit_code": "C62",
                      "unit_price": "1500.00", "vat_category": "K", "vat_rate": "0"}]
    data["allowances_charges"] = []
    data["exemption_reasons"] = {}
    data["exemption_reason_codes"] = {"K": "VATEX-EU-IC"}
    data["delivery"] = {"date": "2026-02-27", "address": {"lines": ["Lager 3"],
                        "postal_code": "10115", "city": "Berlin", "country": "DE"}}


def test_intra_community_supply_is_accepted() -> None:
    composition, output = compose_einvoice(b2b(_intra_community))
    [entry] = composition.invoice.vat_breakdown
    assert (entry.category, entry.tax_amount, entry.exemption_reason_code) == (
        "K", 0, "VATEX-EU-IC")
    assert_valid(ev.validate_ubl(output.content))


def test_intra_community_supply_without_delivery_is_refused_with_the_rules() -> None:
    data = b2b(_intra_community)
    del data["delivery"]
    got = refusal(data)
    assert got["$.delivery.date"].startswith("[BR-IC-11]")
    assert got["$.delivery.address.country"].startswith("[BR-IC-12]")


def test_rules_broken_at_composition_name_path_and_rule() -> None:
    def edit(data: dict[str, Any]) -> None:
        data["lines"][0]["unit_code"] = "PCS"
        data["lines"][1]["vat_rate"] = "0"
        data["allowances_charges"][0]["reason_code"] = "ZZZ"  # a charge code
        data["due_date"] = "2026-01-01"

    got = refusal(b2b(edit))
    assert {field: text.split("]")[0] + "]" for field, text in got.items()} == {
        "$.lines[0].unit_code": "[BR-CL-23]",
        "$.lines[1].vat_rate": "[BR-S-05]",
        "$.allowances_charges[0].reason_code": "[BR-CL-19]",
        "$.due_date": "[KANAL-DUE-DATE]",  # was "[BR-CO-25]": a due date or terms at all
    }


def test_samples_of_both_versions_still_compose() -> None:
    for version in ("1.0.0", "2.0.0"):
        layout = LAYOUTS.get("b2b-invoice", version)
        for sample in ("sample.json", "sample-credit-note.json"):
            data = copy.deepcopy(json.loads((layout.path / sample).read_text()))
            composition = compose(ComposeRequest(tenant="t", layout=layout,
                                                 data=json.dumps(data), document_id="d",
                                                 now=NOW))
            assert composition.invoice.totals.payable > 0
