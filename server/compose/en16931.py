"""The EN 16931 semantic model of an invoice or credit note, as frozen values.

Every business group (BG-) and business term (BT-) of EN 16931-1 has a home here, named as
the standard names it; the comments give the numbers. `server.compose.invoice` builds an
`Invoice` from a builder's input (and computes every amount, exactly once); the e-invoice
renderers (Peppol BIS 3 UBL, CII / Factur-X, Finvoice) map it to XML and add nothing up.

Conventions:
* money is `Decimal`, already rounded to the currency's minor unit (`server.compose.money`)
  where EN 16931 has an amount; prices and quantities keep the decimals they were given;
* absent is `None` or an empty tuple, never an empty string (EN 16931 has no empty values,
  and Peppol forbids empty elements, PEPPOL-EN16931-R008);
* identifiers are already normalised for their scheme (`server.compose.identifiers`).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from decimal import Decimal

from server.compose.codelists import CREDIT_NOTE_TYPES
from server.compose.model import PaymentReference, PostalAddress, pickled_by_fields


@pickled_by_fields
@dataclass(frozen=True, slots=True)
class Identifier:
    """An identifier with its scheme: ISO 6523 ICD for parties and items, UNCL1153 for an
    invoiced object, UNCL7143 (+ version) for an item classification."""

    value: str
    scheme: str | None = None
    version: str | None = None  # BT-158-2 classification list version


@pickled_by_fields
@dataclass(frozen=True, slots=True)
class Party:
    """Seller (BG-4) or buyer (BG-7)."""

    name: str  # BT-27 / BT-44 registration name
    address: PostalAddress | None = None  # BG-5 / BG-8
    vat_id: str | None = None  # BT-31 / BT-48, e.g. "NO923609016MVA"
    legal_id: str | None = None  # BT-30 / BT-47 organisation number
    legal_id_scheme: str | None = None  # ISO 6523 ICD, e.g. "0192" (NO org.nr.)
    endpoint_id: str | None = None  # BT-34 / BT-49 electronic address
    endpoint_scheme: str | None = None  # EAS code, e.g. "0192", "0007", "0088"
    contact_name: str | None = None  # BT-41 / BT-56
    contact_phone: str | None = None  # BT-42 / BT-57
    contact_email: str | None = None  # BT-43 / BT-58
    trading_name: str | None = None  # BT-28 / BT-45
    identifiers: tuple[Identifier, ...] = ()  # BT-29 / BT-46 (incl. BT-90 creditor id)
    tax_registration_id: str | None = None  # BT-32 seller only ("Foretaksregisteret")
    legal_info: str | None = None  # BT-33 seller additional legal information


@pickled_by_fields
@dataclass(frozen=True, slots=True)
class Payee:
    """BG-10: who receives the payment when it is not the seller (e.g. a factoring company)."""

    name: str  # BT-59
    identifier: Identifier | None = None  # BT-60
    legal_id: Identifier | None = None  # BT-61


@pickled_by_fields
@dataclass(frozen=True, slots=True)
class TaxRepresentative:
    """BG-11: the seller's VAT representative."""

    name: str  # BT-62
    vat_id: str  # BT-63
    address: PostalAddress  # BG-12


@pickled_by_fields
@dataclass(frozen=True, slots=True)
class Delivery:
    """BG-13 delivery information (BG-14 invoicing period lives on the invoice)."""

    party_name: str | None = None  # BT-70
    location: Identifier | None = None  # BT-71
    date: date | None = None  # BT-72 actual delivery date
    address: PostalAddress | None = None  # BG-15


@pickled_by_fields
@dataclass(frozen=True, slots=True)
class PrecedingInvoice:
    """BG-3: an earlier invoice this one corrects or credits."""

    number: str  # BT-25
    issue_date: date | None = None  # BT-26


@pickled_by_fields
@dataclass(frozen=True, slots=True)
class Attachment:
    """BG-24 additional supporting document. `content` is the embedded file (BT-125); with
    `rendered_pdf` the e-invoice channel embeds the document's own print PDF."""

    id: str  # BT-122
    description: str | None = None  # BT-123
    uri: str | None = None  # BT-124 external document location
    content: bytes | None = None  # BT-125
    mime_code: str | None = None  # BT-125-1
    filename: str | None = None  # BT-125-2
    rendered_pdf: bool = False


@pickled_by_fields
@dataclass(frozen=True, slots=True)
class LineAllowanceCharge:
    """BG-27 invoice line allowance / BG-28 line charge (no VAT of its own: the line's)."""

    is_charge: bool
    amount: Decimal  # BT-136 / BT-141
    reason: str | None = None  # BT-139 / BT-144
    reason_code: str | None = None  # BT-140 / BT-145
    base_amount: Decimal | None = None  # BT-137 / BT-142
    percent: Decimal | None = None  # BT-138 / BT-143


@pickled_by_fields
@dataclass(frozen=True, slots=True)
class ItemAttribute:
    """BG-32."""

    name: str  # BT-160
    value: str  # BT-161


