"""`Invoice` -> Peppol BIS Billing 3.0 UBL 2.1 XML (Norway's EHF 3, Sweden's public sector).

An invoice type (380, 383, 386, ...) becomes a UBL `Invoice`, a credit note type (381, 396,
...) a UBL `CreditNote` with positive amounts. The renderer only maps: every amount was
computed once by `server.compose.invoice.compute_invoice`, and nothing here adds anything up,
so the XML always agrees with the PDF built from the same `Invoice`.

Element order follows the UBL 2.1 XSD sequences (the XSD rejects any other order, and the
Invoice and CreditNote sequences differ); the mapping of each business term is Peppol BIS
3.0's (e.g. BT-11 is `ProjectReference` in an Invoice but an `AdditionalDocumentReference`
with type 50 in a CreditNote; BT-18 is an `AdditionalDocumentReference` with type 130; BT-14
alone writes `OrderReference/ID` "NA"). Absent values are left out entirely: Peppol forbids
empty elements (PEPPOL-EN16931-R008). Amounts carry `currencyID` and the currency's
decimals; a zero is never written "-0.00". Only a document that asks for a payment
(`Invoice.asks_for_payment`: an invoice with BT-115 > 0) has PaymentMeans and a due date
(an Invoice's DueDate, a CreditNote's PaymentMeans/PaymentDueDate): an invoice with nothing
to pay and a credit note (what it credits is not to be paid to the seller) have neither.
"""

from __future__ import annotations

import base64
from decimal import Decimal

from lxml import etree

from server.channels.einvoice.elements import child
from server.compose.en16931 import (
    AllowanceCharge,
    Attachment,
    Identifier,
    Invoice,
    InvoiceLine,
    LineAllowanceCharge,
    Party,
    PaymentMeans,
    VatBreakdown,
)
from server.compose.model import PostalAddress
from server.compose.money import round_money

CUSTOMIZATION_ID = "urn:cen.eu:en16931:2017#compliant#urn:fdc:peppol.eu:2017:poacc:billing:3.0"
PROFILE_ID = "urn:fdc:peppol.eu:2017:poacc:billing:01:1.0"

NS_INVOICE = "urn:oasis:names:specification:ubl:schema:xsd:Invoice-2"
NS_CREDIT_NOTE = "urn:oasis:names:specification:ubl:schema:xsd:CreditNote-2"
NS_CAC = "urn:oasis:names:specification:ubl:schema:xsd:CommonAggregateComponents-2"
NS_CBC = "urn:oasis:names:specification:ubl:schema:xsd:CommonBasicComponents-2"

MEDIA_TYPE = "application/xml"
INVOICED_OBJECT = "130"  # UNCL1001 code of an AdditionalDocumentReference carrying BT-18
PROJECT = "50"  # ... carrying BT-11 in a CreditNote (which has no ProjectReference)


