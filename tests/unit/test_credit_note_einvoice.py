"""A credit note's e-invoice asks for no payment (QA on b2b-invoice credit notes).

A b2b-invoice credit note (type code 381) with the seller's payment account, a KID and a
due date was written with the payment instructions of an invoice: the Peppol BIS 3
CreditNote carried PaymentMeans with the seller's account, the KID as PaymentID and a
PaymentDueDate, the Factur-X CII the PaymentReference, the payment means and a DueDateDateTime,
the Finvoice an InvoiceDueDate, the RF reference and the due date as EPI payment date: each
asks the buyer to pay the seller what the seller credits. EN 16931 lets a credit note leave
them out (BG-16 is optional; BR-CO-25 is an invoice's rule, CEN schematron issues #84 and
#241), so a credit note now carries no BG-16, BT-83 or BT-9 in any syntax
(`Invoice.asks_for_payment`); it keeps its payment terms (BT-20) and names the invoice it
credits (BG-3: UBL BillingReference, CII InvoiceReferencedDocument, Finvoice's
OriginalInvoiceNumber). Finvoice's mandatory EpiDetails instructs 0,00 on the issue date.
A credit note needs no due date or payment terms (BR-CO-25 was applied to it). Each output
passes a receiving access point's checks (`einvoice_validation`: XSD, CEN schematron, Peppol
rules on UBL).
"""

from __future__ import annotations

import io
import json
import sys
from datetime import UTC, datetime
from pathlib import Path

import pikepdf
import pytest
from lxml import etree

from server.channels import Renderers
from server.compose.composer import ComposeRequest, compose
from server.compose.layouts import LayoutRegistry
from server.compose.model import Channel

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
import einvoice_validation as ev  # noqa: E402

LAYOUTS = LayoutRegistry()
RENDERERS = Renderers()
NOW = datetime(2026, 3, 2, 9, tzinfo=UTC)
UBL = {"cac": "urn:oasis:names:specification:ubl:schema:xsd:CommonAggregateComponents-2",
       "cbc": "urn:oasis:names:specification:ubl:schema:xsd:CommonBasicComponents-2"}
RAM = {"ram": "urn:un:unece:uncefact:data:standard:"
              "ReusableAggregateBusinessInformationEntity:100"}
DUE = "2026-03-30"
# customer edits -> the syntax the plan gives (server/compose/plan.py einvoice_syntax)
PEPPOL = {"peppol_id": "0192:987654325"}
FINNISH_CONSUMER = {"address": {"lines": ["Kotikatu 3 B 12"], "postal_code": "33100",
                                "city": "TAMPERE", "country": "FI"},
                    "org_number": None, "vat_id": None}


def einvoice(customer: dict, *, credit_note: bool = True, due_date: str | None = DUE,
             payment_terms: str | None = "keep", version: str | None = None
             ) -> tuple[object, bytes, str]:
    """(the composed invoice, its e-invoice XML, the syntax) for the b2b-invoice credit note
    sample (or, `credit_note` False, the invoice sample) with `due_date` set, sent to the
    customer as edited. A Finnish consumer's is in EUR with an RF reference to an IBAN."""
    layout = LAYOUTS.get("b2b-invoice", version)
    data = json.loads((layout.path / ("sample-credit-note.json" if credit_note
                                      else "sample.json")).read_text(encoding="utf-8"))
    data["customer"] = {k: v for k, v in {**data["customer"], **customer}.items()
                        if v is not None}
    data.pop("due_date", None)
    if due_date:
        data["due_date"] = due_date
    if payment_terms is None:
        data.pop("payment_terms", None)
    if customer is FINNISH_CONSUMER:
        data.update(currency="EUR", payment={"reference_base": "1232"})
        data["seller"]["payment_account"] = {"type": "iban", "number": "FI2112345600000785"}
    composition = compose(ComposeRequest(tenant="t", layout=layout, data=json.dumps(data),
                                         document_id="d", now=NOW, locale="nb-NO",
                                         channels=(Channel.EINVOICE,)))
    [output] = RENDERERS.render(composition, layout)
    xml = output.content
    if output.media_type == "application/pdf":  # Factur-X: the CII inside the PDF/A-3
        with pikepdf.open(io.BytesIO(xml)) as pdf:
            xml = pdf.attachments["factur-x.xml"].get_file().read_bytes()
    return composition.invoice, xml, output.facts["syntax"]


def credited(invoice) -> tuple[str, ...]:
    numbers = tuple(p.number for p in invoice.preceding_invoices)
    assert numbers and all(numbers)
    return numbers


def test_the_samples_ask_for_a_payment_as_qa_saw_it():
    # the data behind QA's credit note: the seller's account, a KID and a due date
    invoice, _, _ = einvoice(PEPPOL)
    assert invoice.is_credit_note and invoice.type_code == "381"
    assert invoice.payment.account and invoice.payment.payment_id
    assert invoice.due_date.isoformat() == DUE and not invoice.asks_for_payment


