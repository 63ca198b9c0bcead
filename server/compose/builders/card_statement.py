"""Credit-card invoice data -> `Content`: balances, minimum payment, reference, formatted context.

A card issuer's core system sends the period's facts (previous balance, payments received,
the transactions, interest and fees) and the rule for the minimum payment. Everything a
reader checks on the invoice is computed here, once, from those facts:

    purchases       = sum of the transactions' amounts (refunds are negative)
    new balance     = previous balance - payments received + purchases + interest + fees
    minimum payment = min(balance, max(floor, rate x balance)), rate x balance rounded to
                      whole currency units (half up); 0 when the balance is not positive
    amount due      = the new balance when positive, else 0 (a credit balance is not billed)

Nothing to pay (a new balance of 0 or below, `summary.nothing_to_pay`): every channel says
so in its own words (print, email and SMS: "du har 1 234,56 kr til gode", `credit_amount`)
and shows no payment slip, reference or minimum payment asking for 0.

and the payment reference gets its check digit (KID for NOK, OCR for SEK by default).
Every amount and date in the context is already formatted for the locale, so the print,
email and SMS templates only place text.

EN 16931 (for the e-invoice channel: Factur-X, or Peppol when the card holder has a Peppol id):
one line per figure the invoice adds up - the previous balance, each transaction (refunds as
quantity -1), the interest and each fee - and the payments received as the paid amount
(BT-113), so BT-115 (amount due for payment) is exactly the new balance. VAT decision: all
lines are category O, "not subject to VAT". Card transactions are payments made on the card
holder's behalf, not supplies by the issuer (outside the scope of VAT), and interest and fees
are exempt financial services (mva-loven § 3-6, ML 10 kap. 33 §); EN 16931 forbids mixing O
with other categories on one invoice (BR-O-11), and O, unlike E, needs no seller VAT id,
which a card issuer often does not have. The exemption reason (BT-120) says so, in the
document's language (`card_vat`). The issuer (seller, its electronic address BT-34 from
`peppol_id`, org number or VAT id) is read by `card_issuer`; an issuer's VAT id is never BT-31
here (BR-O-02 forbids it with category O).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from datetime import date
from decimal import ROUND_HALF_UP, Decimal
from typing import Any

from babel.numbers import get_currency_symbol

from server.compose import identifiers as ids
from server.compose.builders.base import (
    CENT,
    BuildRequest,
    Content,
    Formatter,
    amount,
    annual_rate,
    check_payment_term,
    foreign_amount,
    foreign_places,
    iso_date,
    labels,
    payment_account,
    payment_labels,
    payment_reference,
    payment_scheme,
    postal_address,
    recipient,
    return_line,
    sender_lines,
    window_lines,
)
from server.compose.builders.card_issuer import endpoint_source, issuer_party
from server.compose.builders.card_vat import not_subject_to_vat
from server.compose.builders.invoice import context_labels, register_label
from server.compose.builders.invoice_payment import is_fik, statement_means
from server.compose.formatting import babel_locale, check_currency
from server.compose.invoice import INVOICE, LineInput, compute_invoice
from server.compose.model import Invoice, Party, PaymentReference, Recipient
from server.compose.money import round_money
from server.compose.payments.accounts import PaymentAccount
from server.compose.payments.slips import SlipPaths, fill_names, payee_account, payment_slip
from server.compose.validation import renamer
from server.compose.validation.en16931 import due_before_issue
from server.errors import Gathered, InvalidInput

UNIT = Decimal("1")
MASK_CHARS = "*xX•"


def minimum_payment(balance: Decimal, rate_percent: Decimal, floor: Decimal) -> Decimal:
    """The least the card holder must pay, in the invoice currency: a share of the balance
    in whole units (`rate_percent` %, half up), at least the floor, never more than the
    balance itself; 0.00 when the balance is not positive. A positive balance never asks
    for 0: a share that rounds to 0 (3 % of 16.00 with a floor of 0) is one unit, or the
    balance when that is less, so the slip and the e-mail never say "minimum 0,00" while
    something is owed."""
    if balance <= 0:
        return Decimal("0.00")
    share = (balance * rate_percent / 100).quantize(UNIT, rounding=ROUND_HALF_UP)
    share = max(share, UNIT)
    return min(balance, max(floor, share)).quantize(CENT, rounding=ROUND_HALF_UP)


def rate_places(rate: Decimal) -> int:
    """Decimals that print a conversion rate with at least 4 significant digits: 4 for a rate
    of 0.1 or more (11,3755 NOK per EUR), more below (0,0006540 NOK per IDR, 4 decimals
    printed 0,0007; at most 10)."""
    return min(10, max(4, 3 - rate.adjusted()))


def _transaction_date(value: Any, path: str, invoice_date: date) -> date:
    day = iso_date(value, path)
    if day > invoice_date:
        raise InvalidInput.field(
            path, f"{day.isoformat()} is after the invoice date {invoice_date.isoformat()} "
            "($.invoice.invoice_date): a statement bills only transactions made by the day "
            "it is issued")
    return day


def masked_card(value: str, path: str) -> str:
    """'5213 88** **** 4821' -> '5213 88•• •••• 4821'. A full card number must never reach
    a document (PCI DSS: at most the first six and last four digits may be shown)."""
    compact = "".join(value.split())
    digits = sum(c.isdigit() for c in compact)
    masked = sum(c in MASK_CHARS for c in compact)
    if not 13 <= len(compact) <= 19 or digits + masked != len(compact):
        raise InvalidInput.field(path, "must be a masked card number like '5213 88** **** 4821'")
    if digits > 10 or not compact[-4:].isdigit():
        raise InvalidInput.field(
            path, "must be masked: at most the first 6 and the last 4 digits may be shown"
        )
    shown = "".join("•" if c in MASK_CHARS else c for c in compact)
    return " ".join(shown[i : i + 4] for i in range(0, len(shown), 4))


def _transactions(
    rows: list[Mapping[str, Any]], fmt: Formatter, invoice_date: date
) -> tuple[list[dict[str, Any]], list[Decimal], Decimal, Decimal]:
    """Transaction rows for the table, their amounts, and the sums of purchases and of
    refunds. A transaction dated after the invoice date is refused at its `date` (a
    statement cannot bill what had not happened when it was issued); one dated before the
    period start is kept: a purchase is posted days after it was made (posting lag), so the
    statement after its posting date carries it. Every bad transaction is named (`Gathered`),
    each at its first bad field."""
    out: list[dict[str, Any]] = []
    values: list[Decimal] = []
    gathered = Gathered("invalid transactions")
    for i, row in enumerate(rows):
        with gathered:  # every bad transaction is named, each at its first bad field
            shown, value = _transaction(row, f"$.transactions[{i}]", fmt, invoice_date)
            out.append(shown)
            values.append(value)
    gathered.raise_any()
    purchases = sum((v for v in values if v >= 0), Decimal("0"))
    refunds = sum((v for v in values if v < 0), Decimal("0"))
    return out, values, purchases, refunds


def _transaction(row: Mapping[str, Any], path: str, fmt: Formatter,
                 invoice_date: date) -> tuple[dict[str, Any], Decimal]:
    """One transaction's table row and its amount; `InvalidInput` at the row's first bad
    field. Its `original` (the amount before conversion) is in another currency than the
    invoice's, with that currency's ISO 4217 decimals (`foreign_places`)."""
    value = amount(row["amount"], f"{path}.amount", allow_negative=True, currency=fmt.currency)
    foreign = rate = None
    if original := row.get("original"):
        code = check_currency(original["currency"], f"{path}.original.currency")
        if code == fmt.currency:  # nothing was converted: a rate of 1 printed as a fact
            raise InvalidInput.field(
                f"{path}.original.currency", f"is the invoice's own currency ({code}, "
                "$.currency): an original amount is the amount in the currency a transaction "
                f"was made in when it was converted; leave original out of a {code} transaction")
        places = foreign_places(code, f"{path}.original.currency")
        orig = foreign_amount(original["amount"], f"{path}.original.amount", code, places,
                              allow_negative=True)
        if orig == 0 or (orig < 0) != (value < 0):
            raise InvalidInput.field(
                f"{path}.original.amount", "must be non-zero and have the sign of amount"
            )
        foreign = fmt.money_code(orig, code, places)
        factor = abs(value / orig)
        rate = fmt.number(factor, places=rate_places(factor))
    return {
        "date": fmt.day(_transaction_date(row["date"], f"{path}.date", invoice_date)),
        "description": row["description"],
        "place": row.get("place"),
        "amount": fmt.number(value),
        "is_credit": value < 0,
        "foreign": foreign,
        "rate": rate,
    }, value


def _line(i: int, name: str, value: Decimal, description: str | None = None) -> LineInput:
    """A line whose net amount is `value`: quantity -1 for a negative amount (BR-27: the
    price itself is never negative)."""
    return LineInput(
        id=str(i), name=name.strip()[:200], quantity=Decimal(-1 if value < 0 else 1),
        unit_code="C62", unit_price=abs(value), vat_category="O", vat_rate=None,
        description=description.strip() or None if description else None,
    )


_RENAMES = renamer((
    ("seller.legal_id", "issuer.org_number"), ("seller", "issuer"),
    ("buyer.endpoint_id", "customer.peppol_id"), ("buyer.endpoint_scheme", "customer.peppol_id"),
    ("buyer", "customer"), ("buyer_reference", "card_account.account_number"),
    ("prepaid", "invoice.payments_received"),
    ("due_date", "invoice.due_date"), ("period_start", "invoice.period_start"),
    ("period_end", "invoice.period_end"), ("number", "invoice.number"),
    ("issue_date", "invoice.invoice_date"),
))


def _where(transactions: int, has_interest: bool, fik: bool,
           endpoint: str = "$.issuer.org_number") -> Callable[[str], str]:
    """Model path of the card invoice's EN 16931 form -> the JSON path of the card data:
    line 1 is the previous balance, then one line per transaction, the interest, the fees.
    The one payment means comes from `$.payment` (its reference; for a FIK line the code 93
    and the creditor number too) and else from `$.issuer.payment_account` (code, account).
    The seller's electronic address (BT-34) is named at `endpoint` (`endpoint_source`)."""
    def where(path: str) -> str:
        if path.startswith(("seller.endpoint_id", "seller.endpoint_scheme")):
            return endpoint
        if path == "lines":  # a sum of the lines (BT-106, BT-112, ...)
            return "$.transactions"
        head, _, rest = path.partition(".")
        if head.startswith("lines["):
            i = int(head[6:-1])
            if i == 0:
                return "$.invoice.previous_balance"
            if i <= transactions:
                return f"$.transactions[{i - 1}]" + (".description" if rest == "name" else "")
            if has_interest and i == transactions + 1:
                return "$.interest"
            return f"$.fees[{i - transactions - 1 - int(has_interest)}]"
        if head.startswith("payment_means["):
            if rest.startswith("reference"):
                return "$.payment"
            if fik:
                return "$.payment.creditor_number" if rest == "account" else "$.payment"
            return "$.issuer.payment_account"
        return f"$.{_RENAMES(path)}"
    return where


