"""`Invoice` -> UN/CEFACT Cross Industry Invoice (CII D16B), Factur-X / ZUGFeRD EN 16931 profile.

This is the XML that `facturx.embed_facturx` puts inside a PDF/A-3 as `factur-x.xml`, and
that German/French receivers read as a plain CII e-invoice. The guideline id
`urn:cen.eu:en16931:2017` declares the EN 16931 (Factur-X "EN 16931", ZUGFeRD "COMFORT")
profile. Like the UBL renderer it only maps: all amounts come computed from
`server.compose.invoice`. A credit note is type 381 with positive amounts.

Element order follows the CII D16B XSD (as restricted by the Factur-X EN 16931 XSD).
Absent optional values are left out, never written empty.
"""

from __future__ import annotations

from datetime import date
from decimal import Decimal

from lxml import etree

from server.compose.model import (
    AllowanceCharge,
    Invoice,
    InvoiceLine,
    Party,
    PaymentMeans,
    VatBreakdown,
)

GUIDELINE_ID = "urn:cen.eu:en16931:2017"  # Factur-X EN 16931 profile

NS_RSM = "urn:un:unece:uncefact:data:standard:CrossIndustryInvoice:100"
NS_RAM = "urn:un:unece:uncefact:data:standard:ReusableAggregateBusinessInformationEntity:100"
NS_UDT = "urn:un:unece:uncefact:data:standard:UnqualifiedDataType:100"
NS_QDT = "urn:un:unece:uncefact:data:standard:QualifiedDataType:100"

MEDIA_TYPE = "application/xml"


def render_cii(invoice: Invoice) -> bytes:
    """The CII (Factur-X EN 16931) document for one invoice or credit note, UTF-8 bytes."""
    root = etree.Element(
        f"{{{NS_RSM}}}CrossIndustryInvoice",
        nsmap={"rsm": NS_RSM, "ram": NS_RAM, "udt": NS_UDT, "qdt": NS_QDT},
    )
    x = _Writer(invoice.currency)

    context = etree.SubElement(root, f"{{{NS_RSM}}}ExchangedDocumentContext")
    x.ram(x.el(context, "GuidelineSpecifiedDocumentContextParameter"), "ID", GUIDELINE_ID)

    document = etree.SubElement(root, f"{{{NS_RSM}}}ExchangedDocument")
    x.ram(document, "ID", invoice.number)
    x.ram(document, "TypeCode", invoice.type_code)
    x.date(x.el(document, "IssueDateTime"), invoice.issue_date)
    if invoice.note:
        x.ram(x.el(document, "IncludedNote"), "Content", invoice.note)

    transaction = etree.SubElement(root, f"{{{NS_RSM}}}SupplyChainTradeTransaction")
    for line in invoice.lines:
        _line(x, transaction, line)

    agreement = x.el(transaction, "ApplicableHeaderTradeAgreement")
    x.ram(agreement, "BuyerReference", invoice.buyer_reference)
    _party(x, agreement, "SellerTradeParty", invoice.seller)
    _party(x, agreement, "BuyerTradeParty", invoice.buyer)
    if invoice.order_reference:
        x.ram(
            x.el(agreement, "BuyerOrderReferencedDocument"),
            "IssuerAssignedID",
            invoice.order_reference,
        )

    x.el(transaction, "ApplicableHeaderTradeDelivery")  # mandatory, nothing to deliver here

    settlement = x.el(transaction, "ApplicableHeaderTradeSettlement")
    payment = invoice.payment
    if payment and payment.reference:
        x.ram(settlement, "PaymentReference", payment.reference.value)  # BT-83
    x.ram(settlement, "InvoiceCurrencyCode", invoice.currency)
    if payment:
        _payment_means(x, settlement, payment)
    for entry in invoice.vat_breakdown:
        _trade_tax(x, settlement, entry)
    if invoice.period_start or invoice.period_end:
        _period(x, settlement, invoice.period_start, invoice.period_end)
    for ac in invoice.allowances_charges:
        _allowance_charge(x, settlement, ac)
    if invoice.payment_terms or invoice.due_date:
        terms = x.el(settlement, "SpecifiedTradePaymentTerms")
        x.ram(terms, "Description", invoice.payment_terms)
        if invoice.due_date:
            x.date(x.el(terms, "DueDateDateTime"), invoice.due_date)

    t = invoice.totals
    summation = x.el(settlement, "SpecifiedTradeSettlementHeaderMonetarySummation")
    x.money(summation, "LineTotalAmount", t.line_extension)
    if invoice.allowances_charges:
        x.money(summation, "ChargeTotalAmount", t.charges)
        x.money(summation, "AllowanceTotalAmount", t.allowances)
    x.money(summation, "TaxBasisTotalAmount", t.tax_exclusive)
    x.money(summation, "TaxTotalAmount", t.tax, currency=True)  # BT-110 carries currencyID
    if t.rounding:
        x.money(summation, "RoundingAmount", t.rounding)
    x.money(summation, "GrandTotalAmount", t.tax_inclusive)
    if t.prepaid:
        x.money(summation, "TotalPrepaidAmount", t.prepaid)
    x.money(summation, "DuePayableAmount", t.payable)

    if invoice.preceding_invoice:
        x.ram(
            x.el(settlement, "InvoiceReferencedDocument"),
            "IssuerAssignedID",
            invoice.preceding_invoice,
        )

    return etree.tostring(root, xml_declaration=True, encoding="UTF-8", pretty_print=True)