def test_peppol_credit_note_has_no_payment_means_payment_id_or_due_date():
    invoice, xml, syntax = einvoice(PEPPOL)
    assert syntax == "peppol-bis-3-ubl"
    doc = etree.fromstring(xml)
    assert etree.QName(doc).localname == "CreditNote"
    assert doc.findtext("cbc:CreditNoteTypeCode", namespaces=UBL) == "381"
    assert doc.findall("cac:PaymentMeans", UBL) == []
    for absent in (b"PaymentDueDate", b"PaymentID", b"DueDate", b"PayeeFinancialAccount",
                   invoice.payment.payment_id.encode()):
        assert absent not in xml, absent
    refs = doc.findall("cac:BillingReference/cac:InvoiceDocumentReference/cbc:ID", UBL)
    assert tuple(ref.text for ref in refs) == credited(invoice)
    assert doc.findtext("cac:PaymentTerms/cbc:Note", namespaces=UBL) == invoice.payment_terms
    assert doc.findtext("cac:LegalMonetaryTotal/cbc:PayableAmount", namespaces=UBL) == \
        f"{invoice.totals.payable:.2f}"
    report = ev.validate_ubl(xml)
    assert report.errors == [] and report.warnings == [], report


def test_factur_x_credit_note_has_no_payment_reference_means_or_due_date():
    invoice, xml, syntax = einvoice({})
    assert syntax == "factur-x-en16931"
    doc = etree.fromstring(xml)
    assert doc.findtext(".//rsm:ExchangedDocument/ram:TypeCode", namespaces={
        **RAM, "rsm": "urn:un:unece:uncefact:data:standard:CrossIndustryInvoice:100"}) == "381"
    settlement = doc.find(".//ram:ApplicableHeaderTradeSettlement", RAM)
    for absent in ("PaymentReference", "SpecifiedTradeSettlementPaymentMeans"):
        assert settlement.find(f"ram:{absent}", RAM) is None, absent
    assert settlement.find(".//ram:DueDateDateTime", RAM) is None
    assert settlement.findtext("ram:SpecifiedTradePaymentTerms/ram:Description",
                               namespaces=RAM) == invoice.payment_terms
    assert invoice.payment.payment_id.encode() not in xml
    refs = settlement.findall("ram:InvoiceReferencedDocument/ram:IssuerAssignedID", RAM)
    assert tuple(ref.text for ref in refs) == credited(invoice)
    report = ev.validate_cii(xml)
    assert report.errors == [], report.errors


def test_finvoice_credit_note_instructs_no_payment_and_has_no_due_date():
    invoice, xml, syntax = einvoice(FINNISH_CONSUMER)
    assert syntax == "finvoice-3.0"
    doc = etree.fromstring(xml)
    assert doc.findtext("InvoiceDetails/InvoiceTypeCode") == "INV02"
    assert doc.find("InvoiceDetails/PaymentTermsDetails/InvoiceDueDate") is None
    instruction = doc.find("EpiDetails/EpiPaymentInstructionDetails")
    assert instruction.findtext("EpiInstructedAmount") == "0,00"
    assert instruction.find("EpiRemittanceInfoIdentifier") is None
    assert instruction.findtext("EpiDateOptionDate") == invoice.issue_date.strftime("%Y%m%d")
    assert b"RF111232" not in xml and DUE.replace("-", "").encode() not in xml
    assert doc.findtext("InvoiceDetails/OriginalInvoiceNumber") == credited(invoice)[0]
    report = ev.validate_finvoice(xml)
    assert report.errors == [], report.errors


@pytest.mark.parametrize("customer", [PEPPOL, {}, FINNISH_CONSUMER],
                         ids=["peppol", "factur-x", "finvoice"])
def test_a_credit_note_needs_no_due_date_or_payment_terms(customer):
    # BR-CO-25 (a due date or terms when BT-115 is positive) is an invoice's rule
    invoice, xml, syntax = einvoice(customer, due_date=None, payment_terms=None)
    assert invoice.due_date is None and invoice.payment_terms is None
    validate = {"peppol-bis-3-ubl": ev.validate_ubl, "factur-x-en16931": ev.validate_cii,
                "finvoice-3.0": ev.validate_finvoice}[syntax]
    assert validate(xml).errors == []


def test_an_invoice_keeps_its_payment_instructions_and_due_date():
    invoice, xml, _ = einvoice(PEPPOL, credit_note=False)
    assert invoice.asks_for_payment and invoice.due_date.isoformat() == DUE
    doc = etree.fromstring(xml)
    assert doc.findtext("cbc:DueDate", namespaces=UBL) == DUE
    assert doc.findtext("cac:PaymentMeans/cbc:PaymentID", namespaces=UBL) == \
        invoice.payment.payment_id
    invoice, xml, syntax = einvoice({"peppol_id": None}, credit_note=False)
    assert syntax == "factur-x-en16931"
    settlement = etree.fromstring(xml).find(".//ram:ApplicableHeaderTradeSettlement", RAM)
    assert settlement.findtext("ram:PaymentReference", namespaces=RAM) == \
        invoice.payment.payment_id
    assert settlement.find("ram:SpecifiedTradePaymentTerms/ram:DueDateDateTime", RAM) is not None
