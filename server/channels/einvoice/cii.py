"""`Invoice` -> UN/CEFACT Cross Industry Invoice (CII D16B), Factur-X / ZUGFeRD EN 16931 profile.

This is the XML that `facturx.embed_facturx` puts inside a PDF/A-3 as `factur-x.xml`, and
that German/French receivers read as a plain CII e-invoice. The guideline id
`urn:cen.eu:en16931:2017` declares the EN 16931 (Factur-X "EN 16931", ZUGFeRD "COMFORT")
profile. Like the UBL renderer it only maps: all amounts come computed from
`server.compose.invoice`. A credit note is its own type code with positive amounts.

Element order follows the CII D16B XSD as the Factur-X EN 16931 XSD restricts it; the
mapping of each business term is the CEN syntax binding (EN 16931-3-3). Absent optional
values are left out, never written empty; a zero amount is never "-0.00". Only a document
that asks for a payment (`Invoice.asks_for_payment`: an invoice with BT-115 > 0) has a
payment reference, payment means and a due date; an invoice with nothing to pay and a credit
note (TypeCode 381: what it credits is not to be paid to the seller) have none.
"""

from __future__ import annotations

import base64
from datetime import date
from decimal import Decimal

from lxml import etree

from server.channels.einvoice.elements import child
from server.channels.einvoice.ubl import money_text, plain_number
from server.compose.en16931 import (
    AllowanceCharge,
    Identifier,
    Invoice,
    InvoiceLine,
    LineAllowanceCharge,
    Party,
    PaymentMeans,
    VatBreakdown,
)
from server.compose.model import PostalAddress

GUIDELINE_ID = "urn:cen.eu:en16931:2017"  # Factur-X EN 16931 profile

NS_RSM = "urn:un:unece:uncefact:data:standard:CrossIndustryInvoice:100"
NS_RAM = "urn:un:unece:uncefact:data:standard:ReusableAggregateBusinessInformationEntity:100"
NS_UDT = "urn:un:unece:uncefact:data:standard:UnqualifiedDataType:100"
NS_QDT = "urn:un:unece:uncefact:data:standard:QualifiedDataType:100"
NSMAP = {"rsm": NS_RSM, "ram": NS_RAM, "udt": NS_UDT, "qdt": NS_QDT}

MEDIA_TYPE = "application/xml"
# BT-8: the UNCL2005 code of the model as CII writes it (UNCL2475, EN 16931-3-3)
TAX_POINT_CODE = {"3": "5", "35": "29", "432": "72"}


def render_cii(invoice: Invoice, pdf: bytes | None = None) -> bytes:
    """The CII (Factur-X EN 16931) document for one invoice or credit note, UTF-8 bytes.
    `pdf` fills an attachment that asks for the document's own PDF (in a Factur-X file the
    PDF is the container itself, so it is normally not given)."""
    return cii_bytes(cii_tree(invoice, pdf))


def cii_tree(invoice: Invoice, pdf: bytes | None = None) -> etree._Element:
    """The CII document as an lxml tree (its root, `rsm:CrossIndustryInvoice`), for a caller
    that needs both the bytes (`cii_bytes`) and the tree: Factur-X embeds the bytes and reads
    the tree (`facturx.embed_facturx(..., parsed=tree)`), sparing a parse of what was just
    serialized. `pdf` as in `render_cii`."""
    root = etree.Element(f"{{{NS_RSM}}}CrossIndustryInvoice", nsmap=NSMAP)
    x = _Writer(invoice.currency)

    context = etree.SubElement(root, f"{{{NS_RSM}}}ExchangedDocumentContext")
    x.ram(x.el(context, "GuidelineSpecifiedDocumentContextParameter"), "ID", GUIDELINE_ID)

    document = etree.SubElement(root, f"{{{NS_RSM}}}ExchangedDocument")
    x.ram(document, "ID", invoice.number)
    x.ram(document, "TypeCode", invoice.type_code)
    x.date(x.el(document, "IssueDateTime"), invoice.issue_date)
    if invoice.note:
        note = x.el(document, "IncludedNote")
        x.ram(note, "Content", invoice.note)
        x.ram(note, "SubjectCode", invoice.note_subject)

    transaction = etree.SubElement(root, f"{{{NS_RSM}}}SupplyChainTradeTransaction")
    for line in invoice.lines:
        _line(x, transaction, line)
    _agreement(x, transaction, invoice, pdf)
    _delivery(x, transaction, invoice)
    _settlement(x, transaction, invoice)
    return root


