"""`Invoice` -> Finvoice 3.0 XML, the Finnish banks' e-invoice (e-lasku) for consumers.

Finnish consumers receive e-invoices in their online bank; the banks exchange them as
Finvoice (Finanssiala's format, version 3.0). This renderer maps the computed EN 16931
`Invoice` onto Finvoice's elements and its conventions, which differ from UBL/CII:

* amounts use a decimal comma ("1234,50") and carry `AmountCurrencyIdentifier`;
* dates are `CCYYMMDD` with a `Format` attribute;
* a credit note is `INV02` ("HYVITYSLASKU") with negative quantities and amounts (as
  Finvoice receivers expect), while an invoice is `INV01` ("LASKU");
* the payment block (`EpiDetails`, the SEPA credit transfer the bank pre-fills) is
  mandatory: it needs the payee account and the due date, and takes the payment reference
  only in the Finnish national (`SPY`) or RF creditor reference (`ISO`) form. A document
  that asks for no payment (not `Invoice.asks_for_payment`: a credit note, or an invoice
  with nothing to pay, BT-115 <= 0, e.g. a card statement with a credit balance)
  instructs a payment of 0,00 on its issue date and leaves out the payment reference, the
  due date (`InvoiceDueDate`) and the card and direct-debit blocks: a bank must not
  propose a payment of it;
* a name or free text longer than its element never ends inside a word: where the XSD lets
  the element repeat (`...OrganisationName`, `InvoiceFreeText`, `RowFreeText`, two
  `PaymentTermsFreeText`, three `VatFreeText`, three `StreetName`) it is wrapped at spaces
  onto the repeats, else it ends at the last space before the limit (`TownName`,
  `EpiNameAddressDetails`, contact names, `ArticleName`, reasons;
  `server.compose.text_limits`). Identifiers (references, accounting codes) are cut.

Routing (`MessageTransmissionDetails`: the e-invoice addresses and intermediator BICs of
sender and receiver) is left out: the XSD makes it optional and it belongs to the delivery
step's envelope, not to the document. Row-level VAT amounts and VAT-inclusive row totals are
not written either: EN 16931 computes VAT per category, never per line, and Kanal does not
invent numbers a renderer would have to compute.
"""

from __future__ import annotations

import textwrap
from datetime import date
from decimal import Decimal

from lxml import etree

from server.compose.en16931 import Invoice, InvoiceLine, PaymentMeans
from server.compose.model import PostalAddress
from server.compose.money import round_money
from server.compose.text_limits import cut_at_space, wrap_at_spaces
from server.compose.validation.finvoice import check_finvoice
from server.errors import FieldViolation, InvalidInput

VERSION = "3.0"
MEDIA_TYPE = "application/xml"
UNIT_PRICE_DECIMALS = Decimal("0.00001")  # Finvoice unit prices carry at most 5 decimals