@pickled_by_fields
@dataclass(frozen=True, slots=True)
class InvoiceLine:
    """BG-25. `net_amount` (BT-131) = quantity x net price / base quantity + line charges -
    line allowances, rounded once to the currency's minor unit."""

    id: str  # BT-126
    name: str  # BT-153
    quantity: Decimal  # BT-129
    unit_code: str  # BT-130, UN/ECE Rec 20 (e.g. "C62" piece, "HUR" hour, "MON" month)
    unit_price: Decimal  # BT-146 item net price
    net_amount: Decimal  # BT-131
    vat_category: str  # BT-151, UNCL5305: S, Z, E, AE, K, G, O, L, M
    vat_rate: Decimal | None  # BT-152 percent; None only for category O
    description: str | None = None  # BT-154
    period_start: date | None = None  # BT-134
    period_end: date | None = None  # BT-135
    note: str | None = None  # BT-127
    object_id: Identifier | None = None  # BT-128 (scheme: UNCL1153)
    order_line_reference: str | None = None  # BT-132
    accounting_reference: str | None = None  # BT-133
    allowances_charges: tuple[LineAllowanceCharge, ...] = ()  # BG-27 / BG-28
    price_discount: Decimal | None = None  # BT-147
    gross_price: Decimal | None = None  # BT-148
    base_quantity: Decimal | None = None  # BT-149 (its unit BT-150 is the line's unit)
    seller_item_id: str | None = None  # BT-155
    buyer_item_id: str | None = None  # BT-156
    standard_item_id: Identifier | None = None  # BT-157 (scheme: ICD, e.g. 0160 GTIN)
    classifications: tuple[Identifier, ...] = ()  # BT-158 (scheme: UNCL7143)
    origin_country: str | None = None  # BT-159
    attributes: tuple[ItemAttribute, ...] = ()  # BG-32


@pickled_by_fields
@dataclass(frozen=True, slots=True)
class AllowanceCharge:
    """Document-level allowance (BG-20) or charge (BG-21)."""

    is_charge: bool
    amount: Decimal  # BT-92 / BT-99
    reason: str | None  # BT-97 / BT-104
    vat_category: str  # BT-95 / BT-102
    vat_rate: Decimal | None  # BT-96 / BT-103
    reason_code: str | None = None  # BT-98 / BT-105
    base_amount: Decimal | None = None  # BT-93 / BT-100
    percent: Decimal | None = None  # BT-94 / BT-101


@pickled_by_fields
@dataclass(frozen=True, slots=True)
class VatBreakdown:
    """BG-23: one entry per VAT category and rate."""

    category: str  # BT-118
    rate: Decimal | None  # BT-119
    taxable_amount: Decimal  # BT-116
    tax_amount: Decimal  # BT-117
    exemption_reason: str | None = None  # BT-120
    exemption_reason_code: str | None = None  # BT-121 (VATEX)


@pickled_by_fields
@dataclass(frozen=True, slots=True)
class Totals:
    """BG-22 document totals, satisfying BR-CO-10..17."""

    line_extension: Decimal  # BT-106
    allowances: Decimal  # BT-107
    charges: Decimal  # BT-108
    tax_exclusive: Decimal  # BT-109
    tax: Decimal  # BT-110
    tax_inclusive: Decimal  # BT-112
    prepaid: Decimal  # BT-113
    rounding: Decimal  # BT-114
    payable: Decimal  # BT-115
    tax_in_accounting_currency: Decimal | None = None  # BT-111 (in BT-6)


@pickled_by_fields
@dataclass(frozen=True, slots=True)
class PaymentMeans:
    """BG-16 payment instructions: one means (BT-81) with what it needs.

    Credit transfer (30, 58, 31, 42, Danish FIK 93 ...): `account` (BT-84), `account_name`
    (BT-85), `bic` (BT-86: BIC, or the "SE:BANKGIRO" / "SE:PLUSGIRO" marker Peppol uses
    for Swedish giro accounts, or a Danish bank registration number). Payment card (48, 54,
    55): `card_pan` (BT-87, at most the first 6 and last 4 digits), `card_holder` (BT-88),
    `card_network`. Direct debit (49, 59): `mandate_id` (BT-89), `debited_account` (BT-91);
    the creditor id (BT-90) is a seller or payee identifier with scheme "SEPA".
    """

    code: str  # BT-81 UNCL4461
    account: str | None = None  # BT-84
    bic: str | None = None  # BT-86
    account_name: str | None = None  # BT-85
    reference: PaymentReference | None = None  # BT-83 remittance information
    text: str | None = None  # BT-82
    card_pan: str | None = None  # BT-87
    card_holder: str | None = None  # BT-88
    card_network: str | None = None  # UBL cac:CardAccount/cbc:NetworkID
    mandate_id: str | None = None  # BT-89
    debited_account: str | None = None  # BT-91

    @property
    def payment_id(self) -> str | None:
        """BT-83 as the XML carries it: Danish FIK as `71#<payment id>` (DK-R-010/011), card
        types 75 and 73 alike (`75#<payment id>`, `73#`: no payment id)."""
        if self.reference is None:
            return None
        if self.reference.scheme in ("fik", "fik73", "fik75"):
            card, _, rest = self.reference.value.removeprefix("+").partition("<")
            return f"{card}#{rest.partition('+')[0]}"
        return self.reference.value


