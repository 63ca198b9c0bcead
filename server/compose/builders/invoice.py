"""Business invoice / credit note data -> `Content` with an EN 16931 `Invoice` (layout b2b-invoice).

The input is close to the EN 16931 semantic model (seller, buyer, lines with unit codes and
VAT category/rate, document allowances and charges, exemption reasons per category, buyer
and order reference, payment account and structured reference). The arithmetic happens once,
in `server.compose.invoice.compute_invoice` (BR-CO-10..17, half-up 2-decimal rounding);
this module maps JSON to its inputs and the computed invoice to the locale-formatted print
context, so the PDF, the e-invoice (UBL / CII / Finvoice) and the SMS show the same figures.

Electronic addresses: `peppol_id` ("0192:923609016", ISO 6523 ICD + identifier) becomes the
endpoint id and scheme (BT-34 / BT-49). A credit note (`type = "credit_note"`) is document
type 381 with positive amounts and a reference to the invoice it credits, and its document
kind is `credit_note` everywhere the kind matters (index, portal filters, retention, insert
and campaign rules), though the layout's kind is `invoice`.
"""

from __future__ import annotations

from collections.abc import Mapping
from decimal import Decimal
from typing import Any

from server.compose.builders.base import (
    BuildRequest,
    Content,
    Formatter,
    amount,
    iso_date,
    labels,
    payment_account,
    payment_labels,
    payment_reference,
    payment_scheme,
    postal_address,
    recipient,
    window_lines,
)
from server.compose.formatting import check_currency
from server.compose.invoice import CREDIT_NOTE, INVOICE, LineInput, compute_invoice
from server.compose.model import AllowanceCharge, DocumentKind, Party, PaymentMeans
from server.errors import InvalidInput

# ISO 6523 ICD of the national organisation number, by country (legal id scheme, BT-30)
ORG_NUMBER_SCHEME = {"NO": "0192", "SE": "0007", "FI": "0037", "DK": "0184"}


def _endpoint(peppol_id: str | None, path: str) -> tuple[str | None, str | None]:
    if not peppol_id:
        return None, None
    scheme, sep, value = peppol_id.partition(":")
    if not sep or not scheme or not value:
        raise InvalidInput.field(path, "must be '<scheme>:<identifier>', e.g. '0192:923609016'")
    return value, scheme


def _party(data: Mapping[str, Any], path: str, **extra: Any) -> Party:
    address = postal_address(data["address"]) if data.get("address") else None
    org = "".join((data.get("org_number") or "").split()) or None
    endpoint_id, endpoint_scheme = _endpoint(data.get("peppol_id"), f"{path}.peppol_id")
    contact = data.get("contact", {})
    return Party(
        name=data["name"],
        address=address,
        vat_id=data.get("vat_id") or None,
        legal_id=org,
        legal_id_scheme=ORG_NUMBER_SCHEME.get(address.country) if org and address else None,
        endpoint_id=endpoint_id,
        endpoint_scheme=endpoint_scheme,
        contact_name=contact.get("name"),
        contact_phone=contact.get("phone"),
        contact_email=contact.get("email"),
        **extra,
    )


def _rate(value: Any, path: str) -> Decimal | None:
    return None if value is None else amount(value, path)