def render_ubl(invoice: Invoice, pdf: bytes | None = None) -> bytes:
    """The Peppol BIS 3 UBL document for one invoice or credit note, UTF-8 bytes.

    `pdf` is the document's print PDF, embedded where an attachment asks for it
    (`Attachment.rendered_pdf`)."""
    credit = invoice.is_credit_note
    root_ns = NS_CREDIT_NOTE if credit else NS_INVOICE
    root = etree.Element(
        f"{{{root_ns}}}{'CreditNote' if credit else 'Invoice'}",
        nsmap={None: root_ns, "cac": NS_CAC, "cbc": NS_CBC},
    )
    x = _Writer(invoice.currency)

    x.cbc(root, "CustomizationID", CUSTOMIZATION_ID)
    x.cbc(root, "ProfileID", PROFILE_ID)
    x.cbc(root, "ID", invoice.number)
    x.cbc(root, "IssueDate", invoice.issue_date.isoformat())
    if credit:
        x.date(root, "TaxPointDate", invoice.tax_point_date)
        x.cbc(root, "CreditNoteTypeCode", invoice.type_code)
        _note(x, root, invoice)
    else:
        # none when nothing is to be paid (BR-CO-25 wants one only when BT-115 is positive)
        x.date(root, "DueDate", invoice.due_date if invoice.asks_for_payment else None)
        x.cbc(root, "InvoiceTypeCode", invoice.type_code)
        _note(x, root, invoice)
        x.date(root, "TaxPointDate", invoice.tax_point_date)
    x.cbc(root, "DocumentCurrencyCode", invoice.currency)
    x.cbc(root, "TaxCurrencyCode", invoice.tax_currency)
    x.cbc(root, "AccountingCost", invoice.accounting_reference)
    x.cbc(root, "BuyerReference", invoice.buyer_reference)
    _period(x, root, invoice.period_start, invoice.period_end, invoice.tax_point_code)
    if invoice.order_reference or invoice.sales_order_reference:
        order = x.cac(root, "OrderReference")
        x.cbc(order, "ID", invoice.order_reference or "NA")  # ID is mandatory in UBL
        x.cbc(order, "SalesOrderID", invoice.sales_order_reference)
    for preceding in invoice.preceding_invoices:
        ref = x.cac(x.cac(root, "BillingReference"), "InvoiceDocumentReference")
        x.cbc(ref, "ID", preceding.number)
        x.date(ref, "IssueDate", preceding.issue_date)
    _id_ref(x, root, "DespatchDocumentReference", invoice.despatch_advice_reference)
    _id_ref(x, root, "ReceiptDocumentReference", invoice.receiving_advice_reference)
    if not credit:
        _id_ref(x, root, "OriginatorDocumentReference", invoice.tender_reference)
    _id_ref(x, root, "ContractDocumentReference", invoice.contract_reference)
    _additional_references(x, root, invoice, pdf)
    if credit:
        _id_ref(x, root, "OriginatorDocumentReference", invoice.tender_reference)
    elif invoice.project_reference:
        _id_ref(x, root, "ProjectReference", invoice.project_reference)

    _party(x, x.cac(root, "AccountingSupplierParty"), invoice.seller, seller=True)
    _party(x, x.cac(root, "AccountingCustomerParty"), invoice.buyer, seller=False)
    _payee(x, root, invoice)
    _tax_representative(x, root, invoice)
    _delivery(x, root, invoice)

    # BG-16 (optional) asks for a payment: an invoice with nothing to pay and a credit note
    # have none (a CreditNote's PaymentMeans/PaymentDueDate would ask to pay what it credits)
    for means in invoice.payment_means if invoice.asks_for_payment else ():
        _payment_means(x, root, means)
    if invoice.payment_terms:
        x.cbc(x.cac(root, "PaymentTerms"), "Note", invoice.payment_terms)
    for ac in invoice.allowances_charges:
        _allowance_charge(x, root, ac, ac.vat_category, ac.vat_rate)

    tax_total = x.cac(root, "TaxTotal")
    x.money(tax_total, "TaxAmount", invoice.totals.tax)
    for entry in invoice.vat_breakdown:
        _tax_subtotal(x, tax_total, entry)
    t = invoice.totals
    if invoice.tax_currency and t.tax_in_accounting_currency is not None:
        # BT-111: the VAT total in the VAT accounting currency, a TaxTotal of its own (R054)
        x.money(x.cac(root, "TaxTotal"), "TaxAmount", t.tax_in_accounting_currency,
                currency=invoice.tax_currency)

    monetary = x.cac(root, "LegalMonetaryTotal")
    x.money(monetary, "LineExtensionAmount", t.line_extension)
    x.money(monetary, "TaxExclusiveAmount", t.tax_exclusive)
    x.money(monetary, "TaxInclusiveAmount", t.tax_inclusive)
    if any(not ac.is_charge for ac in invoice.allowances_charges):
        x.money(monetary, "AllowanceTotalAmount", t.allowances)
    if any(ac.is_charge for ac in invoice.allowances_charges):
        x.money(monetary, "ChargeTotalAmount", t.charges)
    if t.prepaid:
        x.money(monetary, "PrepaidAmount", t.prepaid)
    if t.rounding:
        x.money(monetary, "PayableRoundingAmount", t.rounding)
    x.money(monetary, "PayableAmount", t.payable)

    for line in invoice.lines:
        _line(x, root, line, credit)

    return etree.tostring(root, xml_declaration=True, encoding="UTF-8", pretty_print=True)