def en16931_invoice(
    data: Mapping[str, Any], customer: Recipient, text: Mapping[str, str], *,
    previous: Decimal, payments: Decimal, interest: Decimal | None,
    fees: list[tuple[str, Decimal]], account: PaymentAccount, reference: PaymentReference,
    amounts: list[Decimal], locale: str,
) -> Invoice:
    """The card invoice as an EN 16931 invoice (see the module docstring for the mapping).
    `account`: the issuer's checked payment account (BT-84, and its BIC as BT-86);
    `amounts`: the transactions' amounts as `_transactions` read and rounded them;
    `locale`: the document's, the language of the exemption reason (BT-120, `card_vat`)."""
    issuer, inv = data["issuer"], data["invoice"]
    seller = issuer_party(issuer)
    endpoint_scheme = endpoint_id = None
    if customer.peppol_id:  # one that addresses no one was refused by `recipient`
        endpoint_scheme, endpoint_id = ids.peppol_id(customer.peppol_id)
    lines = [_line(1, text["previous_balance"], previous)]
    for row, value in zip(data["transactions"], amounts, strict=True):
        # a blank descriptor is absent: the line is then named for what it is
        name = (row["description"] or "").strip() or text.get("transaction", "Transaction")
        lines.append(_line(len(lines) + 1, name, value,
                           f"{row['date']} {(row.get('place') or '').strip()}".strip()))
    if interest is not None:
        lines.append(_line(len(lines) + 1, text["interest"], interest))
    for description, value in fees:
        lines.append(_line(len(lines) + 1, description, value))
    return compute_invoice(
        number=inv["number"], type_code=INVOICE,
        issue_date=iso_date(inv["invoice_date"], "$.invoice.invoice_date"),
        due_date=iso_date(inv["due_date"], "$.invoice.due_date"),
        currency=data["currency"],
        seller=seller,
        buyer=Party(name=customer.name.strip(), address=customer.address,
                    endpoint_id=endpoint_id, endpoint_scheme=endpoint_scheme),
        lines=lines,
        # the BIC too: the Finnish form prints it and a receiver's bank routes by it
        # (UBL FinancialInstitutionBranch, CII BICID, Finvoice EpiBfiIdentifier)
        payment=statement_means(account, reference, issuer["name"].strip() or None,
                                seller.address.country,
                                customer.address.country if customer.address else None),
        prepaid=payments,
        buyer_reference=data["card_account"]["account_number"].strip() or None,
        exemption_reasons={"O": not_subject_to_vat(locale)},
        period_start=iso_date(inv["period_start"], "$.invoice.period_start"),
        period_end=iso_date(inv["period_end"], "$.invoice.period_end"),
        where=_where(len(data["transactions"]), interest is not None, is_fik(reference),
                     endpoint_source(issuer)),
    )