def cii_bytes(tree: etree._Element) -> bytes:
    """`cii_tree`'s document as `render_cii` writes it: UTF-8 with the XML declaration,
    pretty-printed."""
    return etree.tostring(tree, xml_declaration=True, encoding="UTF-8", pretty_print=True)


def _agreement(x: _Writer, transaction: etree._Element, invoice: Invoice,
               pdf: bytes | None) -> None:
    agreement = x.el(transaction, "ApplicableHeaderTradeAgreement")
    x.ram(agreement, "BuyerReference", invoice.buyer_reference)
    _party(x, agreement, "SellerTradeParty", invoice.seller, seller=True)
    _party(x, agreement, "BuyerTradeParty", invoice.buyer, seller=False)
    rep = invoice.tax_representative
    if rep is not None:
        el = x.el(agreement, "SellerTaxRepresentativeTradeParty")
        x.ram(el, "Name", rep.name)
        _address(x, el, rep.address)
        x.ram(x.el(el, "SpecifiedTaxRegistration"), "ID", rep.vat_id, schemeID="VA")
    _doc_ref(x, agreement, "SellerOrderReferencedDocument", invoice.sales_order_reference)
    _doc_ref(x, agreement, "BuyerOrderReferencedDocument", invoice.order_reference)
    _doc_ref(x, agreement, "ContractReferencedDocument", invoice.contract_reference)
    for att in invoice.attachments:
        el = x.el(agreement, "AdditionalReferencedDocument")
        x.ram(el, "IssuerAssignedID", att.id)
        x.ram(el, "URIID", att.uri)
        x.ram(el, "TypeCode", "916")  # supporting document
        x.ram(el, "Name", att.description)
        content = pdf if att.rendered_pdf else att.content
        if content is not None:
            x.ram(el, "AttachmentBinaryObject", base64.b64encode(content).decode("ascii"),
                  mimeCode=att.mime_code, filename=att.filename)
    if invoice.tender_reference:  # BT-17
        el = x.el(agreement, "AdditionalReferencedDocument")
        x.ram(el, "IssuerAssignedID", invoice.tender_reference)
        x.ram(el, "TypeCode", "50")
    if invoice.invoiced_object:  # BT-18
        el = x.el(agreement, "AdditionalReferencedDocument")
        x.ram(el, "IssuerAssignedID", invoice.invoiced_object.value)
        x.ram(el, "TypeCode", "130")
        x.ram(el, "ReferenceTypeCode", invoice.invoiced_object.scheme)
    if invoice.project_reference:  # BT-11 (the XSD wants a project name too)
        project = x.el(agreement, "SpecifiedProcuringProject")
        x.ram(project, "ID", invoice.project_reference)
        x.ram(project, "Name", "Project reference")


def _delivery(x: _Writer, transaction: etree._Element, invoice: Invoice) -> None:
    delivery = x.el(transaction, "ApplicableHeaderTradeDelivery")
    d = invoice.delivery
    if d is not None and (d.party_name or d.location or d.address):
        ship_to = x.el(delivery, "ShipToTradeParty")
        if d.location:
            _party_id(x, ship_to, d.location)
        x.ram(ship_to, "Name", d.party_name)
        if d.address:
            _address(x, ship_to, d.address)
    if d is not None and d.date:
        x.date(x.el(x.el(delivery, "ActualDeliverySupplyChainEvent"), "OccurrenceDateTime"),
               d.date)
    _doc_ref(x, delivery, "DespatchAdviceReferencedDocument", invoice.despatch_advice_reference)
    _doc_ref(x, delivery, "ReceivingAdviceReferencedDocument",
             invoice.receiving_advice_reference)