def _note(x: _Writer, root: etree._Element, invoice: Invoice) -> None:
    """BT-22, with its subject code BT-21 written the Peppol way: `#CODE#text`."""
    if invoice.note:
        subject = f"#{invoice.note_subject}#" if invoice.note_subject else ""
        x.cbc(root, "Note", subject + invoice.note)


def _period(x: _Writer, parent: etree._Element, start, end, code: str | None = None) -> None:
    if start or end or code:
        period = x.cac(parent, "InvoicePeriod")
        x.date(period, "StartDate", start)
        x.date(period, "EndDate", end)
        x.cbc(period, "DescriptionCode", code)  # BT-8 VAT point date code


def _id_ref(x: _Writer, root: etree._Element, tag: str, value: str | None) -> None:
    if value:
        x.cbc(x.cac(root, tag), "ID", value)


def _additional_references(x: _Writer, root: etree._Element, invoice: Invoice,
                           pdf: bytes | None) -> None:
    """BT-18 (type 130), BT-11 in a credit note (type 50) and the BG-24 attachments."""
    if invoice.invoiced_object:
        ref = x.cac(root, "AdditionalDocumentReference")
        x.cbc(ref, "ID", invoice.invoiced_object.value, schemeID=invoice.invoiced_object.scheme)
        x.cbc(ref, "DocumentTypeCode", INVOICED_OBJECT)
    if invoice.is_credit_note and invoice.project_reference:
        ref = x.cac(root, "AdditionalDocumentReference")
        x.cbc(ref, "ID", invoice.project_reference)
        x.cbc(ref, "DocumentTypeCode", PROJECT)
    for attachment in invoice.attachments:
        _attachment(x, root, attachment, pdf)


def _attachment(x: _Writer, root: etree._Element, att: Attachment, pdf: bytes | None) -> None:
    ref = x.cac(root, "AdditionalDocumentReference")
    x.cbc(ref, "ID", att.id)
    x.cbc(ref, "DocumentDescription", att.description)
    content = pdf if att.rendered_pdf else att.content
    if content is None and not att.uri:
        return
    attachment = x.cac(ref, "Attachment")
    if content is not None:
        x.cbc(attachment, "EmbeddedDocumentBinaryObject",
              base64.b64encode(content).decode("ascii"), mimeCode=att.mime_code,
              filename=att.filename)
    if att.uri:
        x.cbc(x.cac(attachment, "ExternalReference"), "URI", att.uri)


def _address(x: _Writer, parent: etree._Element, tag: str, address: PostalAddress) -> None:
    el = x.cac(parent, tag)
    lines = list(address.lines)
    x.cbc(el, "StreetName", lines[0] if lines else None)
    x.cbc(el, "AdditionalStreetName", lines[1] if len(lines) > 1 else None)
    x.cbc(el, "CityName", address.city or None)
    x.cbc(el, "PostalZone", address.postal_code or None)
    x.cbc(el, "CountrySubentity", address.subdivision)
    if len(lines) > 2:
        x.cbc(x.cac(el, "AddressLine"), "Line", ", ".join(lines[2:]))
    x.cbc(x.cac(el, "Country"), "IdentificationCode", address.country)


