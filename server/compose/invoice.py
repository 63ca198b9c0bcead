"""An invoice's input -> an EN 16931 `Invoice` with every amount computed, exactly once.

Every amount an e-invoice, a PDF, an e-mail or an SMS shows is decided here, at composition
time, and nowhere else: the channel renderers (UBL, CII, Finvoice, print) copy these numbers
and never add anything up themselves, so the figures on paper and in the XML cannot drift.

The arithmetic is EN 16931's, rounded by Kanal's one money rule (`server.compose.money`:
half away from zero to the currency's minor unit, once per computed amount):

* line allowance/charge (BT-136/141) = given, or round(base x percent / 100);
* item net price (BT-146) = given, or gross price (BT-148) - price discount (BT-147);
* line net amount (BT-131) = round(quantity x net price / base quantity)
  + line charges - line allowances (PEPPOL-EN16931-R120);
* document allowance/charge (BT-92/99) = given, or round(base x percent / 100);
* VAT breakdown (BG-23): one entry per (VAT category, rate); taxable amount (BT-116) = the
  line nets of that category + its document charges - its document allowances; the VAT
  amount (BT-117) = round(taxable x rate / 100) (BR-CO-17);
* BT-106 = sum of line nets (BR-CO-10), BT-107/108 = sum of allowances/charges
  (BR-CO-11/12), BT-109 = 106 - 107 + 108 (BR-CO-13), BT-110 = sum of the category VAT
  amounts (BR-CO-14), BT-112 = 109 + 110 (BR-CO-15), BT-115 = 112 - 113 + 114 (BR-CO-16);
* BT-111 (VAT total in the VAT accounting currency BT-6) = given, or round(BT-110 x rate);
* BT-114 (rounding amount) = given, or what brings BT-115 to a multiple of
  `round_payable_to` (öre rounding: SEK to whole kronor, DKK to 50 øre).

Money is `Decimal` throughout; a float never touches an amount. Every product is computed
exactly and rounded once (Decimal's default 28 digits would round a long product first, and
a cent could go: `_EXACT`), and a computed amount with more digits before the point than
any amount may have (`money.MAX_AMOUNT_DIGITS`, 15: Finvoice's limit) is refused at the JSON
path it came from (`server.compose.amount_sizes`, INVALID_ARGUMENT "amounts too large to
compute exactly"): a line's at its quantity, or at the percentage an allowance or charge was
computed from; a sum of lines each within the limit (BT-106, BT-116, BT-112, ...) at `lines`,
naming the business term and the limit.

The input is checked afterwards, on the whole computed invoice, by
`server.compose.validation` (EN 16931 BR-* here, Peppol and national rules when the
e-invoice goes over Peppol): the arithmetic never fails on bad data, it just computes, so
that every violation can be reported at once, each with its JSON path and its rule id.

Credit notes (a UBL `CreditNote` type such as 381) are written with positive amounts: a
caller sends what is credited and the document type carries the sign. An invoice (380)
may have negative lines and a negative total (a negative invoice corrects an earlier one).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date
from decimal import (
    ROUND_HALF_UP,
    Context,
    Decimal,
    DivisionByZero,
    Inexact,
    InvalidOperation,
    Overflow,
    localcontext,
)

from server.compose import amount_sizes
from server.compose.en16931 import (
    AllowanceCharge,
    Attachment,
    Delivery,
    Identifier,
    Invoice,
    InvoiceLine,
    ItemAttribute,
    LineAllowanceCharge,
    Party,
    Payee,
    PaymentMeans,
    PrecedingInvoice,
    TaxRepresentative,
    Totals,
    VatBreakdown,
)
from server.compose.money import ZERO, round_money, round_to_increment

INVOICE = "380"  # UNCL1001 commercial invoice
CREDIT_NOTE = "381"  # UNCL1001 credit note

# Categories whose VAT rate is 0 by definition (BR-Z-05, BR-E-05, BR-AE-05, BR-IC-05,
# BR-G-05) and "not subject to VAT", which has no rate at all (BR-O-05).
ZERO_RATED = frozenset({"Z", "E", "AE", "K", "G"})
NO_RATE = frozenset({"O"})
# Categories that carry an exemption reason (BR-E-10, BR-AE-10, BR-IC-10, BR-G-10, BR-O-10);
# the others must not have one (BR-S-10, BR-Z-10, BR-IG-10, BR-IP-10).
EXEMPTION_REASON_REQUIRED = frozenset({"E", "AE", "K", "G", "O"})


@dataclass(frozen=True)
class LineInput:
    """One invoice line as the caller sends it, before any arithmetic (BG-25 without BT-131).

    `unit_price` is the net price (BT-146); give `gross_price` (BT-148) with an optional
    `price_discount` (BT-147) instead, and the net price is their difference.
    """

    id: str
    name: str
    quantity: Decimal
    unit_code: str
    unit_price: Decimal | None
    vat_category: str
    vat_rate: Decimal | None
    description: str | None = None
    period_start: date | None = None
    period_end: date | None = None
    note: str | None = None
    object_id: Identifier | None = None
    order_line_reference: str | None = None
    accounting_reference: str | None = None
    # amount None: computed from base_amount x percent / 100
    allowances_charges: Sequence[LineAllowanceCharge] = ()
    gross_price: Decimal | None = None
    price_discount: Decimal | None = None
    base_quantity: Decimal | None = None
    seller_item_id: str | None = None
    buyer_item_id: str | None = None
    standard_item_id: Identifier | None = None
    classifications: Sequence[Identifier] = ()
    origin_country: str | None = None
    attributes: Sequence[ItemAttribute] = ()


@dataclass(frozen=True)
class VatAccounting:
    """BT-6 and how BT-111 is found: the amount itself, or the exchange rate to apply."""

    currency: str
    tax_total: Decimal | None = None
    exchange_rate: Decimal | None = None


@dataclass(frozen=True)
class Details:
    """The invoice's references, parties and attachments that need no arithmetic; they go
    into the `Invoice` as given (already normalised by the builder)."""

    buyer_reference: str | None = None
    order_reference: str | None = None
    preceding_invoices: Sequence[PrecedingInvoice] = ()
    note: str | None = None
    note_subject: str | None = None
    payment_terms: str | None = None
    period_start: date | None = None
    period_end: date | None = None
    tax_point_date: date | None = None
    tax_point_code: str | None = None
    project_reference: str | None = None
    contract_reference: str | None = None
    sales_order_reference: str | None = None
    receiving_advice_reference: str | None = None
    despatch_advice_reference: str | None = None
    tender_reference: str | None = None
    invoiced_object: Identifier | None = None
    accounting_reference: str | None = None
    payee: Payee | None = None
    tax_representative: TaxRepresentative | None = None
    delivery: Delivery | None = None
    attachments: Sequence[Attachment] = ()
    exemption_reasons: Mapping[str, str] = field(default_factory=dict)  # category -> BT-120
    exemption_codes: Mapping[str, str] = field(default_factory=dict)  # category -> BT-121


# Products are computed exactly, then rounded once. Decimal's default context keeps 28
# significant digits and rounds a longer product silently before the rounding to cents:
# 739181059823.204858 x 9679317715601.108232 (37 digits) came to ...672.38, not ...672.37.
# A number the data admits has at most 28 significant digits (`server.compose.data`), so a
# product of two has at most 56: `_EXACT` holds it, and traps `Inexact` should a caller
# ever pass factors whose product needs more than 100. A quotient by 100 terminates; one by
# a base quantity may not, and to 100 digits (some 40 beyond the cent) it rounds to the cent
# as the exact value does: a quotient of numbers of at most 28 digits that does not
# terminate has no 28 nines or zeros in a row, so it never comes that close to a half cent.
_TRAPS = [InvalidOperation, DivisionByZero, Overflow]  # as Decimal's default context
_EXACT = Context(prec=100, rounding=ROUND_HALF_UP, traps=[*_TRAPS, Inexact])
_WIDE = Context(prec=100, rounding=ROUND_HALF_UP, traps=_TRAPS)
_HUNDRED = Decimal(100)


def _rounded(value: Decimal, currency: str) -> Decimal:
    """`round_money` within `_WIDE`: a long amount's cents fit (28 digits may not)."""
    with localcontext(_WIDE):
        return round_money(value, currency)