def render_finvoice(invoice: Invoice, *, field_prefix: str = "$") -> bytes:
    """The Finvoice 3.0 document for one invoice or credit note, UTF-8 bytes.

    Raises `InvalidInput` when the invoice lacks what Finvoice makes mandatory (payee
    account; a due date for an invoice with something to pay) or exceeds its field limits
    (invoice number of 20 characters): `server.compose.validation.check_finvoice`, which the
    composer ran already.
    """
    problems = check_finvoice(invoice)
    if problems:
        raise InvalidInput("invoice cannot be written as Finvoice",
                           [FieldViolation(f"{field_prefix}.{f.path}", f"[{f.rule}] {f.text}")
                            for f in problems])
    credit = invoice.is_credit_note
    sign = Decimal(-1) if credit else Decimal(1)
    cur = invoice.currency
    seller, buyer = invoice.seller, invoice.buyer
    payment = invoice.payment
    assert payment is not None and payment.account  # check_finvoice
    # The EPI payment date: the due date; a credit note or an invoice with nothing to pay
    # asks for no payment: its issue date, and no due date anywhere.
    no_payment = not invoice.asks_for_payment
    due_date = None if no_payment else invoice.due_date
    payment_date = due_date or invoice.issue_date

    root = etree.Element("Finvoice", Version=VERSION)

    party = _sub(root, "SellerPartyDetails")
    _text(party, "SellerPartyIdentifier", seller.legal_id)
    for name in organisation_names(seller.name):
        _text(party, "SellerOrganisationName", name)
    _text(party, "SellerOrganisationTaxCode", seller.vat_id)
    if seller.address:
        _address(party, "Seller", seller.address)
    if seller.contact_name:
        _text(root, "SellerContactPersonName", cut_at_space(seller.contact_name, 70))
    if seller.contact_phone or seller.contact_email:
        comm = _sub(root, "SellerCommunicationDetails")
        _text(comm, "SellerPhoneNumberIdentifier", seller.contact_phone)
        _text(comm, "SellerEmailaddressIdentifier", seller.contact_email)
    if payment.bic and _is_bic(payment.bic):  # the XSD wants account and BIC together here
        account = _sub(_sub(root, "SellerInformationDetails"), "SellerAccountDetails")
        _text(
            account,
            "SellerAccountID",
            _compact(payment.account),
            IdentificationSchemeName=_account_scheme(payment.account),
        )
        _text(account, "SellerBic", payment.bic, IdentificationSchemeName="BIC")

    party = _sub(root, "BuyerPartyDetails")
    _text(party, "BuyerPartyIdentifier", buyer.legal_id)
    for name in organisation_names(buyer.name):
        _text(party, "BuyerOrganisationName", name)
    _text(party, "BuyerOrganisationTaxCode", buyer.vat_id)
    if buyer.address:
        _address(party, "Buyer", buyer.address)
    if buyer.contact_name:
        _text(root, "BuyerContactPersonName", cut_at_space(buyer.contact_name, 70))
    if buyer.contact_phone or buyer.contact_email:
        comm = _sub(root, "BuyerCommunicationDetails")
        _text(comm, "BuyerPhoneNumberIdentifier", buyer.contact_phone)
        _text(comm, "BuyerEmailaddressIdentifier", buyer.contact_email)
    if invoice.delivery is not None and invoice.delivery.date:
        _date(_sub(root, "DeliveryDetails"), "DeliveryDate", invoice.delivery.date)

    t = invoice.totals
    details = _sub(root, "InvoiceDetails")
    _text(details, "InvoiceTypeCode", "INV02" if credit else "INV01")
    _text(details, "InvoiceTypeCodeUN", invoice.type_code)
    _text(details, "InvoiceTypeText", "HYVITYSLASKU" if credit else "LASKU")
    _text(details, "OriginCode", "Original")
    _text(details, "InvoiceNumber", invoice.number)
    _date(details, "InvoiceDate", invoice.issue_date)
    if invoice.preceding_invoices:
        first = invoice.preceding_invoices[0]
        _text(details, "OriginalInvoiceNumber", first.number[:20])
        if first.issue_date:
            _date(details, "OriginalInvoiceDate", first.issue_date)
    if invoice.period_start:
        _date(details, "InvoicingPeriodStartDate", invoice.period_start)
    if invoice.period_end:
        _date(details, "InvoicingPeriodEndDate", invoice.period_end)
    _text(details, "SellerReferenceIdentifier", _cut(invoice.sales_order_reference, 70))
    _text(details, "OrderIdentifier", _cut(invoice.order_reference, 70))
    _text(details, "AgreementIdentifier", _cut(invoice.contract_reference, 70))
    _text(details, "BuyerReferenceIdentifier", _cut(invoice.buyer_reference, 70))
    _text(details, "ProjectReferenceIdentifier", _cut(invoice.project_reference, 70))
    _amount(details, "RowsTotalVatExcludedAmount", sign * t.line_extension, cur)
    if invoice.allowances_charges:
        _amount(details, "DiscountsTotalVatExcludedAmount", sign * t.allowances, cur)
        _amount(details, "ChargesTotalVatExcludedAmount", sign * t.charges, cur)
    _amount(details, "InvoiceTotalVatExcludedAmount", sign * t.tax_exclusive, cur)
    _amount(details, "InvoiceTotalVatAmount", sign * t.tax, cur)
    _amount(details, "InvoiceTotalVatIncludedAmount", sign * t.tax_inclusive, cur)
    if t.rounding:
        _amount(details, "InvoiceTotalRoundoffAmount", sign * t.rounding, cur)
    if t.prepaid:
        _amount(details, "InvoicePaidAmount", sign * t.prepaid, cur)
    _text(details, "AccountDimensionText", _cut(invoice.accounting_reference, 35))
    for entry in invoice.vat_breakdown:
        vat = _sub(details, "VatSpecificationDetails")
        _amount(vat, "VatBaseAmount", sign * entry.taxable_amount, cur)
        if entry.rate is not None:
            _text(vat, "VatRatePercent", _percent(entry.rate))
        _text(vat, "VatCode", entry.category)
        _amount(vat, "VatRateAmount", sign * entry.tax_amount, cur)
        for text in vat_free_texts(entry.exemption_reason or entry.exemption_reason_code):
            _text(vat, "VatFreeText", text)
    for text in wrap_at_spaces(invoice.note, FREE_TEXT_CHARS, keep_breaks=True):
        _text(details, "InvoiceFreeText", text)
    terms = _sub(details, "PaymentTermsDetails")
    for text in wrap_at_spaces(invoice.payment_terms, 70, parts=2):  # 0..2 of 70
        _text(terms, "PaymentTermsFreeText", text)
    if due_date:
        _date(terms, "InvoiceDueDate", due_date)
    # The XSD orders every DiscountDetails before every ChargeDetails.
    for ac in sorted(invoice.allowances_charges, key=lambda a: a.is_charge):
        el = _sub(details, "ChargeDetails" if ac.is_charge else "DiscountDetails")
        _text(el, "ReasonText" if ac.is_charge else "FreeText", cut_at_space(ac.reason, 70))
        _text(el, "ReasonCode", ac.reason_code)
        if ac.percent is not None:
            _text(el, "Percent", _percent(ac.percent))
        _amount(el, "Amount", sign * ac.amount, cur)
        if ac.base_amount is not None:
            _amount(el, "BaseAmount", sign * ac.base_amount, cur)
        _text(el, "VatCategoryCode", ac.vat_category)
        if ac.vat_rate is not None:
            _text(el, "VatRatePercent", _percent(ac.vat_rate))

    means = () if no_payment else invoice.payment_means
    card = next((m for m in means if m.card_pan), None)
    if card is not None:
        info = _sub(root, "PaymentCardInfo")
        _text(info, "PrimaryAccountNumber", _cut(card.card_pan.replace(" ", ""), 19))
        _text(info, "CardHolderName", cut_at_space(card.card_holder, 70))
    debit = next((m for m in means if m.mandate_id), None)
    if debit is not None:
        info = _sub(root, "DirectDebitInfo")
        _text(info, "MandateReference", _cut(debit.mandate_id, 35))
        creditor = next((i.value for i in seller.identifiers if i.scheme == "SEPA"), None)
        _text(info, "CreditorIdentifier", _cut(creditor, 35))
        _text(info, "DebitedAccountID", debit.debited_account,
              IdentificationSchemeName=_account_scheme(debit.debited_account or ""))

    for line in invoice.lines:
        _row(_sub(root, "InvoiceRow"), line, sign, cur)

    _epi(root, invoice, payment, payment_date, no_payment)
    return etree.tostring(root, xml_declaration=True, encoding="UTF-8", pretty_print=True)


