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
    # EpiDateOptionDate is the due date of an invoice that asks for a payment; a credit note
    # or an invoice with nothing to pay instructs 0,00 on its issue date (render_finvoice)
    if invoice.due_date is None and not (invoice.is_credit_note or invoice.nothing_to_pay):
        add("due_date", "FINVOICE-EpiDateOptionDate", "a Finvoice invoice needs a due date")
    # Finvoice's name and street types have a minimum length of 2 characters
    for role, party in (("seller", invoice.seller), ("buyer", invoice.buyer)):
        if len(party.name) < 2:
            add(f"{role}.name", "FINVOICE-minLength", "Finvoice needs a name of at least 2 "
                "characters")
        for i, line in enumerate(party.address.lines if party.address else ()):
            if len(line) < 2:
                add(f"{role}.address.lines[{i}]", "FINVOICE-minLength", "Finvoice needs an "
                    "address line of at least 2 characters")
    if payment is not None and len(payment.account_name or invoice.seller.name) < 2:
        add("seller.name", "FINVOICE-minLength", "Finvoice needs the payee name (EpiNameAddress"
            "Details) of at least 2 characters")
    return add.out