def _settlement(x: _Writer, transaction: etree._Element, invoice: Invoice) -> None:
    settlement = x.el(transaction, "ApplicableHeaderTradeSettlement")
    creditor = next((i.value for i in (*invoice.seller.identifiers,) if i.scheme == "SEPA"),
                    None)
    x.ram(settlement, "CreditorReferenceID", creditor)  # BT-90
    # An invoice with nothing to pay and a credit note ask for no payment: no BT-83, BG-16 or
    # BT-9 (BR-CO-25 wants a due date only when an invoice's BT-115 is positive; BG-16 is
    # optional)
    means = invoice.payment_means if invoice.asks_for_payment else ()
    payment = means[0] if means else None
    x.ram(settlement, "PaymentReference", payment.payment_id if payment else None)  # BT-83
    x.ram(settlement, "TaxCurrencyCode", invoice.tax_currency)
    x.ram(settlement, "InvoiceCurrencyCode", invoice.currency)
    if invoice.payee is not None:
        payee = x.el(settlement, "PayeeTradeParty")
        if invoice.payee.identifier:
            _party_id(x, payee, invoice.payee.identifier)
        x.ram(payee, "Name", invoice.payee.name)
        if invoice.payee.legal_id:
            x.ram(x.el(payee, "SpecifiedLegalOrganization"), "ID", invoice.payee.legal_id.value,
                  schemeID=invoice.payee.legal_id.scheme)
    for one in means:
        _payment_means(x, settlement, one)
    for i, entry in enumerate(invoice.vat_breakdown):
        _trade_tax(x, settlement, entry, invoice if i == 0 else None)
    if invoice.period_start or invoice.period_end:
        _period(x, settlement, invoice.period_start, invoice.period_end)
    for ac in invoice.allowances_charges:
        _allowance_charge(x, settlement, ac)
    mandate = next((m.mandate_id for m in means if m.mandate_id), None)
    due_date = invoice.due_date if invoice.asks_for_payment else None
    if invoice.payment_terms or due_date or mandate:
        terms = x.el(settlement, "SpecifiedTradePaymentTerms")
        x.ram(terms, "Description", invoice.payment_terms)
        if due_date:
            x.date(x.el(terms, "DueDateDateTime"), due_date)
        x.ram(terms, "DirectDebitMandateID", mandate)

    t = invoice.totals
    summation = x.el(settlement, "SpecifiedTradeSettlementHeaderMonetarySummation")
    x.money(summation, "LineTotalAmount", t.line_extension)
    if any(ac.is_charge for ac in invoice.allowances_charges):
        x.money(summation, "ChargeTotalAmount", t.charges)
    if any(not ac.is_charge for ac in invoice.allowances_charges):
        x.money(summation, "AllowanceTotalAmount", t.allowances)
    x.money(summation, "TaxBasisTotalAmount", t.tax_exclusive)
    x.money(summation, "TaxTotalAmount", t.tax, currency=invoice.currency)  # BT-110
    if invoice.tax_currency and t.tax_in_accounting_currency is not None:  # BT-111
        x.money(summation, "TaxTotalAmount", t.tax_in_accounting_currency,
                currency=invoice.tax_currency)
    if t.rounding:
        x.money(summation, "RoundingAmount", t.rounding)
    x.money(summation, "GrandTotalAmount", t.tax_inclusive)
    if t.prepaid:
        x.money(summation, "TotalPrepaidAmount", t.prepaid)
    x.money(summation, "DuePayableAmount", t.payable)

    for preceding in invoice.preceding_invoices:
        el = x.el(settlement, "InvoiceReferencedDocument")
        x.ram(el, "IssuerAssignedID", preceding.number)
        if preceding.issue_date:
            x.qdate(x.el(el, "FormattedIssueDateTime"), preceding.issue_date, tag="DateTimeString")
    if invoice.accounting_reference:
        x.ram(x.el(settlement, "ReceivableSpecifiedTradeAccountingAccount"), "ID",
              invoice.accounting_reference)


