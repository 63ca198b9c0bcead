"""`Invoice` -> Peppol BIS Billing 3.0 UBL 2.1 XML (Norway's EHF 3, Sweden's public sector).

A commercial invoice (380) becomes a UBL `Invoice`, a credit note (381) a UBL `CreditNote`
with positive amounts. The renderer only maps: every amount was computed once by
`server.compose.invoice.compute_invoice`, and nothing here adds anything up, so the XML
always agrees with the PDF built from the same `Invoice`.

Element order follows the UBL 2.1 XSD sequences (the XSD rejects any other order); the
business rules are EN 16931's (CEN schematron) plus Peppol's (see `peppol.check_peppol`).
Optional values that are absent are left out entirely: Peppol forbids empty elements
(PEPPOL-EN16931-R008). Amounts carry `currencyID` and exactly 2 decimals.
"""

from __future__ import annotations

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

CUSTOMIZATION_ID = "urn:cen.eu:en16931:2017#compliant#urn:fdc:peppol.eu:2017:poacc:billing:3.0"
PROFILE_ID = "urn:fdc:peppol.eu:2017:poacc:billing:01:1.0"

NS_INVOICE = "urn:oasis:names:specification:ubl:schema:xsd:Invoice-2"
NS_CREDIT_NOTE = "urn:oasis:names:specification:ubl:schema:xsd:CreditNote-2"
NS_CAC = "urn:oasis:names:specification:ubl:schema:xsd:CommonAggregateComponents-2"
NS_CBC = "urn:oasis:names:specification:ubl:schema:xsd:CommonBasicComponents-2"

MEDIA_TYPE = "application/xml"

# NO-R-002: Norwegian limited companies (AS, ASA, branches of foreign companies) must show
# "Foretaksregisteret" on their invoices; in UBL it is a PartyTaxScheme with scheme "TAX".
NO_ENTERPRISE_REGISTER = "Foretaksregisteret"


def render_ubl(invoice: Invoice) -> bytes:
    """The Peppol BIS 3 UBL document for one invoice or credit note, UTF-8 bytes."""
    credit = invoice.type_code == "381"
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
    if not credit and invoice.due_date:
        x.cbc(root, "DueDate", invoice.due_date.isoformat())  # CreditNote: in PaymentMeans
    x.cbc(root, "CreditNoteTypeCode" if credit else "InvoiceTypeCode", invoice.type_code)
    x.cbc(root, "Note", invoice.note)
    x.cbc(root, "DocumentCurrencyCode", invoice.currency)
    x.cbc(root, "BuyerReference", invoice.buyer_reference)
    if invoice.period_start or invoice.period_end:
        period = x.cac(root, "InvoicePeriod")
        x.cbc(period, "StartDate", invoice.period_start and invoice.period_start.isoformat())
        x.cbc(period, "EndDate", invoice.period_end and invoice.period_end.isoformat())
    if invoice.order_reference:
        x.cbc(x.cac(root, "OrderReference"), "ID", invoice.order_reference)
    if invoice.preceding_invoice:
        ref = x.cac(x.cac(root, "BillingReference"), "InvoiceDocumentReference")
        x.cbc(ref, "ID", invoice.preceding_invoice)

    _party(x, x.cac(root, "AccountingSupplierParty"), invoice.seller, seller=True)
    _party(x, x.cac(root, "AccountingCustomerParty"), invoice.buyer, seller=False)

    if invoice.payment:
        _payment_means(x, root, invoice, invoice.payment, credit)
    if invoice.payment_terms:
        x.cbc(x.cac(root, "PaymentTerms"), "Note", invoice.payment_terms)
    for ac in invoice.allowances_charges:
        _allowance_charge(x, root, ac)

    tax_total = x.cac(root, "TaxTotal")
    x.money(tax_total, "TaxAmount", invoice.totals.tax)
    for entry in invoice.vat_breakdown:
        _tax_subtotal(x, tax_total, entry)

    t = invoice.totals
    monetary = x.cac(root, "LegalMonetaryTotal")
    x.money(monetary, "LineExtensionAmount", t.line_extension)
    x.money(monetary, "TaxExclusiveAmount", t.tax_exclusive)
    x.money(monetary, "TaxInclusiveAmount", t.tax_inclusive)
    if invoice.allowances_charges:
        x.money(monetary, "AllowanceTotalAmount", t.allowances)
        x.money(monetary, "ChargeTotalAmount", t.charges)
    if t.prepaid:
        x.money(monetary, "PrepaidAmount", t.prepaid)
    if t.rounding:
        x.money(monetary, "PayableRoundingAmount", t.rounding)
    x.money(monetary, "PayableAmount", t.payable)

    for line in invoice.lines:
        _line(x, root, line, credit)

    return etree.tostring(root, xml_declaration=True, encoding="UTF-8", pretty_print=True)


