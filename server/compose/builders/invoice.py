"""Business invoice / credit note data -> `Content` with an EN 16931 `Invoice` (layout b2b-invoice).

The input is the EN 16931 semantic model in a biller's words (`invoice_input` reads it and
says which field is which business term). The arithmetic happens once, in
`server.compose.invoice.compute_invoice`; this module turns the computed invoice into the
locale-formatted print context, so the PDF, the e-invoice (UBL / CII / Finvoice) and any
other channel show the same figures, and tells the composer where each model value came
from in the input (`Content.invoice_paths`) for the e-invoice rules checked later.

Electronic addresses: `peppol_id` ("0192:923609016", EAS code + identifier) becomes the
endpoint id and scheme (BT-34 / BT-49), normalised for its scheme. A credit note
(`type = "credit_note"`, or a credit note `type_code`) is written with positive amounts and
a reference to the invoice it credits, and its document kind is `credit_note` everywhere the
kind matters (index, portal filters, retention, insert and campaign rules), though the
layout's kind is `invoice`.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from decimal import Decimal
from typing import Any

from server.compose.builders.base import (
    BuildRequest,
    Content,
    Formatter,
    labels,
    payment_account,
    payment_labels,
    payment_scheme,
    recipient,
    return_line,
    sender_lines,
    window_lines,
)
from server.compose.builders.invoice_input import read_invoice, where
from server.compose.builders.invoice_reader import text
from server.compose.en16931 import Invoice
from server.compose.formatting import check_currency
from server.compose.model import DocumentKind
from server.compose.money import round_places
from server.compose.payments.slips import SlipPaths, fill_names, payee_account, payment_slip
from server.compose.units import unit_word


def build(data: Mapping[str, Any], request: BuildRequest) -> Content:
    currency = check_currency(data["currency"], "$.currency")
    fmt = Formatter(request.locale, currency)
    words = labels(request.layout, request.locale)
    seller_data, customer_data = data["seller"], data["customer"]
    customer = recipient({k: v for k, v in customer_data.items() if k in _RECIPIENT_KEYS},
                         sender_country=(seller_data.get("address") or {}).get("country"))
    fields = request.layout.schema.get("properties", {}).keys()
    invoice = read_invoice(data, currency, request.today, fields)
    seller, buyer = invoice.seller, invoice.buyer
    sender_country = seller.address.country if seller.address else None
    is_credit = invoice.is_credit_note
    totals = invoice.totals
    account = (payment_account(seller_data["payment_account"], "$.seller.payment_account")
               if seller_data.get("payment_account") else None)
    reference = invoice.payment.reference if invoice.payment else None
    units, cents = fmt.giro_amount(max(totals.payable, Decimal(0)))
    # An invoice whose lines and allowances come to 0 or less asks for no payment: it says
    # so (and what the buyer has to good) instead of "pay -500,00 kr".
    nothing_to_pay = invoice.nothing_to_pay  # the e-invoice asks for none either
    # The payment fields are named after the payment's scheme (builders/base.py), when the
    # invoice has a slip's account and reference (not a card or direct-debit payment).
    named = (payment_labels(words, reference, account) if reference and account else
             dict.fromkeys(("reference_label", "reference_name", "account_label",
                            "account_name", "sort_code_label", "sort_code_name", "note"), ""))
    # No giro slip on a business invoice ([print] payment_slip = false), but the payment
    # block carries what its form has beyond the sentence: the EPC QR code (DE, AT), the
    # Finnish virtual bar code, the FIK code line.
    slip = None
    if reference and account and not is_credit:
        due = max(totals.payable, Decimal(0))
        slip = payment_slip(
            shared_path=request.layout.shared_path, locale=request.locale,
            reference=reference, account=account, currency=currency, amount=due,
            amount_text=fmt.money(due), due_date=invoice.due_date,
            due_text=fmt.day(invoice.due_date) if invoice.due_date else None,
            payee_name=seller.name,
            paths=SlipPaths("$.seller.payment_account", due_date="$.due_date"))
        named = fill_names(named, slip)

    shown_account = account.display if account else _means_account(invoice)

    def rate_text(rate: Decimal | None) -> str:
        return fmt.percent(rate) if rate is not None else "–"

    def signed(value: Decimal, is_charge: bool) -> str:
        return fmt.number(value if is_charge else -value)

    context: dict[str, Any] = {
        "labels": context_labels(words),
        "currency": currency,
        "is_credit_note": is_credit,
        "title": words["title_credit_note" if is_credit else "title_invoice"],
        "seller": {
            "name": seller.name,
            "trading_name": seller.trading_name,
            "org_number": text(seller_data.get("org_number")),
            "register_label": register_label(words, sender_country),
            "vat_id": seller.vat_id,
            "vat_label": vat_label(words, seller.vat_id, sender_country, "vat"),
            "tax_registration": seller.tax_registration_id,
            "legal_info": seller.legal_info,
            "address_lines": sender_lines(seller.address) if seller.address else [],
            "phone": seller.contact_phone,
            "email": seller.contact_email,
        },
        "window": window_lines(customer, sender_country),
        "return_line": (return_line(seller.name, seller.address,
                                    customer.address.country if customer.address else None)
                        if seller.address else ""),
        "customer": {"customer_id": customer.customer_id, "name": customer.name,
                     "org_number": customer.org_number, "vat_id": buyer.vat_id,
                     "register_label": register_label(
                         words, customer.address.country if customer.address else None),
                     "vat_label": vat_label(
                         words, buyer.vat_id,
                         customer.address.country if customer.address else None, "buyer_vat"),
                     "contact": buyer.contact_name},
        "invoice": {
            "number": invoice.number,
            "type_code": invoice.type_code,
            "date": fmt.day(invoice.issue_date),
            "due_date": fmt.day(invoice.due_date) if invoice.due_date else None,
            "buyer_reference": invoice.buyer_reference,
            "order_reference": invoice.order_reference,
            "preceding_invoice": invoice.preceding_invoice,
            "preceding_invoices": [
                {"number": p.number, "date": fmt.day(p.issue_date) if p.issue_date else None}
                for p in invoice.preceding_invoices
            ],
            "note": invoice.note,
            "payment_terms": invoice.payment_terms,
            "period": _period(fmt, invoice.period_start, invoice.period_end),
            "references": _references(invoice, words),
            "delivery": _delivery(fmt, invoice),
        },
        "lines": [
            {
                "id": ln.id, "name": ln.name, "description": ln.description, "note": ln.note,
                "quantity": fmt.number(ln.quantity, _places(ln.quantity)),
                "unit": unit_word(_as_printed(ln.quantity), ln.unit_code, words,
                                  request.locale),
                "unit_price": _unit_price(fmt, ln.unit_price, ln.base_quantity),
                "vat": rate_text(ln.vat_rate) if ln.vat_category != "E" else words["exempt"],
                "net": fmt.number(ln.net_amount),
                "period": _period(fmt, ln.period_start, ln.period_end),
                "allowances_charges": [
                    {"reason": ac.reason or ac.reason_code, "is_charge": ac.is_charge,
                     "amount": signed(ac.amount, ac.is_charge)}
                    for ac in ln.allowances_charges
                ],
            }
            for ln in invoice.lines
        ],
        "allowances_charges": [
            {"reason": ac.reason or ac.reason_code or "", "is_charge": ac.is_charge,
             "vat": rate_text(ac.vat_rate), "amount": signed(ac.amount, ac.is_charge)}
            for ac in invoice.allowances_charges
        ],
        "vat_breakdown": [
            {"category": b.category, "rate": rate_text(b.rate),
             "taxable": fmt.number(b.taxable_amount), "tax": fmt.number(b.tax_amount),
             "exemption_reason": b.exemption_reason or b.exemption_reason_code}
            for b in invoice.vat_breakdown
        ],
        "totals": {
            "line_extension": fmt.money(totals.line_extension),
            "allowances": fmt.money(totals.allowances) if totals.allowances else None,
            # as the totals subtract it (the key the Typst template of main reads)
            "allowances_deducted": fmt.money(-totals.allowances) if totals.allowances else None,
            "charges": fmt.money(totals.charges) if totals.charges else None,
            "tax_exclusive": fmt.money(totals.tax_exclusive),
            "tax": fmt.money(totals.tax),
            "tax_inclusive": fmt.money(totals.tax_inclusive),
            "prepaid": fmt.money(totals.prepaid) if totals.prepaid else None,
            "prepaid_deducted": fmt.money(-totals.prepaid) if totals.prepaid else None,
            "rounding": fmt.money(totals.rounding) if totals.rounding else None,
            "payable": fmt.money(totals.payable),
            "tax_in_accounting_currency": (
                fmt.money(totals.tax_in_accounting_currency, invoice.tax_currency)
                if totals.tax_in_accounting_currency is not None and invoice.tax_currency
                else None),
        },
        "payment": {
            # the seller's account as printed on a slip, else the first means' account
            "account": shown_account,
            "account_kind": account.kind if account else None,
            "reference": reference.display if reference else "",
            "reference_value": reference.value if reference else "",
            "amount": fmt.money(totals.payable),
            "amount_units": units,
            "amount_cents": cents,
            "due_date": fmt.day(invoice.due_date) if invoice.due_date else None,
            "means": [m.code for m in invoice.payment_means],
            **named,
            **payee_account(named, account, shown_account),
            "slip": slip,
            "nothing_to_pay": nothing_to_pay,
            "credit_amount": fmt.money(-totals.payable) if totals.payable < 0 else None,
        },
    }
    return Content(
        recipient=customer,
        context=context,
        kind=DocumentKind.CREDIT_NOTE if is_credit else DocumentKind.INVOICE,
        sender_country=sender_country,
        currency=currency,
        invoice=invoice,
        payment_reference=reference,
        payment_scheme=(payment_scheme(data["payment"], reference, account,
                                       "$.seller.payment_account")
                        if reference and account and data.get("payment") else None),
        due_date=invoice.due_date,
        amount_due=None if is_credit else max(totals.payable, Decimal("0.00")),
        facts={
            "segment": "business" if customer.org_number else "private",
            "country": customer.address.country if customer.address else sender_country,
            "document_type": invoice.type_code,
            "is_credit_note": is_credit,
        },
        invoice_paths=where(data, fields),
    )


# the `customer` keys that describe the recipient of the document (the rest is EN 16931)
_RECIPIENT_KEYS = frozenset({"customer_id", "name", "address", "email", "mobile", "national_id",
                             "org_number", "peppol_id", "mailbox_ids", "preferences",
                             "consents"})


# labels.toml's labels per country: register_<country> (b2b-invoice 2.3.0, card-invoice
# 2.2.0, payment-reminder 2.3.0), read by `register_label`; vat_<country> and
# buyer_vat_<country> (b2b-invoice 2.4.0), read by `vat_label`
_PER_COUNTRY_LABEL = re.compile(r"(register|vat|buyer_vat)_[A-Z]{2}\Z")
# a layout locale's labels (the mapping Layout.labels_for keeps) -> without those
_CONTEXT_LABELS: dict[int, tuple[Mapping[str, str], dict[str, str]]] = {}


def context_labels(words: Mapping[str, str]) -> dict[str, str]:
    """The labels a builder puts in its context: `words` (a layout's labels in one locale)
    without the labels per country, which `register_label` and `vat_label` resolve into the
    party they name (each string more in the context costs every Typst render). Filtered
    once per layout and locale; a fresh dict per call, which the builder may extend."""
    cached = _CONTEXT_LABELS.get(id(words))
    if cached is None or cached[0] is not words:
        cached = (words, {key: word for key, word in words.items()
                          if not _PER_COUNTRY_LABEL.match(key)})
        _CONTEXT_LABELS[id(words)] = cached
    return dict(cached[1])


def register_label(words: Mapping[str, str], country: str | None) -> str:
    """The label of a company's register number: the register of the company's `country`
    in the document's language (labels.toml `register_<country>`: a German seller's
    "Handelsregister" also on a de-AT invoice, whose own register label is
    "Firmenbuchnummer"), else the locale's `org_number`. Layout versions whose labels name
    no registers (b2b-invoice 2.2.0, card-invoice 2.1.0, payment-reminder 2.2.0 and older)
    get `org_number` as before."""
    if country:
        label = words.get(f"register_{country.upper()}")
        if label:
            return label
    return words["org_number"]


def vat_label(words: Mapping[str, str], vat_id: str | None, country: str | None,
              key: str) -> str | None:
    """The label of a company's VAT identifier (`key` "vat": the seller's BT-31, "buyer_vat":
    the buyer's BT-48): the VAT id of the country the id belongs to, in the document's
    language (labels.toml `<key>_<country>`: a German seller's "USt-IdNr." also on a de-AT
    invoice, whose own label is "UID-Nr."). The country is the one the id's prefix names
    (EN 16931 BR-CO-09: "DE812345673", "NO923609016MVA"), else the company's address
    `country`; a country without a label gets the locale's `<key>_id` (None in labels without
    one). Layout versions whose labels name no countries (b2b-invoice 2.3.0 and older) read
    `labels.<key>_id` as before and never this."""
    prefix = vat_id[:2].upper() if vat_id and vat_id[:2].isalpha() else None
    for place in (prefix, country.upper() if country else None):
        label = words.get(f"{key}_{place}") if place else None
        if label:
            return label
    return words.get(f"{key}_id")


def _means_account(invoice: Invoice) -> str:
    return next((m.account for m in invoice.payment_means if m.account), "")


def _places(value: Decimal) -> int:
    return max(0, -value.normalize().as_tuple().exponent)  # type: ignore[operator]


def _as_printed(quantity: Decimal) -> Decimal:
    """The quantity with the decimals the line prints (`_places`): Decimal('1.00') -> 1, so
    its unit word agrees with "1" as read ("1 hr"), not with CLDR's "1.00 hrs"."""
    return round_places(quantity, _places(quantity))