def _line(x: _Writer, transaction: etree._Element, line: InvoiceLine) -> None:
    """BG-25 as an IncludedSupplyChainTradeLineItem."""
    item = x.el(transaction, "IncludedSupplyChainTradeLineItem")
    x.ram(x.el(item, "AssociatedDocumentLineDocument"), "LineID", line.id)
    product = x.el(item, "SpecifiedTradeProduct")
    x.ram(product, "Name", line.name)
    x.ram(product, "Description", line.description)
    agreement = x.el(item, "SpecifiedLineTradeAgreement")
    x.ram(x.el(agreement, "NetPriceProductTradePrice"), "ChargeAmount", _number(line.unit_price))
    delivery = x.el(item, "SpecifiedLineTradeDelivery")
    x.ram(delivery, "BilledQuantity", _number(line.quantity), unitCode=line.unit_code)
    settlement = x.el(item, "SpecifiedLineTradeSettlement")
    tax = x.el(settlement, "ApplicableTradeTax")
    x.ram(tax, "TypeCode", "VAT")
    x.ram(tax, "CategoryCode", line.vat_category)
    if line.vat_category != "O" and line.vat_rate is not None:
        x.ram(tax, "RateApplicablePercent", _number(line.vat_rate))
    if line.period_start or line.period_end:
        _period(x, settlement, line.period_start, line.period_end)
    x.money(
        x.el(settlement, "SpecifiedTradeSettlementLineMonetarySummation"),
        "LineTotalAmount",
        line.net_amount,
    )


def _party(x: _Writer, parent: etree._Element, tag: str, party: Party) -> None:
    """BG-4 / BG-7 as a TradeParty."""
    el = x.el(parent, tag)
    x.ram(el, "Name", party.name)
    if party.legal_id:
        x.ram(
            x.el(el, "SpecifiedLegalOrganization"),
            "ID",
            party.legal_id,
            schemeID=party.legal_id_scheme,
        )
    if party.contact_name or party.contact_phone or party.contact_email:
        contact = x.el(el, "DefinedTradeContact")
        x.ram(contact, "PersonName", party.contact_name)
        if party.contact_phone:
            x.ram(
                x.el(contact, "TelephoneUniversalCommunication"),
                "CompleteNumber",
                party.contact_phone,
            )
        if party.contact_email:
            x.ram(x.el(contact, "EmailURIUniversalCommunication"), "URIID", party.contact_email)
    if party.address:
        address = x.el(el, "PostalTradeAddress")
        lines = list(party.address.lines)
        x.ram(address, "PostcodeCode", party.address.postal_code or None)
        x.ram(address, "LineOne", lines[0] if lines else None)
        x.ram(address, "LineTwo", lines[1] if len(lines) > 1 else None)
        x.ram(address, "LineThree", ", ".join(lines[2:]) or None)
        x.ram(address, "CityName", party.address.city or None)
        x.ram(address, "CountryID", party.address.country)
    if party.endpoint_id:
        x.ram(
            x.el(el, "URIUniversalCommunication"),
            "URIID",
            party.endpoint_id,
            schemeID=party.endpoint_scheme,
        )
    if party.vat_id:
        x.ram(x.el(el, "SpecifiedTaxRegistration"), "ID", party.vat_id, schemeID="VA")


