"""What Finvoice 3.0 makes mandatory or limits, on a composed `Invoice`, before rendering."""

from __future__ import annotations

from server.compose.en16931 import Invoice
from server.compose.validation.findings import Collector, Finding

NUMBER_MAX = 20  # Finvoice InvoiceNumber: at most 20 characters


def check_finvoice(invoice: Invoice) -> list[Finding]:
    add = Collector()
    if len(invoice.number) > NUMBER_MAX:
        add("number", "FINVOICE-InvoiceNumber", "Finvoice invoice numbers have at most 20 "
            "characters")
    payment = invoice.payment
    if payment is None or not payment.account:
        add("payment_means[0].account", "FINVOICE-EpiAccountID",
            "Finvoice needs the payee account (EpiDetails)")
    if invoice.due_date is None and not invoice.is_credit_note:
        add("due_date", "FINVOICE-EpiDateOptionDate", "a Finvoice invoice needs a due date")
    return add.out