def _line(x: _Writer, transaction: etree._Element, line: InvoiceLine) -> None:
    """BG-25 as an IncludedSupplyChainTradeLineItem."""
    item = x.el(transaction, "IncludedSupplyChainTradeLineItem")
    doc = x.el(item, "AssociatedDocumentLineDocument")
    x.ram(doc, "LineID", line.id)
    if line.note:
        x.ram(x.el(doc, "IncludedNote"), "Content", line.note)
    product = x.el(item, "SpecifiedTradeProduct")
    if line.standard_item_id:
        x.ram(product, "GlobalID", line.standard_item_id.value,
              schemeID=line.standard_item_id.scheme)
    x.ram(product, "SellerAssignedID", line.seller_item_id)
    x.ram(product, "BuyerAssignedID", line.buyer_item_id)
    x.ram(product, "Name", line.name)
    x.ram(product, "Description", line.description)
    for attr in line.attributes:
        characteristic = x.el(product, "ApplicableProductCharacteristic")
        x.ram(characteristic, "Description", attr.name)
        x.ram(characteristic, "Value", attr.value)
    for cls in line.classifications:
        x.ram(x.el(product, "DesignatedProductClassification"), "ClassCode", cls.value,
              listID=cls.scheme, listVersionID=cls.version)
    if line.origin_country:
        x.ram(x.el(product, "OriginTradeCountry"), "ID", line.origin_country)

    agreement = x.el(item, "SpecifiedLineTradeAgreement")
    if line.order_line_reference:
        x.ram(x.el(agreement, "BuyerOrderReferencedDocument"), "LineID",
              line.order_line_reference)
    if line.gross_price is not None:
        gross = x.el(agreement, "GrossPriceProductTradePrice")
        x.ram(gross, "ChargeAmount", plain_number(line.gross_price))
        _basis(x, gross, line)
        if line.price_discount:
            discount = x.el(gross, "AppliedTradeAllowanceCharge")
            _indicator(x, discount, False)
            x.ram(discount, "ActualAmount", plain_number(line.price_discount))
    net = x.el(agreement, "NetPriceProductTradePrice")
    x.ram(net, "ChargeAmount", plain_number(line.unit_price))
    _basis(x, net, line)
    delivery = x.el(item, "SpecifiedLineTradeDelivery")
    x.ram(delivery, "BilledQuantity", plain_number(line.quantity), unitCode=line.unit_code)
    settlement = x.el(item, "SpecifiedLineTradeSettlement")
    tax = x.el(settlement, "ApplicableTradeTax")
    x.ram(tax, "TypeCode", "VAT")
    x.ram(tax, "CategoryCode", line.vat_category)
    if line.vat_category != "O" and line.vat_rate is not None:
        x.ram(tax, "RateApplicablePercent", plain_number(line.vat_rate))
    if line.period_start or line.period_end:
        _period(x, settlement, line.period_start, line.period_end)
    for ac in line.allowances_charges:
        _allowance_charge(x, settlement, ac)
    x.money(x.el(settlement, "SpecifiedTradeSettlementLineMonetarySummation"),
            "LineTotalAmount", line.net_amount)
    if line.object_id:
        ref = x.el(settlement, "AdditionalReferencedDocument")
        x.ram(ref, "IssuerAssignedID", line.object_id.value)
        x.ram(ref, "TypeCode", "130")
        x.ram(ref, "ReferenceTypeCode", line.object_id.scheme)
    if line.accounting_reference:
        x.ram(x.el(settlement, "ReceivableSpecifiedTradeAccountingAccount"), "ID",
              line.accounting_reference)


def _basis(x: _Writer, price: etree._Element, line: InvoiceLine) -> None:
    if line.base_quantity is not None:
        x.ram(price, "BasisQuantity", plain_number(line.base_quantity), unitCode=line.unit_code)


def _party_id(x: _Writer, parent: etree._Element, ident: Identifier) -> None:
    """An identifier with a scheme is a GlobalID, without one an ID (EN 16931-3-3)."""
    if ident.scheme:
        x.ram(parent, "GlobalID", ident.value, schemeID=ident.scheme)
    else:
        x.ram(parent, "ID", ident.value)