def _payment_means(x: _Writer, settlement: etree._Element, payment: PaymentMeans) -> None:
    """BG-16: means code and the payee account (IBAN or national account number)."""
    el = x.el(settlement, "SpecifiedTradeSettlementPaymentMeans")
    x.ram(el, "TypeCode", payment.code)
    if payment.account:
        account = x.el(el, "PayeePartyCreditorFinancialAccount")
        compact = payment.account.replace(" ", "")
        is_iban = len(compact) >= 15 and compact[:2].isalpha() and compact[2:4].isdigit()
        # XSD order: IBANID, AccountName, ProprietaryID
        x.ram(account, "IBANID", compact if is_iban else None)
        x.ram(account, "AccountName", payment.account_name)
        x.ram(account, "ProprietaryID", None if is_iban else compact)
        if payment.bic:
            x.ram(x.el(el, "PayeeSpecifiedCreditorFinancialInstitution"), "BICID", payment.bic)


def _trade_tax(x: _Writer, settlement: etree._Element, entry: VatBreakdown) -> None:
    """BG-23 VAT breakdown entry."""
    el = x.el(settlement, "ApplicableTradeTax")
    x.money(el, "CalculatedAmount", entry.tax_amount)
    x.ram(el, "TypeCode", "VAT")
    x.ram(el, "ExemptionReason", entry.exemption_reason)
    x.money(el, "BasisAmount", entry.taxable_amount)
    x.ram(el, "CategoryCode", entry.category)
    x.ram(el, "ExemptionReasonCode", entry.exemption_reason_code)
    if entry.category != "O" and entry.rate is not None:
        x.ram(el, "RateApplicablePercent", _number(entry.rate))


def _allowance_charge(x: _Writer, settlement: etree._Element, ac: AllowanceCharge) -> None:
    """BG-20 / BG-21 document-level allowance or charge."""
    el = x.el(settlement, "SpecifiedTradeAllowanceCharge")
    indicator = x.el(el, "ChargeIndicator")
    etree.SubElement(indicator, f"{{{NS_UDT}}}Indicator").text = "true" if ac.is_charge else "false"
    x.money(el, "ActualAmount", ac.amount)
    x.ram(el, "ReasonCode", ac.reason_code)
    x.ram(el, "Reason", ac.reason or None)
    tax = x.el(el, "CategoryTradeTax")
    x.ram(tax, "TypeCode", "VAT")
    x.ram(tax, "CategoryCode", ac.vat_category)
    if ac.vat_category != "O" and ac.vat_rate is not None:
        x.ram(tax, "RateApplicablePercent", _number(ac.vat_rate))


def _period(x: _Writer, parent: etree._Element, start: date | None, end: date | None) -> None:
    el = x.el(parent, "BillingSpecifiedPeriod")
    if start:
        x.date(x.el(el, "StartDateTime"), start)
    if end:
        x.date(x.el(el, "EndDateTime"), end)


def _number(value: Decimal) -> str:
    text = f"{value:f}"
    if "." in text:
        text = text.rstrip("0").rstrip(".")
    return text


class _Writer:
    """Appends ram children, skipping absent values."""

    def __init__(self, currency: str) -> None:
        self.currency = currency

    def el(self, parent: etree._Element, tag: str) -> etree._Element:
        return etree.SubElement(parent, f"{{{NS_RAM}}}{tag}")

    def ram(self, parent: etree._Element, tag: str, text: str | None, **attrs: str | None) -> None:
        if text is None or text == "":
            return
        el = etree.SubElement(parent, f"{{{NS_RAM}}}{tag}")
        el.text = text
        for key, value in attrs.items():
            if value:
                el.set(key, value)

    def money(
        self, parent: etree._Element, tag: str, value: Decimal, *, currency: bool = False
    ) -> None:
        self.ram(parent, tag, f"{value:.2f}", currencyID=self.currency if currency else None)

    def date(self, parent: etree._Element, value: date) -> None:
        el = etree.SubElement(parent, f"{{{NS_UDT}}}DateTimeString", format="102")
        el.text = value.strftime("%Y%m%d")