def line_net_amount(quantity: Decimal, unit_price: Decimal, currency: str = "NOK",
                    base_quantity: Decimal | None = None) -> Decimal:
    """BT-131 before line allowances and charges: quantity x price / base quantity (none or
    0: 1, and no division: a division by 1 is exact and the rounding writes the same),
    computed exactly and rounded once (`server.compose.money`), whatever its size:
    `compute_invoice` refuses a line whose amount has more than `MAX_AMOUNT_DIGITS` digits
    before the point. Raises `decimal.Inexact` should the product need more than 100 digits
    (factors of 28 digits at most, as the data admits, need 56)."""
    net = _EXACT.multiply(quantity, unit_price)
    return _rounded(_WIDE.divide(net, base_quantity) if base_quantity else net, currency)


def vat_amount(taxable: Decimal, rate: Decimal | None, currency: str = "NOK") -> Decimal:
    """BT-117 = BT-116 x BT-119 / 100, computed exactly and rounded once (BR-CO-17)."""
    if rate is None:
        return ZERO
    return _rounded(_WIDE.divide(_EXACT.multiply(taxable, rate), _HUNDRED), currency)


def percent_of(base: Decimal, percent: Decimal, currency: str) -> Decimal:
    """An allowance or charge given as a percentage of a base amount (BT-92 = 93 x 94 / 100),
    computed exactly and rounded once."""
    return _rounded(_WIDE.divide(_EXACT.multiply(base, percent), _HUNDRED), currency)