def _address(x: _Writer, parent: etree._Element, address: PostalAddress) -> None:
    el = x.el(parent, "PostalTradeAddress")
    lines = list(address.lines)
    x.ram(el, "PostcodeCode", address.postal_code or None)
    x.ram(el, "LineOne", lines[0] if lines else None)
    x.ram(el, "LineTwo", lines[1] if len(lines) > 1 else None)
    x.ram(el, "LineThree", ", ".join(lines[2:]) or None)
    x.ram(el, "CityName", address.city or None)
    x.ram(el, "CountryID", address.country)
    x.ram(el, "CountrySubDivisionName", address.subdivision)


def _party(x: _Writer, parent: etree._Element, tag: str, party: Party, *, seller: bool) -> None:
    """BG-4 / BG-7 as a TradeParty."""
    el = x.el(parent, tag)
    for ident in party.identifiers:
        if ident.scheme != "SEPA":  # BT-90 is the settlement's CreditorReferenceID
            _party_id(x, el, ident)
    x.ram(el, "Name", party.name)
    x.ram(el, "Description", party.legal_info if seller else None)  # BT-33
    if party.legal_id or party.trading_name:
        legal = x.el(el, "SpecifiedLegalOrganization")
        x.ram(legal, "ID", party.legal_id, schemeID=party.legal_id_scheme)
        x.ram(legal, "TradingBusinessName", party.trading_name)
    if party.contact_name or party.contact_phone or party.contact_email:
        contact = x.el(el, "DefinedTradeContact")
        x.ram(contact, "PersonName", party.contact_name)
        if party.contact_phone:
            x.ram(x.el(contact, "TelephoneUniversalCommunication"), "CompleteNumber",
                  party.contact_phone)
        if party.contact_email:
            x.ram(x.el(contact, "EmailURIUniversalCommunication"), "URIID", party.contact_email)
    if party.address:
        _address(x, el, party.address)
    if party.endpoint_id:
        x.ram(x.el(el, "URIUniversalCommunication"), "URIID", party.endpoint_id,
              schemeID=party.endpoint_scheme)
    if party.vat_id:
        x.ram(x.el(el, "SpecifiedTaxRegistration"), "ID", party.vat_id, schemeID="VA")
    if seller and party.tax_registration_id:
        x.ram(x.el(el, "SpecifiedTaxRegistration"), "ID", party.tax_registration_id,
              schemeID="FC")


def _payment_means(x: _Writer, settlement: etree._Element, payment: PaymentMeans) -> None:
    """BG-16: means code, card, payer account (direct debit) or payee account."""
    el = x.el(settlement, "SpecifiedTradeSettlementPaymentMeans")
    x.ram(el, "TypeCode", payment.code)
    x.ram(el, "Information", payment.text)
    if payment.card_pan:
        card = x.el(el, "ApplicableTradeSettlementFinancialCard")
        x.ram(card, "ID", payment.card_pan)
        x.ram(card, "CardholderName", payment.card_holder)
    if payment.debited_account:
        x.ram(x.el(el, "PayerPartyDebtorFinancialAccount"), "IBANID", payment.debited_account)
    if payment.account:
        account = x.el(el, "PayeePartyCreditorFinancialAccount")
        compact = payment.account.replace(" ", "")
        is_iban = len(compact) >= 15 and compact[:2].isalpha() and compact[2:4].isdigit()
        x.ram(account, "IBANID", compact if is_iban else None)
        x.ram(account, "AccountName", payment.account_name)
        x.ram(account, "ProprietaryID", None if is_iban else compact)
        bic = payment.bic
        if bic and len(bic) in (8, 11) and bic.isalnum():  # a BIC, not "SE:BANKGIRO"
            x.ram(x.el(el, "PayeeSpecifiedCreditorFinancialInstitution"), "BICID", bic)