def _party(x: _Writer, role: etree._Element, party: Party, *, seller: bool) -> None:
    """BG-4 seller / BG-7 buyer: electronic address, address, VAT and legal registration."""
    el = x.cac(role, "Party")
    if party.endpoint_id:
        x.cbc(el, "EndpointID", party.endpoint_id, schemeID=party.endpoint_scheme)
    if party.address:
        address = x.cac(el, "PostalAddress")
        lines = list(party.address.lines)
        x.cbc(address, "StreetName", lines[0] if lines else None)
        x.cbc(address, "AdditionalStreetName", lines[1] if len(lines) > 1 else None)
        x.cbc(address, "CityName", party.address.city or None)
        x.cbc(address, "PostalZone", party.address.postal_code or None)
        if len(lines) > 2:
            x.cbc(x.cac(address, "AddressLine"), "Line", ", ".join(lines[2:]))
        x.cbc(x.cac(address, "Country"), "IdentificationCode", party.address.country)
    if party.vat_id:
        scheme = x.cac(el, "PartyTaxScheme")
        x.cbc(scheme, "CompanyID", party.vat_id)
        x.cbc(x.cac(scheme, "TaxScheme"), "ID", "VAT")
    if seller and _norwegian_register(party):
        scheme = x.cac(el, "PartyTaxScheme")
        x.cbc(scheme, "CompanyID", NO_ENTERPRISE_REGISTER)
        x.cbc(x.cac(scheme, "TaxScheme"), "ID", "TAX")
    legal = x.cac(el, "PartyLegalEntity")
    x.cbc(legal, "RegistrationName", party.name)
    if party.legal_id:
        x.cbc(legal, "CompanyID", party.legal_id, schemeID=party.legal_id_scheme)
    if party.contact_name or party.contact_phone or party.contact_email:
        contact = x.cac(el, "Contact")
        x.cbc(contact, "Name", party.contact_name)
        x.cbc(contact, "Telephone", party.contact_phone)
        x.cbc(contact, "ElectronicMail", party.contact_email)


def _norwegian_register(party: Party) -> bool:
    """A Norwegian seller with an organisation number (ICD 0192): show Foretaksregisteret."""
    return bool(
        party.legal_id
        and party.legal_id_scheme == "0192"
        and party.address is not None
        and party.address.country == "NO"
    )


def _payment_means(
    x: _Writer, root: etree._Element, invoice: Invoice, payment: PaymentMeans, credit: bool
) -> None:
    """BG-16: means code, BT-9 for credit notes, BT-83 remittance reference, BG-17 account."""
    el = x.cac(root, "PaymentMeans")
    x.cbc(el, "PaymentMeansCode", payment.code)
    if credit and invoice.due_date:
        x.cbc(el, "PaymentDueDate", invoice.due_date.isoformat())
    x.cbc(el, "PaymentID", payment.reference.value if payment.reference else None)
    if payment.account:
        account = x.cac(el, "PayeeFinancialAccount")
        x.cbc(account, "ID", payment.account.replace(" ", ""))
        x.cbc(account, "Name", payment.account_name)
        if payment.bic:
            x.cbc(x.cac(account, "FinancialInstitutionBranch"), "ID", payment.bic)


