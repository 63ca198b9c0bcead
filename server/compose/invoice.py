"""Invoice lines and document allowances/charges -> an EN 16931 `Invoice`, computed once.

Every amount an e-invoice, a PDF or an email shows is decided here, at composition time, and
nowhere else: the channel renderers (UBL, CII, Finvoice, print) copy these numbers and never
add anything up themselves, so the figures on paper and in the XML cannot drift apart.

The arithmetic is EN 16931's (the BR-CO rules, which the CEN schematron checks):

* line net amount (BT-131) = round(quantity x unit price, 2), half-up;
* VAT breakdown (BG-23): one entry per (VAT category, rate); taxable amount (BT-116) = the
  line nets of that category + its document charges - its document allowances; the VAT
  amount (BT-117) = round(taxable x rate / 100, 2) (BR-CO-17);
* BT-106 = sum of line nets (BR-CO-10), BT-107/108 = sum of allowances/charges (BR-CO-11/12),
  BT-109 = 106 - 107 + 108 (BR-CO-13), BT-110 = sum of the category VAT amounts (BR-CO-14),
  BT-112 = 109 + 110 (BR-CO-15), BT-115 = 112 - 113 + 114 (BR-CO-16).

Money is `Decimal` throughout; a float never touches an amount.

Bad input raises `InvalidInput` carrying one `FieldViolation` per problem (all of them, not
just the first), each naming the field as a JSON path under `field_prefix`, e.g.
`$.lines[2].vat_rate`, so the API can point the caller at the exact value.

Credit notes (type 381) are written with positive amounts: a caller sends what is credited
(positive quantities and prices) and the document type carries the sign, as UBL `CreditNote`
and CII 381 expect. A credit note whose total comes out negative is refused.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import date
from decimal import ROUND_HALF_UP, Decimal

from server.compose.model import (
    AllowanceCharge,
    Invoice,
    InvoiceLine,
    Party,
    PaymentMeans,
    Totals,
    VatBreakdown,
)
from server.errors import FieldViolation, InvalidInput

CENT = Decimal("0.01")
ZERO = Decimal("0.00")

INVOICE = "380"  # UNCL1001 commercial invoice
CREDIT_NOTE = "381"  # UNCL1001 credit note
TYPE_CODES = frozenset({INVOICE, CREDIT_NOTE})

# UNCL5305 VAT categories EN 16931 knows, and what each requires of the rate (BR-x-05/06)
# and of an exemption reason (BR-x-10).
VAT_CATEGORIES = frozenset({"S", "Z", "E", "AE", "K", "G", "O", "L", "M"})
RATE_REQUIRED = frozenset({"S", "Z", "AE", "K", "G", "L", "M"})  # E defaults to 0
RATE_MUST_BE_ZERO = frozenset({"Z", "E", "AE", "K", "G"})  # BR-Z-05, BR-E-05, BR-AE-05, ...
RATE_NOT_ALLOWED = frozenset({"O"})  # BR-O-05: "not subject to VAT" has no rate
EXEMPTION_REASON_REQUIRED = frozenset({"E", "AE", "K", "G", "O"})  # BR-E-10, BR-AE-10, ...
# Categories for which the seller must have a VAT identifier (BR-S-02, BR-Z-02, BR-E-02,
# BR-AE-02, BR-IC-02, BR-G-02); for O neither seller nor buyer may show one (BR-O-02).
SELLER_VAT_ID_REQUIRED = frozenset({"S", "Z", "E", "AE", "K", "G"})

# The UN/ECE Recommendation 20 unit codes Kanal accepts (BT-130). A deliberately small subset:
# the units banks and their customers invoice in. Extending it is a one-line change; every
# code here is valid in the EN 16931 code list (Rec 20 + Rec 21).
UNIT_CODES: Mapping[str, str] = {
    "C62": "one (piece, unit)",
    "H87": "piece",
    "EA": "each",
    "PR": "pair",
    "SET": "set",
    "LS": "lump sum",
    "SEC": "second",
    "MIN": "minute",
    "HUR": "hour",
    "DAY": "day",
    "WEE": "week",
    "MON": "month",
    "QAN": "quarter (of a year)",
    "ANN": "year",
    "GRM": "gram",
    "KGM": "kilogram",
    "TNE": "tonne",
    "LTR": "litre",
    "MTR": "metre",
    "KMT": "kilometre",
    "MTK": "square metre",
    "MTQ": "cubic metre",
    "KWH": "kilowatt hour",
    "MWH": "megawatt hour",
    "E48": "service unit",
    "P1": "percent",
}

# ISO 4217 active currency codes usable on an invoice (precious metals, testing codes,
# fund codes and XXX left out).
_CURRENCIES_TEXT = """
    AED AFN ALL AMD AOA ARS AUD AWG AZN BAM BBD BDT BHD BIF BMD BND BOB BRL BSD BTN
    BWP BYN BZD CAD CDF CHF CLP CNY COP CRC CUP CVE CZK DJF DKK DOP DZD EGP ERN ETB
    EUR FJD FKP GBP GEL GHS GIP GMD GNF GTQ GYD HKD HNL HTG HUF IDR ILS INR IQD IRR
    ISK JMD JOD JPY KES KGS KHR KMF KPW KRW KWD KYD KZT LAK LBP LKR LRD LSL LYD MAD
    MDL MGA MKD MMK MNT MOP MRU MUR MVR MWK MXN MYR MZN NAD NGN NIO NOK NPR NZD OMR
    PAB PEN PGK PHP PKR PLN PYG QAR RON RSD RUB RWF SAR SBD SCR SDG SEK SGD SHP SLE
    SOS SRD SSP STN SVC SYP SZL THB TJS TMT TND TOP TRY TTD TWD TZS UAH UGX USD UYU
    UZS VED VES VND VUV WST XAF XCD XCG XOF XPF YER ZAR ZMW ZWG
    """
CURRENCIES = frozenset(_CURRENCIES_TEXT.split())

# UNCL4461 payment means Kanal writes (BT-81). Direct debit (49, 59) is left out: it needs
# a mandate reference (BT-89) that the model does not carry (PEPPOL-EN16931-R061).
PAYMENT_MEANS_CODES: Mapping[str, str] = {
    "1": "instrument not defined",
    "10": "in cash",
    "30": "credit transfer",
    "31": "debit transfer",
    "42": "payment to bank account",
    "48": "bank card",
    "58": "SEPA credit transfer",
}
ACCOUNT_REQUIRED = frozenset({"30", "58"})  # BR-61


@dataclass(frozen=True)
class LineInput:
    """One invoice line as the caller sends it, before any arithmetic (BG-25 without BT-131)."""

    id: str
    name: str
    quantity: Decimal
    unit_code: str
    unit_price: Decimal
    vat_category: str
    vat_rate: Decimal | None
    description: str | None = None
    period_start: date | None = None
    period_end: date | None = None


def round_money(value: Decimal) -> Decimal:
    """Round to the cent, half away from zero (EN 16931 rounds amounts to 2 decimals)."""
    return value.quantize(CENT, rounding=ROUND_HALF_UP)


def line_net_amount(quantity: Decimal, unit_price: Decimal) -> Decimal:
    """BT-131 = BT-129 x BT-146 (base quantity 1), rounded to 2 decimals."""
    return round_money(quantity * unit_price)


def vat_amount(taxable: Decimal, rate: Decimal | None) -> Decimal:
    """BT-117 = BT-116 x BT-119 / 100, rounded to 2 decimals (BR-CO-17)."""
    if rate is None:
        return ZERO
    return round_money(taxable * rate / Decimal(100))


def compute_invoice(
    *,
    number: str,
    type_code: str,
    issue_date: date,
    due_date: date | None,
    currency: str,
    seller: Party,
    buyer: Party,
    lines: Sequence[LineInput],
    allowances_charges: Sequence[AllowanceCharge] = (),
    payment: PaymentMeans | None,
    prepaid: Decimal = Decimal(0),
    buyer_reference: str | None = None,
    order_reference: str | None = None,
    preceding_invoice: str | None = None,
    note: str | None = None,
    payment_terms: str | None = None,
    exemption_reasons: Mapping[str, str] | None = None,
    period_start: date | None = None,
    period_end: date | None = None,
    field_prefix: str = "$",
) -> Invoice:
    """Validate the input and compute line nets, the VAT breakdown and the totals.

    `exemption_reasons` maps a VAT category ("E", "AE", "G", "O", ...) to its exemption
    reason text (BT-120); categories E/AE/K/G/O need one. Raises `InvalidInput` listing
    every violation found, with field paths under `field_prefix`.
    """
    v = _Violations(field_prefix)
    reasons = dict(exemption_reasons or {})

    if not number.strip():
        v.add("number", "an invoice number (BT-1) is required")
    if type_code not in TYPE_CODES:
        v.add(
            "type_code", f"{type_code!r} is not supported; use 380 (invoice) or 381 (credit note)"
        )
    if currency not in CURRENCIES:
        v.add("currency", f"{currency!r} is not an ISO 4217 currency code")
    if due_date is not None and due_date < issue_date:
        v.add("due_date", "the due date is before the issue date")
    if period_start and period_end and period_end < period_start:
        v.add("period_end", "the invoicing period ends before it starts")
    _check_party(v, "seller", seller)
    _check_party(v, "buyer", buyer)
    if not lines:
        v.add("lines", "an invoice needs at least one line (BR-16)")

    # --- lines ---------------------------------------------------------------------------
    computed: list[InvoiceLine] = []
    seen_ids: set[str] = set()
    for i, line in enumerate(lines):
        path = f"lines[{i}]"
        if not line.id.strip():
            v.add(f"{path}.id", "a line identifier (BT-126) is required")
        elif line.id in seen_ids:
            v.add(f"{path}.id", f"line id {line.id!r} is used twice")
        seen_ids.add(line.id)
        if not line.name.strip():
            v.add(f"{path}.name", "an item name (BT-153) is required")
        if line.unit_code not in UNIT_CODES:
            v.add(
                f"{path}.unit_code",
                f"{line.unit_code!r} is not a supported UN/ECE Rec 20 unit code "
                f"({', '.join(sorted(UNIT_CODES))})",
            )
        if line.unit_price < 0:
            v.add(f"{path}.unit_price", "the item net price (BT-146) must not be negative (BR-27)")
        if line.period_start and line.period_end and line.period_end < line.period_start:
            v.add(f"{path}.period_end", "the line period ends before it starts (BR-30)")
        rate = _check_vat(v, path, line.vat_category, line.vat_rate)
        computed.append(
            InvoiceLine(
                id=line.id,
                name=line.name,
                quantity=line.quantity,
                unit_code=line.unit_code,
                unit_price=line.unit_price,
                net_amount=line_net_amount(line.quantity, line.unit_price),
                vat_category=line.vat_category,
                vat_rate=rate,
                description=line.description,
                period_start=line.period_start,
                period_end=line.period_end,
            )
        )

    # --- document allowances and charges --------------------------------------------------
    normalised_ac: list[AllowanceCharge] = []
    for i, ac in enumerate(allowances_charges):
        path = f"allowances_charges[{i}]"
        if ac.amount <= 0:
            v.add(f"{path}.amount", "an allowance or charge amount must be positive")
        elif ac.amount != ac.amount.quantize(CENT):
            v.add(f"{path}.amount", "an allowance or charge amount has at most 2 decimals")
        if not ac.reason.strip() and not ac.reason_code:
            v.add(f"{path}.reason", "a reason or a reason code is required (BR-33, BR-38)")
        rate = _check_vat(v, path, ac.vat_category, ac.vat_rate)
        normalised_ac.append(
            AllowanceCharge(
                is_charge=ac.is_charge,
                amount=round_money(ac.amount),
                reason=ac.reason,
                vat_category=ac.vat_category,
                vat_rate=rate,
                reason_code=ac.reason_code,
            )
        )

    # --- categories as a whole ---------------------------------------------------------------
    categories = [ln.vat_category for ln in computed] + [ac.vat_category for ac in normalised_ac]
    for category in dict.fromkeys(categories):
        if category in EXEMPTION_REASON_REQUIRED and not (reasons.get(category) or "").strip():
            v.add(
                f"exemption_reasons.{category}",
                f"VAT category {category} needs an exemption reason (BR-{_br(category)}-10)",
            )
        if category in SELLER_VAT_ID_REQUIRED and not seller.vat_id:
            v.add(
                "seller.vat_id",
                f"VAT category {category} needs the seller's VAT id (BR-{_br(category)}-02)",
            )
        if category == "K":
            v.add(
                "lines",
                "VAT category K (intra-community supply) needs a deliver-to country and delivery "
                "date (BR-IC-11/12), which Kanal does not carry",
            )
    if "O" in categories:
        if len(set(categories)) > 1:
            v.add("lines", "category O (not subject to VAT) cannot be mixed with others (BR-O-11)")
        if seller.vat_id:
            v.add(
                "seller.vat_id", "with category O the seller VAT identifier is not shown (BR-O-02)"
            )
        if buyer.vat_id:
            v.add("buyer.vat_id", "with category O the buyer VAT identifier is not shown (BR-O-02)")
    if "AE" in categories and not (buyer.vat_id or buyer.legal_id):
        v.add("buyer.vat_id", "reverse charge (AE) needs the buyer's VAT or legal id (BR-AE-03)")

    # --- payment -----------------------------------------------------------------------------
    if payment is not None:
        if payment.code not in PAYMENT_MEANS_CODES:
            v.add(
                "payment.code",
                f"{payment.code!r} is not a supported UNCL4461 payment means code "
                f"({', '.join(PAYMENT_MEANS_CODES)})",
            )
        elif payment.code in ACCOUNT_REQUIRED and not payment.account:
            v.add("payment.account", "a credit transfer needs the payee account (BR-61)")
    if prepaid < 0 or prepaid != prepaid.quantize(CENT):
        v.add("prepaid", "the paid amount must be a non-negative amount with 2 decimals")

    v.raise_if_any("invalid invoice")

    # --- arithmetic (input is valid from here on) ---------------------------------------------
    breakdown = _vat_breakdown(computed, normalised_ac, reasons)
    line_extension = sum((ln.net_amount for ln in computed), ZERO)
    allowances = sum((ac.amount for ac in normalised_ac if not ac.is_charge), ZERO)
    charges = sum((ac.amount for ac in normalised_ac if ac.is_charge), ZERO)
    tax_exclusive = line_extension - allowances + charges
    tax = sum((b.tax_amount for b in breakdown), ZERO)
    tax_inclusive = tax_exclusive + tax
    rounding = ZERO
    payable = tax_inclusive - prepaid + rounding
    totals = Totals(
        line_extension=line_extension,
        allowances=allowances,
        charges=charges,
        tax_exclusive=tax_exclusive,
        tax=tax,
        tax_inclusive=tax_inclusive,
        prepaid=round_money(prepaid),
        rounding=rounding,
        payable=payable,
    )

    if type_code == CREDIT_NOTE and tax_inclusive < 0:
        v.add(
            "lines",
            f"a credit note's amounts are positive (what is credited); its total came to "
            f"{tax_inclusive}: send credited quantities as positive numbers",
        )
    if payable > 0 and due_date is None and not payment_terms:
        v.add("due_date", "an amount is due, so a due date or payment terms are needed (BR-CO-25)")
    v.raise_if_any("invalid invoice")

    return Invoice(
        number=number,
        type_code=type_code,
        issue_date=issue_date,
        due_date=due_date,
        currency=currency,
        seller=seller,
        buyer=buyer,
        lines=tuple(computed),
        allowances_charges=tuple(normalised_ac),
        vat_breakdown=breakdown,
        totals=totals,
        payment=payment,
        buyer_reference=buyer_reference,
        order_reference=order_reference,
        preceding_invoice=preceding_invoice,
        note=note,
        payment_terms=payment_terms,
        period_start=period_start,
        period_end=period_end,
    )


def _vat_breakdown(
    lines: Sequence[InvoiceLine],
    allowances_charges: Sequence[AllowanceCharge],
    reasons: Mapping[str, str],
) -> tuple[VatBreakdown, ...]:
    """BG-23: one entry per (category, rate), in order of first appearance."""
    taxable: dict[tuple[str, Decimal | None], Decimal] = {}
    for ln in lines:
        key = (ln.vat_category, ln.vat_rate)
        taxable[key] = taxable.get(key, ZERO) + ln.net_amount
    for ac in allowances_charges:
        key = (ac.vat_category, ac.vat_rate)
        signed = ac.amount if ac.is_charge else -ac.amount
        taxable[key] = taxable.get(key, ZERO) + signed
    return tuple(
        VatBreakdown(
            category=category,
            rate=rate,
            taxable_amount=amount,
            tax_amount=vat_amount(amount, rate),
            exemption_reason=reasons.get(category)
            if category in EXEMPTION_REASON_REQUIRED
            else None,
        )
        for (category, rate), amount in taxable.items()
    )


def _check_vat(v: _Violations, path: str, category: str, rate: Decimal | None) -> Decimal | None:
    """Check one VAT category/rate pair; return the rate as the model stores it."""
    if category not in VAT_CATEGORIES:
        v.add(
            f"{path}.vat_category",
            f"{category!r} is not a UNCL5305 VAT category ({', '.join(sorted(VAT_CATEGORIES))})",
        )
        return rate
    if category in RATE_NOT_ALLOWED:
        if rate is not None and rate != 0:
            v.add(f"{path}.vat_rate", "category O (not subject to VAT) has no VAT rate (BR-O-05)")
        return None
    if rate is None:
        if category in RATE_REQUIRED:
            v.add(f"{path}.vat_rate", f"VAT category {category} needs a VAT rate")
            return None
        rate = Decimal(0)
    if rate < 0 or rate >= 100:
        v.add(f"{path}.vat_rate", "a VAT rate is a percentage between 0 and 100")
    elif category == "S" and rate <= 0:
        v.add(f"{path}.vat_rate", "standard rated (S) needs a VAT rate above zero (BR-S-05)")
    elif category in RATE_MUST_BE_ZERO and rate != 0:
        v.add(
            f"{path}.vat_rate",
            f"VAT category {category} has a VAT rate of 0 (BR-{_br(category)}-05)",
        )
    return rate


def _check_party(v: _Violations, role: str, party: Party) -> None:
    """BR-6/7 names, BR-8/10 addresses, BR-9/11 countries, BR-CO-09 VAT id prefix,
    BR-62/63 endpoint schemes."""
    if not party.name.strip():
        v.add(f"{role}.name", f"the {role}'s name is required (BR-{6 if role == 'seller' else 7})")
    if party.address is None:
        v.add(f"{role}.address", f"the {role}'s postal address is required")
    elif len(party.address.country) != 2 or not party.address.country.isalpha():
        v.add(f"{role}.address.country", "an ISO 3166-1 alpha-2 country code is required")
    if party.vat_id and not (party.vat_id[:2].isalpha() and party.vat_id[:2].isupper()):
        v.add(f"{role}.vat_id", "a VAT identifier starts with its country prefix (BR-CO-09)")
    if party.endpoint_id and not party.endpoint_scheme:
        v.add(f"{role}.endpoint_scheme", "an electronic address needs its scheme (BR-62/63)")
    if party.legal_id_scheme and not party.legal_id:
        v.add(f"{role}.legal_id", "a legal id scheme was given without the id")


def _br(category: str) -> str:
    """The BR rule-group name EN 16931 uses for a category (K is "IC", intra-community)."""
    return {"K": "IC", "L": "IG", "M": "IP"}.get(category, category)


class _Violations:
    """Collects field violations under one JSON-path prefix."""

    def __init__(self, prefix: str) -> None:
        self.prefix = prefix
        self.items: list[FieldViolation] = []

    def add(self, field: str, description: str) -> None:
        self.items.append(FieldViolation(f"{self.prefix}.{field}", description))

    def raise_if_any(self, message: str) -> None:
        if self.items:
            raise InvalidInput(message, self.items)