def model_rate(category: str, rate: Decimal | None) -> Decimal | None:
    """The rate as the model stores it: none for O, 0 for zero-rated categories left empty."""
    if category in NO_RATE:
        return None
    if rate is None and category in ZERO_RATED:
        return Decimal(0)
    return rate


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
    payment: PaymentMeans | None = None,
    payment_means: Sequence[PaymentMeans] = (),
    prepaid: Decimal = ZERO,
    rounding: Decimal | None = None,
    round_payable_to: Decimal | None = None,
    vat_accounting: VatAccounting | None = None,
    details: Details | None = None,
    check: bool = True,
    where: Callable[[str], str] | None = None,
    today: date | None = None,
    **detail_fields: object,
) -> Invoice:
    """Compute line nets, allowances, the VAT breakdown and the totals; return the `Invoice`.

    `payment` is a single payment means; `payment_means` several (the first is the main one).
    References and other pass-through data come in `details` (or as keyword arguments named
    like `Details` fields). With `check` (the default) the result is validated against EN
    16931 (`server.compose.validation.check_en16931`) and `InvalidInput` lists every
    violation, each at the JSON path `where(model_path)` returns (default `$.<model path>`);
    `today` (the composition date) tells it which of an issue date and an earlier due date
    to name (`validation.en16931.due_before_issue`).
    """
    info = details or Details(**detail_fields)  # type: ignore[arg-type]
    if details is not None and detail_fields:
        raise TypeError("give either details= or detail keyword arguments, not both")
    computed = tuple(_line(line, currency) for line in lines)
    document_ac = tuple(_document_allowance_charge(ac, currency) for ac in allowances_charges)
    at = where or (lambda path: f"$.{path}")
    amount_sizes.check_lines(computed, document_ac, at)
    breakdown = _vat_breakdown(computed, document_ac, currency, info)

    line_extension = sum((ln.net_amount for ln in computed), ZERO)
    allowances = sum((ac.amount for ac in document_ac if not ac.is_charge), ZERO)
    charges = sum((ac.amount for ac in document_ac if ac.is_charge), ZERO)
    tax_exclusive = line_extension - allowances + charges
    tax = sum((b.tax_amount for b in breakdown), ZERO)
    tax_inclusive = tax_exclusive + tax
    prepaid = round_money(prepaid, currency)
    if rounding is None:
        rounding = ZERO
        if round_payable_to:
            due = tax_inclusive - prepaid
            rounding = round_to_increment(due, round_payable_to) - due
    rounding = round_money(rounding, currency)
    tax_accounting = None
    if vat_accounting is not None:
        if vat_accounting.tax_total is not None:
            tax_accounting = round_money(vat_accounting.tax_total, vat_accounting.currency)
        elif vat_accounting.exchange_rate is not None:
            tax_accounting = _rounded(_EXACT.multiply(tax, vat_accounting.exchange_rate),
                                      vat_accounting.currency)
    totals = Totals(
        line_extension=round_money(line_extension, currency),
        allowances=round_money(allowances, currency),
        charges=round_money(charges, currency),
        tax_exclusive=round_money(tax_exclusive, currency),
        tax=round_money(tax, currency),
        tax_inclusive=round_money(tax_inclusive, currency),
        prepaid=prepaid,
        rounding=rounding,
        payable=round_money(tax_inclusive - prepaid + rounding, currency),
        tax_in_accounting_currency=tax_accounting,
    )
    amount_sizes.check_totals(totals, breakdown, at)
    means = tuple(payment_means) or ((payment,) if payment is not None else ())
    invoice = Invoice(
        number=number,
        type_code=type_code,
        issue_date=issue_date,
        due_date=due_date,
        currency=currency,
        seller=seller,
        buyer=buyer,
        lines=computed,
        allowances_charges=document_ac,
        vat_breakdown=breakdown,
        totals=totals,
        payment_means=means,
        buyer_reference=info.buyer_reference,
        order_reference=info.order_reference,
        preceding_invoices=tuple(info.preceding_invoices),
        note=info.note,
        note_subject=info.note_subject,
        payment_terms=info.payment_terms,
        period_start=info.period_start,
        period_end=info.period_end,
        tax_currency=vat_accounting.currency if vat_accounting else None,
        tax_point_date=info.tax_point_date,
        tax_point_code=info.tax_point_code,
        project_reference=info.project_reference,
        contract_reference=info.contract_reference,
        sales_order_reference=info.sales_order_reference,
        receiving_advice_reference=info.receiving_advice_reference,
        despatch_advice_reference=info.despatch_advice_reference,
        tender_reference=info.tender_reference,
        invoiced_object=info.invoiced_object,
        accounting_reference=info.accounting_reference,
        payee=info.payee,
        tax_representative=info.tax_representative,
        delivery=info.delivery,
        attachments=tuple(info.attachments),
    )
    if check:
        from server.compose.validation import raise_if_invalid

        raise_if_invalid(invoice, where=where, inputs=lines, document_ac=allowances_charges,
                         vat_accounting=vat_accounting, info=info, today=today)
    return invoice


