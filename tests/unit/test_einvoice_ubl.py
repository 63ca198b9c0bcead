"""Every UBL 2.1 invoice and credit note Kanal writes (Peppol BIS Billing 3.0 / EHF),
validated as a receiver would: UBL 2.1 XSD + CEN EN 16931 (UBL) schematron, and the Peppol
BIS rules where the buyer has a Peppol address, compiled to XSLT and run by Saxon.

Each invoice (tests/unit/einvoice_fixtures.py) is computed with `compute_invoice`, rendered
and checked, and its amounts read back. The negative tests prove the validation bites: an
invoice whose totals or VAT breakdown were tampered with, an out-of-order element and a
foreign document all fail. CII / Factur-X and Finvoice: test_einvoice_cii_finvoice.py;
the Peppol rule checks Kanal runs itself: test_einvoice_peppol_rules.py.
"""

from __future__ import annotations

import dataclasses
import sys
from decimal import Decimal as D
from pathlib import Path

import pytest
from lxml import etree

from server.channels.einvoice import render_ubl
from server.channels.einvoice.ubl import CUSTOMIZATION_ID, PROFILE_ID
from server.compose.model import Invoice
from tests.unit.einvoice_fixtures import (
    CASES,
    _assert_valid,
    _credit_note,
    _mixed_rates,
    _norwegian_b2b,
    _tampered,
)

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
import einvoice_validation as ev  # noqa: E402

UBL = {
    "cac": "urn:oasis:names:specification:ubl:schema:xsd:CommonAggregateComponents-2",
    "cbc": "urn:oasis:names:specification:ubl:schema:xsd:CommonBasicComponents-2",
}


@pytest.fixture(scope="module", params=sorted(CASES))
def case(request: pytest.FixtureRequest) -> Invoice:
    return CASES[request.param]()


# --- UBL ---------------------------------------------------------------------------------


def test_ubl_is_valid_against_xsd_and_en16931_schematron(case: Invoice) -> None:
    # Peppol rules too, unless the buyer has no Peppol address (the Finnish consumer gets
    # Finvoice; its UBL here only proves the mapping)
    _assert_valid(ev.validate_ubl(render_ubl(case), peppol=case.buyer.endpoint_id is not None))


def test_ubl_carries_the_computed_amounts(case: Invoice) -> None:
    doc = etree.fromstring(render_ubl(case))
    credit = case.type_code == "381"
    assert etree.QName(doc).localname == ("CreditNote" if credit else "Invoice")
    assert doc.findtext("cbc:CustomizationID", namespaces=UBL) == CUSTOMIZATION_ID
    assert doc.findtext("cbc:ProfileID", namespaces=UBL) == PROFILE_ID
    payable = doc.find("cac:LegalMonetaryTotal/cbc:PayableAmount", UBL)
    assert D(payable.text) == case.totals.payable
    assert payable.get("currencyID") == case.currency
    assert D(doc.findtext("cac:TaxTotal/cbc:TaxAmount", namespaces=UBL)) == case.totals.tax
    subtotals = doc.findall("cac:TaxTotal/cac:TaxSubtotal", UBL)
    assert len(subtotals) == len(case.vat_breakdown)
    for el in doc.iter(f"{{{UBL['cbc']}}}*"):
        if el.get("currencyID") and etree.QName(el).localname != "PriceAmount":
            assert len(el.text.split(".")[1]) == 2, etree.QName(el).localname
    assert D(payable.text) >= 0  # credit notes too: positive amounts in a CreditNote


def test_norwegian_seller_shows_foretaksregisteret_and_vat_id() -> None:
    doc = etree.fromstring(render_ubl(_norwegian_b2b()))
    party = "cac:AccountingSupplierParty/cac:Party/"
    schemes = {
        s.findtext("cac:TaxScheme/cbc:ID", namespaces=UBL): s.findtext(
            "cbc:CompanyID", namespaces=UBL
        )
        for s in doc.findall(party + "cac:PartyTaxScheme", UBL)
    }
    assert schemes == {"VAT": "NO923609016MVA", "TAX": "Foretaksregisteret"}
    endpoint = doc.find("cac:AccountingSupplierParty/cac:Party/cbc:EndpointID", UBL)
    assert (endpoint.get("schemeID"), endpoint.text) == ("0192", "923609016")
    assert doc.findtext("cac:PaymentMeans/cbc:PaymentID", namespaces=UBL) == "1234567897"


def test_credit_note_refers_to_the_preceding_invoice() -> None:
    doc = etree.fromstring(render_ubl(_credit_note()))
    path = "cac:BillingReference/cac:InvoiceDocumentReference/cbc:ID"
    assert doc.findtext(path, namespaces=UBL) == "2024-001"
    assert doc.findtext("cbc:CreditNoteTypeCode", namespaces=UBL) == "381"
    assert doc.find("cac:CreditNoteLine/cbc:CreditedQuantity", UBL).text == "1"


# --- the validation bites ------------------------------------------------------------------


def test_broken_invoice_fails_the_ubl_schematron() -> None:
    report = ev.validate_ubl(render_ubl(_tampered(_mixed_rates())))
    assert any("BR-CO-16" in e for e in report.errors), report.errors


def test_broken_vat_breakdown_fails_the_ubl_schematron() -> None:
    inv = _mixed_rates()
    first = dataclasses.replace(inv.vat_breakdown[0], tax_amount=D("1.00"))
    broken = dataclasses.replace(inv, vat_breakdown=(first, *inv.vat_breakdown[1:]))
    report = ev.validate_ubl(render_ubl(broken))
    ids = " ".join(report.errors)
    assert "BR-S-09" in ids and "BR-CO-14" in ids, report.errors


def test_out_of_order_element_fails_the_ubl_xsd() -> None:
    doc = etree.fromstring(render_ubl(_mixed_rates()))
    monetary = doc.find("cac:LegalMonetaryTotal", UBL)
    doc.remove(monetary)
    doc.insert(3, monetary)  # before IssueDate: the XSD sequence forbids it
    report = ev.validate_ubl(etree.tostring(doc))
    assert any(e.startswith("XSD") for e in report.errors), report.errors


def test_a_foreign_document_is_not_a_pass() -> None:
    report = ev.validate_ubl(b"<Invoice xmlns='urn:example'/>")
    assert report.errors  # XSD and "no rule fired"
    assert any("NO-RULE-FIRED" in e for e in report.errors)