def _row(row: etree._Element, line: InvoiceLine, sign: Decimal, cur: str) -> None:
    """BG-25 as an InvoiceRow (XSD order of InvoiceRowGroup)."""
    _text(row, "ArticleIdentifier", _cut(line.seller_item_id, 70))
    _text(row, "ArticleName", cut_at_space(line.name, 100))
    _text(row, "ArticleDescription", cut_at_space(line.description, FREE_TEXT_CHARS))
    _text(row, "BuyerArticleIdentifier", _cut(line.buyer_item_id, 70))
    gtin = line.standard_item_id
    if gtin and gtin.scheme == "0160" and gtin.value.isdigit() and len(gtin.value) <= 14:
        _text(row, "EanCode", gtin.value)
    _text(row, "InvoicedQuantity", _decimal(sign * line.quantity),
          QuantityUnitCodeUN=line.unit_code)
    if line.period_start:
        _date(row, "StartDate", line.period_start)
    if line.period_end:
        _date(row, "EndDate", line.period_end)
    if line.gross_price is not None:
        _text(row, "UnitPriceAmount", _unit_price(line.gross_price),
              AmountCurrencyIdentifier=cur, QuantityUnitCodeUN=line.unit_code)
        _text(row, "UnitPriceDiscountAmount", _unit_price(line.price_discount or Decimal(0)),
              AmountCurrencyIdentifier=cur)
        _text(row, "UnitPriceNetAmount", _unit_price(line.unit_price),
              AmountCurrencyIdentifier=cur)
    else:
        _text(row, "UnitPriceAmount", _unit_price(line.unit_price),
              AmountCurrencyIdentifier=cur, QuantityUnitCodeUN=line.unit_code)
    if line.base_quantity is not None:
        _text(row, "UnitPriceBaseQuantity", _decimal(line.base_quantity),
              QuantityUnitCodeUN=line.unit_code)
    _text(row, "RowIdentifier", _cut(line.order_line_reference, 35))
    _text(row, "RowPositionIdentifier", line.id)
    _text(row, "RowAccountDimensionText", _cut(line.accounting_reference, 35))
    for text in wrap_at_spaces(line.note, FREE_TEXT_CHARS, keep_breaks=True):
        _text(row, "RowFreeText", text)
    allowances = [ac for ac in line.allowances_charges if not ac.is_charge]
    for i, ac in enumerate(allowances):
        el = row if i == 0 else _sub(row, "RowProgressiveDiscountDetails")
        if ac.percent is not None:
            _text(el, "RowDiscountPercent", _percent(ac.percent))
        _amount(el, "RowDiscountAmount", sign * ac.amount, cur)
        if ac.base_amount is not None:
            _amount(el, "RowDiscountBaseAmount", sign * ac.base_amount, cur)
        _text(el, "RowDiscountTypeCode", ac.reason_code)
        _text(el, "RowDiscountTypeText", cut_at_space(ac.reason, 35))
    for ac in (a for a in line.allowances_charges if a.is_charge):
        el = _sub(row, "RowChargeDetails")
        _text(el, "ReasonText", cut_at_space(ac.reason, 70))
        _text(el, "ReasonCode", ac.reason_code)
        if ac.percent is not None:
            _text(el, "Percent", _percent(ac.percent))
        _amount(el, "Amount", sign * ac.amount, cur)
        if ac.base_amount is not None:
            _amount(el, "BaseAmount", sign * ac.base_amount, cur)
    if line.vat_rate is not None:
        _text(row, "RowVatRatePercent", _percent(line.vat_rate))
    _text(row, "RowVatCode", line.vat_category)
    _amount(row, "RowVatExcludedAmount", sign * line.net_amount, cur)


