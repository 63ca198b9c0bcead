"""An e-invoice with nothing to pay asks for no payment (found by QA).

A card invoice with a credit balance said "nothing to pay" in print and SMS, but its Factur-X
(and Peppol UBL, Finvoice) carried the KID, the credit-transfer means (BG-16) and a due date
(BT-9) beside DuePayableAmount -500.00: a payer's accounting system would book a payment
order for -500. EN 16931 lets the e-invoice say nothing instead: BG-16 is optional, and
BR-CO-25 wants a due date (or payment terms) only when BT-115 is positive. So with BT-115 <= 0
(`Invoice.nothing_to_pay`) there is no payment means, payment reference or due date; the
totals stay as computed (BR-CO-16). Finvoice's EpiDetails is mandatory: it instructs 0,00 on
the issue date, without a reference, as for a credit note. Each e-invoice still passes a
receiving access point's checks (`einvoice_validation`: XSD, CEN schematron, Peppol rules).
"""

from __future__ import annotations

import json
import sys
import tomllib
from dataclasses import replace
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from lxml import etree

from server.channels.einvoice import cii_bytes, cii_tree, render_finvoice, render_ubl
from server.compose.composer import ComposeRequest, compose
from server.compose.en16931 import Invoice
from server.compose.validation.finvoice import check_finvoice
from tests.layouts import shipped

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
import einvoice_validation as ev  # noqa: E402

LAYOUT = shipped().get("card-invoice")
NOW = datetime(2026, 3, 2, 9, tzinfo=UTC)
SAMPLES = tomllib.loads((LAYOUT.path / "manifest.toml").read_text())["samples"]
UBL = {"cac": "urn:oasis:names:specification:ubl:schema:xsd:CommonAggregateComponents-2",
       "cbc": "urn:oasis:names:specification:ubl:schema:xsd:CommonBasicComponents-2"}
RAM = {"ram": "urn:un:unece:uncefact:data:standard:"
              "ReusableAggregateBusinessInformationEntity:100"}


def card_invoice(locale: str, balance: Decimal | None,
                 peppol_id: str | None = None) -> Invoice:
    """The card-invoice sample's EN 16931 invoice, its payments received changed so that the
    new balance is `balance` (None: the sample's own, something to pay)."""
    data: dict[str, Any] = json.loads((LAYOUT.path / SAMPLES[locale]).read_text())
    if peppol_id:
        data["customer"]["peppol_id"] = peppol_id

    def composed() -> Invoice:
        composition = compose(ComposeRequest(tenant="t", layout=LAYOUT, data=json.dumps(data),
                                             document_id="d", now=NOW, locale=locale))
        assert composition.invoice is not None
        return composition.invoice

    if balance is None:
        return composed()
    due = composed().totals.payable
    assert due > 0
    received = Decimal(data["invoice"]["payments_received"])
    data["invoice"]["payments_received"] = str(received + due - balance)
    return composed()


CASES = [Decimal("-500.00"), Decimal("0.00")]


@pytest.mark.parametrize("balance", CASES)
def test_peppol_ubl_with_nothing_to_pay_has_no_payment_means_or_due_date(balance) -> None:
    invoice = card_invoice("nb-NO", balance, peppol_id="0192:987654325")
    assert invoice.nothing_to_pay and invoice.totals.payable == balance
    xml = render_ubl(invoice)
    doc = etree.fromstring(xml)
    assert doc.findall("cac:PaymentMeans", UBL) == []
    assert doc.find("cbc:DueDate", UBL) is None
    assert doc.findtext("cac:LegalMonetaryTotal/cbc:PayableAmount", namespaces=UBL) == \
        f"{balance:.2f}"
    assert doc.findtext("cac:LegalMonetaryTotal/cbc:PrepaidAmount", namespaces=UBL) == \
        f"{invoice.totals.prepaid:.2f}"
    report = ev.validate_ubl(xml)
    assert report.errors == [] and report.warnings == [], report