def _party(x: _Writer, role: etree._Element, party: Party, *, seller: bool) -> None:
    """BG-4 seller / BG-7 buyer."""
    el = x.cac(role, "Party")
    if party.endpoint_id:
        x.cbc(el, "EndpointID", party.endpoint_id, schemeID=party.endpoint_scheme)
    for ident in party.identifiers:  # BT-29 / BT-46 (BT-90 creditor id: scheme SEPA)
        x.cbc(x.cac(el, "PartyIdentification"), "ID", ident.value, schemeID=ident.scheme)
    if party.trading_name:
        x.cbc(x.cac(el, "PartyName"), "Name", party.trading_name)
    if party.address:
        _address(x, el, "PostalAddress", party.address)
    if party.vat_id:
        scheme = x.cac(el, "PartyTaxScheme")
        x.cbc(scheme, "CompanyID", party.vat_id)
        x.cbc(x.cac(scheme, "TaxScheme"), "ID", "VAT")
    if seller and party.tax_registration_id:  # BT-32, e.g. Foretaksregisteret (NO-R-002)
        scheme = x.cac(el, "PartyTaxScheme")
        x.cbc(scheme, "CompanyID", party.tax_registration_id)
        x.cbc(x.cac(scheme, "TaxScheme"), "ID", "TAX")
    legal = x.cac(el, "PartyLegalEntity")
    x.cbc(legal, "RegistrationName", party.name)
    if party.legal_id:
        x.cbc(legal, "CompanyID", party.legal_id, schemeID=party.legal_id_scheme)
    x.cbc(legal, "CompanyLegalForm", party.legal_info if seller else None)
    if party.contact_name or party.contact_phone or party.contact_email:
        contact = x.cac(el, "Contact")
        x.cbc(contact, "Name", party.contact_name)
        x.cbc(contact, "Telephone", party.contact_phone)
        x.cbc(contact, "ElectronicMail", party.contact_email)


def _payee(x: _Writer, root: etree._Element, invoice: Invoice) -> None:
    payee = invoice.payee
    if payee is None:
        return
    el = x.cac(root, "PayeeParty")
    if payee.identifier:
        x.cbc(x.cac(el, "PartyIdentification"), "ID", payee.identifier.value,
              schemeID=payee.identifier.scheme)
    x.cbc(x.cac(el, "PartyName"), "Name", payee.name)
    if payee.legal_id:
        x.cbc(x.cac(el, "PartyLegalEntity"), "CompanyID", payee.legal_id.value,
              schemeID=payee.legal_id.scheme)


def _tax_representative(x: _Writer, root: etree._Element, invoice: Invoice) -> None:
    rep = invoice.tax_representative
    if rep is None:
        return
    el = x.cac(root, "TaxRepresentativeParty")
    x.cbc(x.cac(el, "PartyName"), "Name", rep.name)
    _address(x, el, "PostalAddress", rep.address)
    scheme = x.cac(el, "PartyTaxScheme")
    x.cbc(scheme, "CompanyID", rep.vat_id)
    x.cbc(x.cac(scheme, "TaxScheme"), "ID", "VAT")


def _delivery(x: _Writer, root: etree._Element, invoice: Invoice) -> None:
    d = invoice.delivery
    if d is None:
        return
    el = x.cac(root, "Delivery")
    x.date(el, "ActualDeliveryDate", d.date)
    if d.location or d.address:
        location = x.cac(el, "DeliveryLocation")
        if d.location:
            x.cbc(location, "ID", d.location.value, schemeID=d.location.scheme)
        if d.address:
            _address(x, location, "Address", d.address)
    if d.party_name:
        x.cbc(x.cac(x.cac(el, "DeliveryParty"), "PartyName"), "Name", d.party_name)