def build(data: Mapping[str, Any], request: BuildRequest) -> Content:
    currency = check_currency(data["currency"], "$.currency")
    fmt = Formatter(request.locale, currency)
    text = labels(request.layout, request.locale)
    seller_data, customer_data = data["seller"], data["customer"]
    customer = recipient({k: v for k, v in customer_data.items() if k != "vat_id"})
    seller = _party(seller_data, "$.seller")
    buyer = _party(customer_data, "$.customer")
    sender_country = seller.address.country if seller.address else None
    type_code = CREDIT_NOTE if data.get("type") == "credit_note" else INVOICE

    lines = [
        LineInput(
            id=str(line.get("id", i + 1)),
            name=line["name"],
            quantity=amount(line["quantity"], f"$.lines[{i}].quantity", allow_negative=True),
            unit_code=line.get("unit_code", "C62"),
            unit_price=amount(line["unit_price"], f"$.lines[{i}].unit_price"),
            vat_category=line["vat_category"],
            vat_rate=_rate(line.get("vat_rate"), f"$.lines[{i}].vat_rate"),
            description=line.get("description"),
        )
        for i, line in enumerate(data["lines"])
    ]
    allowances_charges = [
        AllowanceCharge(
            is_charge=ac["is_charge"],
            amount=amount(ac["amount"], f"$.allowances_charges[{i}].amount"),
            reason=ac.get("reason", ""),
            vat_category=ac["vat_category"],
            vat_rate=_rate(ac.get("vat_rate"), f"$.allowances_charges[{i}].vat_rate"),
            reason_code=ac.get("reason_code"),
        )
        for i, ac in enumerate(data.get("allowances_charges", []))
    ]
    account = payment_account(seller_data["payment_account"], "$.seller.payment_account")
    reference = payment_reference(data["payment"], currency, sender_country)
    issue_date = iso_date(data["issue_date"], "$.issue_date")
    due_date = iso_date(data["due_date"], "$.due_date") if data.get("due_date") else None
    invoice = compute_invoice(
        number=data["number"],
        type_code=type_code,
        issue_date=issue_date,
        due_date=due_date,
        currency=currency,
        seller=seller,
        buyer=buyer,
        lines=lines,
        allowances_charges=allowances_charges,
        payment=PaymentMeans(
            code="58" if account.kind == "iban" else "30",
            account=account.number,
            bic=seller_data["payment_account"].get("bic"),
            account_name=seller.name,
            reference=reference,
        ),
        buyer_reference=data.get("buyer_reference"),
        order_reference=data.get("order_reference"),
        preceding_invoice=data.get("preceding_invoice"),
        note=data.get("note"),
        payment_terms=data.get("payment_terms"),
        exemption_reasons=data.get("exemption_reasons"),
        field_prefix="$",
    )
    totals = invoice.totals
    units, cents = fmt.giro_amount(max(totals.payable, Decimal(0)))
    is_credit = type_code == CREDIT_NOTE
    # An invoice whose lines and allowances come to 0 or less asks for no payment: it says
    # so (and what the buyer has to good) instead of "pay -500,00 kr".
    nothing_to_pay = not is_credit and totals.payable <= 0

    def rate_text(rate: Decimal | None) -> str:
        return fmt.percent(rate) if rate is not None else "–"

    context: dict[str, Any] = {
        "labels": dict(text),
        "currency": currency,
        "is_credit_note": is_credit,
        "title": text["title_credit_note" if is_credit else "title_invoice"],
        "seller": {
            "name": seller.name,
            "org_number": seller_data.get("org_number"),
            "vat_id": seller.vat_id,
            "address_lines": list(window_lines(seller, None)[1:]) if seller.address else [],
            "phone": seller.contact_phone,
            "email": seller.contact_email,
        },
        "window": window_lines(customer, sender_country),
        "customer": {"customer_id": customer.customer_id, "name": customer.name,
                     "org_number": customer.org_number, "vat_id": buyer.vat_id},
        "invoice": {
            "number": invoice.number,
            "date": fmt.day(issue_date),
            "due_date": fmt.day(due_date) if due_date else None,
            "buyer_reference": invoice.buyer_reference,
            "order_reference": invoice.order_reference,
            "preceding_invoice": invoice.preceding_invoice,
            "note": invoice.note,
            "payment_terms": invoice.payment_terms,
        },
        "lines": [
            {
                "id": ln.id, "name": ln.name, "description": ln.description,
                "quantity": fmt.number(ln.quantity, max(0, -ln.quantity.normalize()
                                                        .as_tuple().exponent)),  # type: ignore[operator]
                "unit": text.get(f"unit_{ln.unit_code}", ln.unit_code),
                "unit_price": fmt.number(ln.unit_price),
                "vat": rate_text(ln.vat_rate) if ln.vat_category != "E" else text["exempt"],
                "net": fmt.number(ln.net_amount),
            }
            for ln in invoice.lines
        ],
        "allowances_charges": [
            {"reason": ac.reason, "is_charge": ac.is_charge, "vat": rate_text(ac.vat_rate),
             "amount": fmt.number(ac.amount if ac.is_charge else -ac.amount)}
            for ac in invoice.allowances_charges
        ],
        "vat_breakdown": [
            {"category": b.category, "rate": rate_text(b.rate),
             "taxable": fmt.number(b.taxable_amount), "tax": fmt.number(b.tax_amount),
             "exemption_reason": b.exemption_reason}
            for b in invoice.vat_breakdown
        ],
        "totals": {
            "line_extension": fmt.money(totals.line_extension),
            "allowances": fmt.money(totals.allowances) if totals.allowances else None,
            # as the totals subtract it, with the locale's minus sign (formatting.minus_sign)
            "allowances_deducted": fmt.money(-totals.allowances) if totals.allowances else None,
            "charges": fmt.money(totals.charges) if totals.charges else None,
            "tax_exclusive": fmt.money(totals.tax_exclusive),
            "tax": fmt.money(totals.tax),
            "tax_inclusive": fmt.money(totals.tax_inclusive),
            "prepaid": fmt.money(totals.prepaid) if totals.prepaid else None,
            "payable": fmt.money(totals.payable),
        },
        "payment": {
            "account": account.display,
            "account_kind": account.kind,
            "reference": reference.display,
            "reference_value": reference.value,
            **payment_labels(text, reference, account),
            "amount": fmt.money(totals.payable),
            "amount_units": units,
            "amount_cents": cents,
            "due_date": fmt.day(due_date) if due_date else None,
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
        payment_scheme=payment_scheme(data["payment"], reference, account,
                                      "$.seller.payment_account"),
        due_date=due_date,
        amount_due=None if is_credit else max(totals.payable, Decimal("0.00")),
        facts={
            "segment": "business" if customer.org_number else "private",
            "country": customer.address.country if customer.address else sender_country,
            "document_type": type_code,
        },
    )