def _trade_tax(x: _Writer, settlement: etree._Element, entry: VatBreakdown,
               invoice: Invoice | None) -> None:
    """BG-23 VAT breakdown entry (the first carries BT-7 / BT-8)."""
    el = x.el(settlement, "ApplicableTradeTax")
    x.money(el, "CalculatedAmount", entry.tax_amount)
    x.ram(el, "TypeCode", "VAT")
    x.ram(el, "ExemptionReason", entry.exemption_reason)
    x.money(el, "BasisAmount", entry.taxable_amount)
    x.ram(el, "CategoryCode", entry.category)
    x.ram(el, "ExemptionReasonCode", entry.exemption_reason_code)
    if invoice is not None and invoice.tax_point_date:
        x.qdate(x.el(el, "TaxPointDate"), invoice.tax_point_date, udt=True)
    if invoice is not None and invoice.tax_point_code:
        x.ram(el, "DueDateTypeCode", TAX_POINT_CODE.get(invoice.tax_point_code))
    if entry.category != "O" and entry.rate is not None:
        x.ram(el, "RateApplicablePercent", plain_number(entry.rate))


def _allowance_charge(x: _Writer, parent: etree._Element,
                      ac: AllowanceCharge | LineAllowanceCharge) -> None:
    """BG-20/21 (document, with VAT) or BG-27/28 (line)."""
    el = x.el(parent, "SpecifiedTradeAllowanceCharge")
    _indicator(x, el, ac.is_charge)
    if ac.percent is not None:
        x.ram(el, "CalculationPercent", plain_number(ac.percent))
    if ac.base_amount is not None:
        x.money(el, "BasisAmount", ac.base_amount)
    x.money(el, "ActualAmount", ac.amount)
    x.ram(el, "ReasonCode", ac.reason_code)
    x.ram(el, "Reason", ac.reason)
    if isinstance(ac, AllowanceCharge):
        tax = x.el(el, "CategoryTradeTax")
        x.ram(tax, "TypeCode", "VAT")
        x.ram(tax, "CategoryCode", ac.vat_category)
        if ac.vat_category != "O" and ac.vat_rate is not None:
            x.ram(tax, "RateApplicablePercent", plain_number(ac.vat_rate))


def _indicator(x: _Writer, parent: etree._Element, value: bool) -> None:
    indicator = x.el(parent, "ChargeIndicator")
    child(indicator, NS_UDT, "Indicator").text = "true" if value else "false"


def _doc_ref(x: _Writer, parent: etree._Element, tag: str, value: str | None) -> None:
    if value:
        x.ram(x.el(parent, tag), "IssuerAssignedID", value)


def _period(x: _Writer, parent: etree._Element, start: date | None, end: date | None) -> None:
    el = x.el(parent, "BillingSpecifiedPeriod")
    if start:
        x.date(x.el(el, "StartDateTime"), start)
    if end:
        x.date(x.el(el, "EndDateTime"), end)


class _Writer:
    """Appends ram children, skipping absent values."""

    def __init__(self, currency: str) -> None:
        self.currency = currency

    def el(self, parent: etree._Element, tag: str) -> etree._Element:
        return child(parent, NS_RAM, tag)

    def ram(self, parent: etree._Element, tag: str, text: str | None, **attrs: str | None) -> None:
        if text is None or not text.strip():
            return
        el = child(parent, NS_RAM, tag)
        el.text = text
        for key, value in attrs.items():
            if value:
                el.set(key, value)

    def money(self, parent: etree._Element, tag: str, value: Decimal, *,
              currency: str | None = None) -> None:
        self.ram(parent, tag, money_text(value, currency or self.currency), currencyID=currency)

    def date(self, parent: etree._Element, value: date) -> None:
        el = child(parent, NS_UDT, "DateTimeString", ("format", "102"))
        el.text = value.strftime("%Y%m%d")

    def qdate(self, parent: etree._Element, value: date, *, udt: bool = False,
              tag: str = "DateString") -> None:
        ns = NS_UDT if udt else NS_QDT
        el = child(parent, ns, tag, ("format", "102"))
        el.text = value.strftime("%Y%m%d")