def _allowance_charge(x: _Writer, root: etree._Element, ac: AllowanceCharge) -> None:
    """BG-20 / BG-21 document-level allowance or charge with its VAT category."""
    el = x.cac(root, "AllowanceCharge")
    x.cbc(el, "ChargeIndicator", "true" if ac.is_charge else "false")
    x.cbc(el, "AllowanceChargeReasonCode", ac.reason_code)
    x.cbc(el, "AllowanceChargeReason", ac.reason or None)
    x.money(el, "Amount", ac.amount)
    _tax_category(x, el, "TaxCategory", ac.vat_category, ac.vat_rate)


def _tax_subtotal(x: _Writer, tax_total: etree._Element, entry: VatBreakdown) -> None:
    """BG-23 VAT breakdown entry."""
    sub = x.cac(tax_total, "TaxSubtotal")
    x.money(sub, "TaxableAmount", entry.taxable_amount)
    x.money(sub, "TaxAmount", entry.tax_amount)
    _tax_category(
        x,
        sub,
        "TaxCategory",
        entry.category,
        entry.rate,
        reason_code=entry.exemption_reason_code,
        reason=entry.exemption_reason,
    )


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
        x.cbc(el, "Percent", _number(rate))
    x.cbc(el, "TaxExemptionReasonCode", reason_code)
    x.cbc(el, "TaxExemptionReason", reason)
    x.cbc(x.cac(el, "TaxScheme"), "ID", "VAT")


def _line(x: _Writer, root: etree._Element, line: InvoiceLine, credit: bool) -> None:
    """BG-25 invoice line (UBL InvoiceLine / CreditNoteLine)."""
    el = x.cac(root, "CreditNoteLine" if credit else "InvoiceLine")
    x.cbc(el, "ID", line.id)
    x.cbc(
        el,
        "CreditedQuantity" if credit else "InvoicedQuantity",
        _number(line.quantity),
        unitCode=line.unit_code,
    )
    x.money(el, "LineExtensionAmount", line.net_amount)
    if line.period_start or line.period_end:
        period = x.cac(el, "InvoicePeriod")
        x.cbc(period, "StartDate", line.period_start and line.period_start.isoformat())
        x.cbc(period, "EndDate", line.period_end and line.period_end.isoformat())
    item = x.cac(el, "Item")
    x.cbc(item, "Description", line.description)
    x.cbc(item, "Name", line.name)
    _tax_category(x, item, "ClassifiedTaxCategory", line.vat_category, line.vat_rate)
    price = x.cac(el, "Price")
    x.cbc(price, "PriceAmount", _price(line.unit_price), currencyID=x.currency)


def _number(value: Decimal) -> str:
    """A quantity or percentage, plain notation, no needless trailing zeros."""
    text = f"{value:f}"
    if "." in text:
        text = text.rstrip("0").rstrip(".")
    return text


def _price(value: Decimal) -> str:
    """A unit price: at least 2 decimals, more when the price has them (e.g. 0.3333)."""
    text = _number(value)
    whole, _, frac = text.partition(".")
    return f"{whole}.{frac.ljust(2, '0')}"


class _Writer:
    """Appends cac/cbc children, skipping absent values (Peppol forbids empty elements)."""

    def __init__(self, currency: str) -> None:
        self.currency = currency

    def cac(self, parent: etree._Element, tag: str) -> etree._Element:
        return etree.SubElement(parent, f"{{{NS_CAC}}}{tag}")

    def cbc(
        self, parent: etree._Element, tag: str, text: str | None, **attrs: str | None
    ) -> etree._Element | None:
        if text is None or text == "":
            return None
        el = etree.SubElement(parent, f"{{{NS_CBC}}}{tag}")
        el.text = text
        for key, value in attrs.items():
            if value:
                el.set(key, value)
        return el

    def money(self, parent: etree._Element, tag: str, value: Decimal) -> None:
        self.cbc(parent, tag, f"{value:.2f}", currencyID=self.currency)