def _cut(value: str | None, size: int) -> str | None:
    """An identifier (a reference, an accounting code) in at most `size` characters: cut,
    never reworded. Names and texts are cut between words (`cut_at_space`)."""
    return value[:size] if value else None


def _is_bic(value: str) -> bool:
    return len(value) in (8, 11) and value.isalnum()


def _epi(
    root: etree._Element, invoice: Invoice, payment: PaymentMeans, due: date, no_payment: bool
) -> None:
    """EpiDetails: the credit transfer the payer's bank pre-fills (EPI = SEPA CT data).
    With `no_payment` (a credit note, an invoice with nothing to pay) it instructs 0,00 on
    `due` (the issue date), with no remittance reference."""
    epi = _sub(root, "EpiDetails")
    ident = _sub(epi, "EpiIdentificationDetails")
    _date(ident, "EpiDate", invoice.issue_date)
    _sub(ident, "EpiReference")  # mandatory, may be empty: no EPI message reference here
    parties = _sub(epi, "EpiPartyDetails")
    bfi = _sub(parties, "EpiBfiPartyDetails")
    if payment.bic and _is_bic(payment.bic):
        _text(bfi, "EpiBfiIdentifier", payment.bic, IdentificationSchemeName="BIC")
    beneficiary = _sub(parties, "EpiBeneficiaryPartyDetails")
    _text(beneficiary, "EpiNameAddressDetails",
          cut_at_space(payment.account_name or invoice.seller.name, 35, minimum=2))
    legal = invoice.seller.legal_id
    if legal and 8 <= len(legal) <= 11:
        _text(beneficiary, "EpiBei", legal)
    assert payment.account
    _text(
        beneficiary,
        "EpiAccountID",
        _compact(payment.account),
        IdentificationSchemeName=_account_scheme(payment.account),
    )
    instruction = _sub(epi, "EpiPaymentInstructionDetails")
    reference = payment.reference
    if reference is not None and reference.scheme in ("fi", "rf") and not no_payment:
        _text(
            instruction,
            "EpiRemittanceInfoIdentifier",
            reference.value.replace(" ", ""),
            IdentificationSchemeName="SPY" if reference.scheme == "fi" else "ISO",
        )
    # A credit note or an invoice with nothing to pay asks for none: the amount is zero.
    to_pay = Decimal(0) if no_payment else invoice.totals.payable
    _amount(instruction, "EpiInstructedAmount", to_pay, invoice.currency)
    _text(instruction, "EpiCharge", "SHA", ChargeOption="SHA")
    _date(instruction, "EpiDateOptionDate", due)


STREET_CHARS, STREET_ELEMENTS = 35, 3  # Finvoice 3.0: StreetName genericStringType2_35, 1..3