@pickled_by_fields
@dataclass(frozen=True, slots=True)
class Invoice:
    """The canonical invoice / credit note (EN 16931 BG-0)."""

    number: str  # BT-1
    type_code: str  # BT-3, UNCL1001 (380 invoice, 381 credit note, ...)
    issue_date: date  # BT-2
    due_date: date | None  # BT-9
    currency: str  # BT-5
    seller: Party  # BG-4
    buyer: Party  # BG-7
    lines: tuple[InvoiceLine, ...]  # BG-25
    allowances_charges: tuple[AllowanceCharge, ...]  # BG-20 / BG-21
    vat_breakdown: tuple[VatBreakdown, ...]  # BG-23
    totals: Totals  # BG-22
    payment_means: tuple[PaymentMeans, ...] = ()  # BG-16 (one per means / account)
    buyer_reference: str | None = None  # BT-10
    order_reference: str | None = None  # BT-13
    preceding_invoices: tuple[PrecedingInvoice, ...] = ()  # BG-3
    note: str | None = None  # BT-22
    note_subject: str | None = None  # BT-21 (UNCL4451)
    payment_terms: str | None = None  # BT-20
    period_start: date | None = None  # BT-73
    period_end: date | None = None  # BT-74
    tax_currency: str | None = None  # BT-6 VAT accounting currency
    tax_point_date: date | None = None  # BT-7
    tax_point_code: str | None = None  # BT-8 (UNCL2005)
    project_reference: str | None = None  # BT-11
    contract_reference: str | None = None  # BT-12
    sales_order_reference: str | None = None  # BT-14
    receiving_advice_reference: str | None = None  # BT-15
    despatch_advice_reference: str | None = None  # BT-16
    tender_reference: str | None = None  # BT-17
    invoiced_object: Identifier | None = None  # BT-18
    accounting_reference: str | None = None  # BT-19
    payee: Payee | None = None  # BG-10
    tax_representative: TaxRepresentative | None = None  # BG-11
    delivery: Delivery | None = None  # BG-13
    attachments: tuple[Attachment, ...] = ()  # BG-24

    @property
    def payment(self) -> PaymentMeans | None:
        """The first (main) payment means: the one a giro slip or an EPI payment shows."""
        return self.payment_means[0] if self.payment_means else None

    @property
    def nothing_to_pay(self) -> bool:
        """An invoice (not a credit note) whose amount due for payment (BT-115) is 0 or less:
        a card statement with a credit balance, a negative or a fully prepaid invoice.

        Such an invoice asks for no payment, so the e-invoice renderers leave out what would
        ask for one: the payment instructions (BG-16: means, account, payment reference
        BT-83, card BG-18, direct debit BG-19) and the due date (BT-9). EN 16931 lets them:
        BG-16 is optional (0..n), and BR-CO-25 wants a due date or payment terms only when
        BT-115 is positive. The totals stay as computed (BR-CO-16 holds: BT-115 = BT-112 -
        BT-113 + BT-114, negative for a credit balance); the model keeps its payment means
        and due date for the print channels. A credit note's positive BT-115 is what is
        credited, so a credit note is never "nothing to pay" here."""
        return not self.is_credit_note and self.totals.payable <= 0

    @property
    def asks_for_payment(self) -> bool:
        """An invoice with an amount due for payment (BT-115 > 0): neither an invoice with
        `nothing_to_pay` nor a credit note, whose positive BT-115 is what the seller credits
        the buyer. Only such a document carries a due date (BT-9) and payment instructions
        (BG-16: the means, the seller's account, the payment reference BT-83, card BG-18,
        direct debit BG-19) in the e-invoice renderers (UBL, CII, Finvoice); the model keeps
        them for the print channels. A credit note's payment means are the seller's account
        and reference, the ones its invoice asked the buyer to pay to: written into a Peppol
        CreditNote (PaymentMeans with PaymentID and PaymentDueDate) they ask the buyer to pay
        the credited amount. EN 16931 lets a credit note leave them out: BG-16 is optional
        (0..n), and BR-CO-25 (a due date or terms when BT-115 is positive) applies to
        invoices only (CEN's EN 16931 schematron, issues #84 and #241; removed in 1.3.16).
        Refund instructions (the buyer's account the credit is paid back to) would be
        payment means of their own, which no Kanal layout takes yet."""
        return not self.is_credit_note and self.totals.payable > 0

    @property
    def is_credit_note(self) -> bool:
        """Written as a UBL CreditNote (type codes of UNCL1001 that credit)."""
        return self.type_code in CREDIT_NOTE_TYPES

    @property
    def preceding_invoice(self) -> str | None:
        """The first preceding invoice's number (BT-25), for templates and summaries."""
        return self.preceding_invoices[0].number if self.preceding_invoices else None
