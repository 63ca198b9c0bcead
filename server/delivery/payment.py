"""What a digital mailbox shows beside the PDF: the subject, and for a bill the payment
fields behind its pay button (amount, due date, KID/OCR/FIK reference, creditor account).

Pure: a Composition -> a JSON-ready dict kept in the outbox row's details (so a resend
months later sends the same fields), read by the mailbox adapters. Amounts are decimal
strings in the currency's major unit ("12691.81"), never floats. A document with nothing
to pay (a credit balance, a letter) has no `payment`: it goes as a plain letter.
"""

from __future__ import annotations

import re
from typing import Any

from server.compose.layouts import Layout
from server.compose.model import Composition


def payment_fields(composition: Composition) -> dict[str, Any] | None:
    """The payment fields of a bill, or None when there is nothing to pay."""
    amount, due, reference = (composition.amount_due, composition.due_date,
                              composition.payment_reference)
    if amount is None or due is None or reference is None or amount <= 0:
        return None
    shown = composition.context.get("payment")
    shown = shown if isinstance(shown, dict) else {}
    invoice = composition.invoice
    account = next((m.account for m in invoice.payment_means if m.account), None) \
        if invoice is not None else None
    return {
        "amount": str(amount),
        "currency": composition.currency or "",
        "due_date": due.isoformat(),
        "reference": reference.value,
        "reference_scheme": reference.scheme,  # kid_mod10, kid_mod11, ocr, fik, fi, rf
        "account": re.sub(r"[^0-9A-Za-z]", "", account or str(shown.get("account", ""))),
        "account_kind": str(shown.get("account_kind", "")),  # bankgiro, plusgiro, no_account
        "invoice_number": invoice.number if invoice is not None else "",
    }


def mailbox_details(composition: Composition, layout: Layout, pages: int) -> dict[str, Any]:
    recipient = composition.recipient
    labels = composition.context.get("labels")
    title = labels.get("document_title") if isinstance(labels, dict) else None
    return {
        "subject": str(title or layout.title),
        "pages": pages,
        "country": recipient.address.country if recipient.address else "",
        "generated_at": composition.created_at.date().isoformat(),
        "payment": payment_fields(composition),
    }