def _payment_means(x: _Writer, root: etree._Element, payment: PaymentMeans) -> None:
    """BG-16 with its BG-17 credit transfer, BG-18 card or BG-19 direct debit, of an
    Invoice (a CreditNote has none, so never its PaymentDueDate: `Invoice.asks_for_payment`)."""
    el = x.cac(root, "PaymentMeans")
    x.cbc(el, "PaymentMeansCode", payment.code, name=payment.text)
    x.cbc(el, "PaymentID", payment.payment_id)
    if payment.card_pan:
        card = x.cac(el, "CardAccount")
        x.cbc(card, "PrimaryAccountNumberID", payment.card_pan)
        x.cbc(card, "NetworkID", payment.card_network or "NA")  # mandatory in UBL
        x.cbc(card, "HolderName", payment.card_holder)
    if payment.account:
        account = x.cac(el, "PayeeFinancialAccount")
        x.cbc(account, "ID", payment.account.replace(" ", ""))
        x.cbc(account, "Name", payment.account_name)
        if payment.bic:
            x.cbc(x.cac(account, "FinancialInstitutionBranch"), "ID", payment.bic)
    if payment.mandate_id:
        mandate = x.cac(el, "PaymentMandate")
        x.cbc(mandate, "ID", payment.mandate_id)
        if payment.debited_account:
            x.cbc(x.cac(mandate, "PayerFinancialAccount"), "ID", payment.debited_account)


def _allowance_charge(x: _Writer, parent: etree._Element,
                      ac: AllowanceCharge | LineAllowanceCharge,
                      category: str | None, rate: Decimal | None) -> None:
    """BG-20/21 (with its VAT category) or BG-27/28 (category None: the line's)."""
    el = x.cac(parent, "AllowanceCharge")
    x.cbc(el, "ChargeIndicator", "true" if ac.is_charge else "false")
    x.cbc(el, "AllowanceChargeReasonCode", ac.reason_code)
    x.cbc(el, "AllowanceChargeReason", ac.reason)
    if ac.percent is not None:
        x.cbc(el, "MultiplierFactorNumeric", plain_number(ac.percent))
    x.money(el, "Amount", ac.amount)
    if ac.base_amount is not None:
        x.money(el, "BaseAmount", ac.base_amount)
    if category is not None:
        _tax_category(x, el, "TaxCategory", category, rate)


def _tax_subtotal(x: _Writer, tax_total: etree._Element, entry: VatBreakdown) -> None:
    """BG-23 VAT breakdown entry."""
    sub = x.cac(tax_total, "TaxSubtotal")
    x.money(sub, "TaxableAmount", entry.taxable_amount)
    x.money(sub, "TaxAmount", entry.tax_amount)
    _tax_category(x, sub, "TaxCategory", entry.category, entry.rate,
                  reason_code=entry.exemption_reason_code, reason=entry.exemption_reason)


def _tax_category(
    x: _Writer,
    parent: etree._Element,
    tag: str,
    category: str,
    rate: Decimal | None,
    *,
    reason_code: str | None = None,
    reason: str | None = None,
) -> None:
    el = x.cac(parent, tag)
    x.cbc(el, "ID", category)
    if category != "O" and rate is not None:  # BR-O-05: no rate for "not subject to VAT"
        x.cbc(el, "Percent", plain_number(rate))
    x.cbc(el, "TaxExemptionReasonCode", reason_code)
    x.cbc(el, "TaxExemptionReason", reason)
    x.cbc(x.cac(el, "TaxScheme"), "ID", "VAT")