def _check_order(first: date, then: date, path: str, what: str) -> None:
    if then < first:
        raise InvalidInput.field(path, f"must not be before {what}")


def build(data: Mapping[str, Any], request: BuildRequest) -> Content:
    currency = check_currency(data["currency"], "$.currency")
    fmt = Formatter(request.locale, currency)
    text = labels(request.layout, request.locale)
    issuer, card, inv = data["issuer"], data["card_account"], data["invoice"]
    sender_country = issuer["address"]["country"]
    customer = recipient(data["customer"], sender_country=sender_country)
    issuer_address = postal_address(issuer["address"])

    invoice_date = iso_date(inv["invoice_date"], "$.invoice.invoice_date")
    due_date = iso_date(inv["due_date"], "$.invoice.due_date")
    period_start = iso_date(inv["period_start"], "$.invoice.period_start")
    period_end = iso_date(inv["period_end"], "$.invoice.period_end")
    _check_order(period_start, period_end, "$.invoice.period_end", "period_start")
    misdated = due_before_issue(invoice_date, due_date, request.today,
                                issued_at="$.invoice.invoice_date", due_at="$.invoice.due_date")
    if misdated:  # named at the date more likely mistyped, the reason giving both
        raise InvalidInput.field("$.invoice.invoice_date" if misdated[0] else
                                 "$.invoice.due_date", misdated[1])
    check_payment_term(due_date, invoice_date, "$.invoice.due_date", "invoice date")

    # every amount has the currency's decimals when read (base.amount), and is only summed
    previous = amount(inv["previous_balance"], "$.invoice.previous_balance",
                      allow_negative=True, currency=currency)
    payments = amount(inv["payments_received"], "$.invoice.payments_received",
                      currency=currency)
    rows, amounts, purchases, refunds = _transactions(data["transactions"], fmt, invoice_date)
    interest_data = data.get("interest")
    interest = (amount(interest_data["amount"], "$.interest.amount", currency=currency)
                if interest_data else None)
    fees = []
    gathered = Gathered("invalid fees")
    for i, fee in enumerate(data.get("fees", [])):
        with gathered:
            fees.append((fee["description"],
                         amount(fee["amount"], f"$.fees[{i}].amount", currency=currency)))
    gathered.raise_any()
    fees_total = sum((value for _, value in fees), Decimal("0"))

    balance = round_money(previous - payments + purchases + refunds + (interest or 0)
                          + fees_total, currency)
    rule = data["minimum_payment"]
    rate = amount(rule["rate_percent"], "$.minimum_payment.rate_percent")
    if rate > 100:
        raise InvalidInput.field("$.minimum_payment.rate_percent", "must be at most 100")
    minimum = minimum_payment(balance, rate, amount(rule["floor"], "$.minimum_payment.floor",
                                                    currency=currency))
    amount_due = max(balance, Decimal("0.00"))
    limit = amount(card["credit_limit"], "$.card_account.credit_limit", currency=currency)
    account = payment_account(issuer["payment_account"], "$.issuer.payment_account")
    reference = payment_reference(data["payment"], currency, sender_country)
    units, cents = fmt.giro_amount(amount_due)
    slip = payment_slip(
        shared_path=request.layout.shared_path, locale=request.locale, reference=reference,
        account=account, currency=currency, amount=amount_due,
        amount_text=fmt.money(amount_due), due_date=due_date, due_text=fmt.day(due_date),
        payee_name=issuer["name"],
        paths=SlipPaths("$.issuer.payment_account", due_date="$.invoice.due_date"))
    names = fill_names(payment_labels(text, reference, account), slip)

    context: dict[str, Any] = {
        # "Beløp ({currency})": the column names the document's currency as the locale
        # writes it (kr, kr., €, zł, £)
        "labels": {**context_labels(text), "col_amount": text["col_amount"].format(
            currency=get_currency_symbol(currency, locale=babel_locale(request.locale)))},
        "currency": currency,
        "return_line": return_line(issuer["name"], issuer_address,
                                   customer.address.country if customer.address else None),
        "issuer": {
            "name": issuer["name"],
            "org_number": issuer["org_number"],
            # the register of the issuer's country in the document's language (2.2.0:
            # "Registernr. (Foretaksregisteret)" for a Norwegian issuer on a de-DE invoice)
            "register_label": register_label(text, sender_country),
            "address_lines": sender_lines(issuer_address),
            "phone": issuer["customer_service"]["phone"],
            "web": issuer["customer_service"]["web"],
            "email": issuer["customer_service"].get("email"),
        },
        "window": window_lines(customer, sender_country),
        "customer": {"customer_id": customer.customer_id, "name": customer.name},
        "card": {
            "product": card["product"],
            "account_number": card["account_number"],
            "masked_number": masked_card(
                card["masked_card_number"], "$.card_account.masked_card_number"
            ),
            "holder": card.get("card_holder") or customer.name,
            "credit_limit": fmt.money(limit),
            "available_credit": fmt.money(max(limit - balance, Decimal("0"))),
            "interest_rate": (
                fmt.percent(annual_rate(card["nominal_interest_percent"],
                                        "$.card_account.nominal_interest_percent"))
                if "nominal_interest_percent" in card else None
            ),
        },
        "invoice": {
            "number": inv["number"],
            "date": fmt.day(invoice_date),
            "due_date": fmt.day(due_date),
            "period_start": fmt.day(period_start),
            "period_end": fmt.day(period_end),
        },
        "transactions": rows,
        "summary": {
            "previous_balance": fmt.money(previous),
            "payments": fmt.money(-payments),
            "purchases": fmt.money(purchases),
            "refunds": fmt.money(refunds) if refunds else None,
            "interest": fmt.money(interest) if interest is not None else None,
            "interest_text": (interest_data or {}).get("description") or text["interest"],
            "fees": [{"description": d, "amount": fmt.money(v)} for d, v in fees],
            "transactions_total": fmt.number(purchases + refunds),
            "new_balance": fmt.money(balance),
            "minimum_payment": fmt.money(minimum),
            "amount_due": fmt.money(amount_due),
            "is_credit_balance": balance < 0,
            "nothing_to_pay": balance <= 0,
            "credit_amount": fmt.money(-balance) if balance < 0 else None,
        },
        "payment": {
            "account": account.display,
            "account_kind": account.kind,
            "reference": reference.display,
            "reference_value": reference.value,
            **names,
            **payee_account(names, account, account.display),
            "slip": slip,
            "amount": fmt.money(amount_due),
            "amount_units": units,
            "amount_cents": cents,
            "minimum": fmt.money(minimum),
            "due_date": fmt.day(due_date),
        },
    }
    return Content(
        recipient=customer,
        context=context,
        sender_country=sender_country,
        currency=currency,
        invoice=en16931_invoice(
            data, customer, text, previous=previous, payments=payments, interest=interest,
            fees=fees, account=account, reference=reference, amounts=amounts,
            locale=request.locale,
        ),
        payment_reference=reference,
        payment_scheme=payment_scheme(data["payment"], reference, account,
                                      "$.issuer.payment_account"),
        invoice_paths=_where(len(data["transactions"]), interest is not None,
                             is_fik(reference), endpoint_source(data["issuer"])),
        due_date=due_date,
        amount_due=amount_due,
        facts={
            "segment": card.get("segment", "private"),
            "country": customer.address.country if customer.address else sender_country,
            "product": card["product"],
            "credit_balance": balance < 0,
        },
    )