@pytest.mark.parametrize("balance", CASES)
def test_factur_x_cii_with_nothing_to_pay_has_no_payment_reference_means_or_due_date(
        balance) -> None:
    invoice = card_invoice("nb-NO", balance)
    xml = cii_bytes(cii_tree(invoice))
    settlement = etree.fromstring(xml).find(".//ram:ApplicableHeaderTradeSettlement", RAM)
    for absent in ("PaymentReference", "SpecifiedTradeSettlementPaymentMeans",
                   "SpecifiedTradePaymentTerms"):
        assert settlement.find(f"ram:{absent}", RAM) is None, absent
    summation = settlement.find("ram:SpecifiedTradeSettlementHeaderMonetarySummation", RAM)
    assert summation.findtext("ram:DuePayableAmount", namespaces=RAM) == f"{balance:.2f}"
    assert b"KID" not in xml and invoice.payment.reference.value.encode() not in xml
    report = ev.validate_cii(xml)
    assert report.errors == [], report.errors


@pytest.mark.parametrize("balance", CASES)
def test_finvoice_with_nothing_to_pay_instructs_no_payment(balance) -> None:
    invoice = card_invoice("fi-FI", balance)
    xml = render_finvoice(invoice)
    doc = etree.fromstring(xml)
    instruction = doc.find("EpiDetails/EpiPaymentInstructionDetails")
    assert instruction.findtext("EpiInstructedAmount") == "0,00"
    assert instruction.find("EpiRemittanceInfoIdentifier") is None
    assert instruction.findtext("EpiDateOptionDate") == invoice.issue_date.strftime("%Y%m%d")
    assert doc.find("InvoiceDetails/PaymentTermsDetails/InvoiceDueDate") is None
    # the totals as computed: the paid amount and the (negative or zero) total
    assert doc.findtext("InvoiceDetails/InvoicePaidAmount") == \
        f"{invoice.totals.prepaid:.2f}".replace(".", ",")
    report = ev.validate_finvoice(xml)
    assert report.errors == [], report.errors


def test_an_invoice_with_something_to_pay_keeps_its_payment_instructions() -> None:
    invoice = card_invoice("nb-NO", None, peppol_id="0192:987654325")
    assert not invoice.nothing_to_pay
    doc = etree.fromstring(render_ubl(invoice))
    assert doc.findtext("cbc:DueDate", namespaces=UBL) == invoice.due_date.isoformat()
    assert doc.findtext("cac:PaymentMeans/cbc:PaymentID", namespaces=UBL) == \
        invoice.payment.payment_id


def test_a_b2b_invoice_that_comes_to_less_than_nothing_asks_for_no_payment_either() -> None:
    # the same rule for every invoice: the b2b print already said "nothing to pay"
    layout = shipped().get("b2b-invoice")
    data = json.loads(layout.sample_data())
    data["lines"].append({"name": "Kreditering av faktura 2026-0007", "quantity": "-1",
                          "unit_price": "30000", "vat_category": "S", "vat_rate": "25"})
    composition = compose(ComposeRequest(tenant="t", layout=layout, data=json.dumps(data),
                                         document_id="d", now=NOW))
    invoice = composition.invoice
    assert invoice.nothing_to_pay and composition.context["payment"]["nothing_to_pay"]
    xml = render_ubl(invoice)
    doc = etree.fromstring(xml)
    assert doc.findall("cac:PaymentMeans", UBL) == [] and doc.find("cbc:DueDate", UBL) is None
    assert Decimal(doc.findtext("cac:LegalMonetaryTotal/cbc:PayableAmount", namespaces=UBL)) < 0
    report = ev.validate_ubl(xml)
    assert report.errors == [] and report.warnings == [], report
    assert ev.validate_cii(cii_bytes(cii_tree(invoice))).errors == []


def test_a_finvoice_with_nothing_to_pay_needs_no_due_date() -> None:
    # BR-CO-25 wants none, and the EPI date is then the issue date: the Finvoice check
    # asked for one all the same
    invoice = replace(card_invoice("fi-FI", Decimal("-500.00")), due_date=None)
    assert check_finvoice(invoice) == []
    assert ev.validate_finvoice(render_finvoice(invoice)).errors == []
    owing = replace(card_invoice("fi-FI", None), due_date=None)
    assert [f.rule for f in check_finvoice(owing)] == ["FINVOICE-EpiDateOptionDate"]