def _unit_price(fmt: Formatter, price: Decimal, base_quantity: Decimal | None) -> str:
    """The line's net price as printed: '4,99', or '4,99 / 100' when it is the price of a
    base quantity other than 1 (BT-149), so that quantity x price / base quantity is the
    line amount the reader sees (1 000 x 4,99 / 100 = 49,90, not 4 990,00)."""
    text = fmt.number(price, max(2, _places(price)))
    if base_quantity is None or base_quantity == 1:
        return text
    return f"{text} / {fmt.number(base_quantity, _places(base_quantity))}"


def _period(fmt: Formatter, start, end) -> str | None:
    if not (start or end):
        return None
    return f"{fmt.day(start) if start else ''}–{fmt.day(end) if end else ''}"


def _references(invoice: Invoice, words: Mapping[str, str]) -> list[dict[str, str]]:
    """BT-11..19 for the facts box, in the order a reader looks for them."""
    pairs = [
        ("sales_order_reference", invoice.sales_order_reference),
        ("project_reference", invoice.project_reference),
        ("contract_reference", invoice.contract_reference),
        ("despatch_advice_reference", invoice.despatch_advice_reference),
        ("receiving_advice_reference", invoice.receiving_advice_reference),
        ("tender_reference", invoice.tender_reference),
        ("invoiced_object", invoice.invoiced_object.value if invoice.invoiced_object else None),
        ("accounting_reference", invoice.accounting_reference),
    ]
    return [{"label": words.get(key, key.replace("_", " ")), "value": value}
            for key, value in pairs if value]


def _delivery(fmt: Formatter, invoice: Invoice) -> dict[str, Any] | None:
    d = invoice.delivery
    if d is None:
        return None
    lines = list(d.address.window_lines(d.party_name or "")) if d.address else \
        ([d.party_name] if d.party_name else [])
    return {"date": fmt.day(d.date) if d.date else None, "address_lines": lines}