def _line(x: _Writer, root: etree._Element, line: InvoiceLine, credit: bool) -> None:
    """BG-25 invoice line (UBL InvoiceLine / CreditNoteLine)."""
    el = x.cac(root, "CreditNoteLine" if credit else "InvoiceLine")
    x.cbc(el, "ID", line.id)
    x.cbc(el, "Note", line.note)
    x.cbc(el, "CreditedQuantity" if credit else "InvoicedQuantity", plain_number(line.quantity),
          unitCode=line.unit_code)
    x.money(el, "LineExtensionAmount", line.net_amount)
    x.cbc(el, "AccountingCost", line.accounting_reference)
    _period(x, el, line.period_start, line.period_end)
    if line.order_line_reference:
        x.cbc(x.cac(el, "OrderLineReference"), "LineID", line.order_line_reference)
    if line.object_id:
        ref = x.cac(el, "DocumentReference")
        x.cbc(ref, "ID", line.object_id.value, schemeID=line.object_id.scheme)
        x.cbc(ref, "DocumentTypeCode", INVOICED_OBJECT)
    for ac in line.allowances_charges:
        _allowance_charge(x, el, ac, None, None)
    item = x.cac(el, "Item")
    x.cbc(item, "Description", line.description)
    x.cbc(item, "Name", line.name)
    _item_id(x, item, "BuyersItemIdentification", line.buyer_item_id)
    _item_id(x, item, "SellersItemIdentification", line.seller_item_id)
    if line.standard_item_id:
        x.cbc(x.cac(item, "StandardItemIdentification"), "ID", line.standard_item_id.value,
              schemeID=line.standard_item_id.scheme)
    if line.origin_country:
        x.cbc(x.cac(item, "OriginCountry"), "IdentificationCode", line.origin_country)
    for cls in line.classifications:
        _classification(x, item, cls)
    _tax_category(x, item, "ClassifiedTaxCategory", line.vat_category, line.vat_rate)
    for attr in line.attributes:
        prop = x.cac(item, "AdditionalItemProperty")
        x.cbc(prop, "Name", attr.name)
        x.cbc(prop, "Value", attr.value)
    price = x.cac(el, "Price")
    x.cbc(price, "PriceAmount", _price(line.unit_price), currencyID=x.currency)
    if line.base_quantity is not None:
        x.cbc(price, "BaseQuantity", plain_number(line.base_quantity), unitCode=line.unit_code)
    if line.gross_price is not None:  # BT-147 / BT-148: a price-level allowance
        discount = x.cac(price, "AllowanceCharge")
        x.cbc(discount, "ChargeIndicator", "false")
        x.cbc(discount, "Amount", _price(line.price_discount or Decimal(0)),
              currencyID=x.currency)
        x.cbc(discount, "BaseAmount", _price(line.gross_price), currencyID=x.currency)


def _item_id(x: _Writer, item: etree._Element, tag: str, value: str | None) -> None:
    if value:
        x.cbc(x.cac(item, tag), "ID", value)


def _classification(x: _Writer, item: etree._Element, cls: Identifier) -> None:
    x.cbc(x.cac(item, "CommodityClassification"), "ItemClassificationCode", cls.value,
          listID=cls.scheme, listVersionID=cls.version)


def plain_number(value: Decimal) -> str:
    """A quantity or percentage, plain notation, no needless trailing zeros, never '-0'."""
    if value.is_zero():
        return "0"
    text = f"{value:f}"
    if "." in text:
        text = text.rstrip("0").rstrip(".")
    return text


def _price(value: Decimal) -> str:
    """A unit price: at least 2 decimals, more when the price has them (e.g. 0.3333)."""
    text = plain_number(value)
    whole, _, frac = text.partition(".")
    return f"{whole}.{frac.ljust(2, '0')}"


class _Writer:
    """Appends cac/cbc children, skipping absent values (Peppol forbids empty elements)."""

    def __init__(self, currency: str) -> None:
        self.currency = currency

    def cac(self, parent: etree._Element, tag: str) -> etree._Element:
        return child(parent, NS_CAC, tag)

    def cbc(
        self, parent: etree._Element, tag: str, text: str | None, **attrs: str | None
    ) -> etree._Element | None:
        if text is None or not text.strip():
            return None
        el = child(parent, NS_CBC, tag)
        el.text = text
        for key, value in attrs.items():
            if value:
                el.set(key, value)
        return el

    def date(self, parent: etree._Element, tag: str, value) -> None:
        if value is not None:
            self.cbc(parent, tag, value.isoformat())

    def money(self, parent: etree._Element, tag: str, value: Decimal,
              currency: str | None = None) -> None:
        self.cbc(parent, tag, money_text(value, currency or self.currency),
                 currencyID=currency or self.currency)


def money_text(value: Decimal, currency: str) -> str:
    """An amount with the currency's decimals, and a zero always '0.00', never '-0.00'."""
    return f"{round_money(value, currency):f}"