def street_names(lines: tuple[str, ...]) -> list[str]:
    """The address lines as Finvoice's `StreetName` elements (at most 3 of at most 35
    characters): a longer line is wrapped at spaces onto further elements instead of cut
    ("Hauptstraße 145, Hinterhaus, 3. Obergeschoss links" -> "Hauptstraße 145, Hinterhaus,
    3." + "Obergeschoss links"). Every line keeps its first element; the elements left over
    take the lines' continuations in order. Only what does not fit in 3 elements is lost."""
    wrapped = [textwrap.wrap(line, STREET_CHARS) or [line[:STREET_CHARS] or "-"]
               for line in (lines or ("-",))][:STREET_ELEMENTS]
    spare = STREET_ELEMENTS - len(wrapped)
    out: list[str] = []
    for pieces in wrapped:
        out += pieces[: 1 + spare]
        spare -= len(pieces[1 : 1 + spare])
    return out


NAME_CHARS = 70  # Finvoice 3.0: Seller/BuyerOrganisationName genericStringType2_70, 1..unbounded
FREE_TEXT_CHARS = 512  # InvoiceFreeText, RowFreeText (0..unbounded), ArticleDescription


def organisation_names(name: str) -> list[str]:
    """A party's name (BT-27, BT-44) as Finvoice's repeating `...OrganisationName` elements
    of 2 to 70 characters: a longer name is wrapped at spaces onto further elements, which
    the receiving bank shows together, instead of being cut at 70 inside a word ("Kiinteistö
    Osakeyhtiö Tampereen Hämeenkadun Liike- ja Toimistotalo Kes")."""
    return wrap_at_spaces(name, NAME_CHARS, minimum=2)


VAT_FREE_CHARS, VAT_FREE_ELEMENTS = 70, 3  # Finvoice 3.0: VatFreeText genericStringType0_70, 0..3


def vat_free_texts(reason: str | None) -> list[str]:
    """The VAT exemption reason (BT-120, else its code BT-121) as Finvoice's `VatFreeText`
    elements: at most 3 of at most 70 characters, wrapped at spaces, never cut inside a word
    (cut at 70 it read "... payments on the card holder'"). A reason longer than the three
    elements hold ends at the last whole word that fits, followed by "…"."""
    if not reason:
        return []
    return wrap_at_spaces(" ".join(reason.split()), VAT_FREE_CHARS, parts=VAT_FREE_ELEMENTS)


def _address(party: etree._Element, role: str, address: PostalAddress) -> None:
    el = _sub(party, f"{role}PostalAddressDetails")
    for name in street_names(tuple(address.lines)):
        _text(el, f"{role}StreetName", name)
    _text(el, f"{role}TownName", cut_at_space(address.city, 35, minimum=2))
    _text(el, f"{role}PostCodeIdentifier", address.postal_code[:35])
    _text(el, "CountryCode", address.country)


def _sub(parent: etree._Element, tag: str) -> etree._Element:
    return etree.SubElement(parent, tag)


def _text(parent: etree._Element, tag: str, text: str | None, **attrs: str) -> None:
    if text is None or not text.strip():
        return
    el = etree.SubElement(parent, tag, **attrs)
    el.text = text


def _date(parent: etree._Element, tag: str, value: date) -> None:
    _text(parent, tag, value.strftime("%Y%m%d"), Format="CCYYMMDD")


def _amount(parent: etree._Element, tag: str, value: Decimal, currency: str) -> None:
    """Finvoice amount: the currency's decimals, decimal comma, never "-0,00"."""
    _text(parent, tag, f"{round_money(value, currency):f}".replace(".", ","),
          AmountCurrencyIdentifier=currency)


def _decimal(value: Decimal) -> str:
    if value.is_zero():
        return "0"
    text = f"{value:f}"
    if "." in text:
        text = text.rstrip("0").rstrip(".")
    return text.replace(".", ",")


def _percent(value: Decimal) -> str:
    return _decimal(value)


def _unit_price(value: Decimal) -> str:
    text = _decimal(value.quantize(UNIT_PRICE_DECIMALS).normalize())
    whole, _, frac = text.partition(",")
    return f"{whole},{frac.ljust(2, '0')}"


def _compact(account: str) -> str:
    return account.replace(" ", "")


def _account_scheme(account: str) -> str:
    compact = _compact(account)
    is_iban = len(compact) >= 15 and compact[:2].isalpha() and compact[2:4].isdigit()
    return "IBAN" if is_iban else "BBAN"