def _line(line: LineInput, currency: str) -> InvoiceLine:
    net_price = line.unit_price
    if net_price is None:
        net_price = (line.gross_price or ZERO) - (line.price_discount or ZERO)
    net = line_net_amount(line.quantity, net_price, currency, line.base_quantity)
    line_ac: tuple[LineAllowanceCharge, ...] = ()
    if line.allowances_charges:  # most lines have none: their net is already rounded
        line_ac = tuple(
            LineAllowanceCharge(
                is_charge=ac.is_charge,
                amount=_ac_amount(ac.amount, ac.base_amount, ac.percent, currency),
                reason=ac.reason, reason_code=ac.reason_code,
                base_amount=ac.base_amount, percent=ac.percent,
            )
            for ac in line.allowances_charges
        )
        with localcontext(_WIDE):  # exact, however long the net amount (amount_sizes.check_lines)
            net = round_money(
                net + sum((ac.amount if ac.is_charge else -ac.amount for ac in line_ac), ZERO),
                currency)
    return InvoiceLine(
        id=line.id, name=line.name, quantity=line.quantity, unit_code=line.unit_code,
        unit_price=net_price, net_amount=net,
        vat_category=line.vat_category, vat_rate=model_rate(line.vat_category, line.vat_rate),
        description=line.description, period_start=line.period_start,
        period_end=line.period_end, note=line.note, object_id=line.object_id,
        order_line_reference=line.order_line_reference,
        accounting_reference=line.accounting_reference, allowances_charges=line_ac,
        price_discount=line.price_discount, gross_price=line.gross_price,
        base_quantity=line.base_quantity, seller_item_id=line.seller_item_id,
        buyer_item_id=line.buyer_item_id, standard_item_id=line.standard_item_id,
        classifications=tuple(line.classifications), origin_country=line.origin_country,
        attributes=tuple(line.attributes),
    )


def _ac_amount(amount: Decimal | None, base: Decimal | None, percent: Decimal | None,
               currency: str) -> Decimal:
    if amount is not None:
        return amount  # checked for its decimals (BR-DEC) by the validation, never rounded
    if base is not None and percent is not None:
        return percent_of(base, percent, currency)
    return ZERO


def _document_allowance_charge(ac: AllowanceCharge, currency: str) -> AllowanceCharge:
    return AllowanceCharge(
        is_charge=ac.is_charge,
        amount=_ac_amount(ac.amount, ac.base_amount, ac.percent, currency),
        reason=ac.reason or None,
        vat_category=ac.vat_category,
        vat_rate=model_rate(ac.vat_category, ac.vat_rate),
        reason_code=ac.reason_code,
        base_amount=ac.base_amount,
        percent=ac.percent,
    )


def _vat_breakdown(
    lines: Sequence[InvoiceLine],
    allowances_charges: Sequence[AllowanceCharge],
    currency: str,
    info: Details,
) -> tuple[VatBreakdown, ...]:
    """BG-23: one entry per (category, rate), in order of first appearance."""
    taxable: dict[tuple[str, Decimal | None], Decimal] = {}
    for ln in lines:
        key = (ln.vat_category, ln.vat_rate)
        taxable[key] = taxable.get(key, ZERO) + ln.net_amount
    for ac in allowances_charges:
        key = (ac.vat_category, ac.vat_rate)
        taxable[key] = taxable.get(key, ZERO) + (ac.amount if ac.is_charge else -ac.amount)
    entries = []
    for (category, rate), amount in taxable.items():
        exempt = category in EXEMPTION_REASON_REQUIRED
        entries.append(VatBreakdown(
            category=category,
            rate=rate,
            taxable_amount=round_money(amount, currency),
            tax_amount=vat_amount(amount, rate, currency),
            exemption_reason=(info.exemption_reasons.get(category) or None) if exempt else None,
            exemption_reason_code=(info.exemption_codes.get(category) or None)
            if exempt else None,
        ))
    return tuple(entries)
