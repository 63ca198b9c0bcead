"""b2b-invoice input data (JSON) -> the EN 16931 `Invoice`, and where each value came from.

The b2b-invoice schema is the EN 16931 semantic model in the words of a biller's system;
this module reads it (amounts as `Decimal`, dates, identifiers normalised per country by
`server.compose.identifiers`, blank text as absent) and hands it to `compute_invoice`, which
does every sum once. `WHERE` maps a model path (`buyer.legal_id`) back to the JSON path of
the input (`$.customer.org_number`), so every EN 16931 or Peppol rule a value breaks is
reported where the caller wrote it.

This module reads the header, the references and details (BG-3, BG-10, BG-13, BG-14, BG-24)
and puts the invoice together; the parts with concepts of their own are beside it:
`invoice_reader` (how values are read; the parties and their identifiers), `invoice_lines`
(lines, allowances and charges) and `invoice_payment` (the payment means, BG-16).

Input -> EN 16931 (the schema's descriptions say the same):

    number, type / type_code, issue_date, due_date      BT-1, BT-3, BT-2, BT-9
    currency, vat_accounting {currency, tax_total |     BT-5, BT-6, BT-111
      exchange_rate}
    tax_point_date | tax_point_code                      BT-7 | BT-8
    buyer_reference, order_reference, sales_order_       BT-10, BT-13, BT-14, BT-11, BT-12,
      reference, project_reference, contract_reference,  BT-16, BT-15, BT-17, BT-18, BT-19
      despatch_advice_reference, receiving_advice_
      reference, tender_reference, invoiced_object,
      accounting_reference
    note, note_subject, payment_terms, period            BT-22, BT-21, BT-20, BG-14
    preceding_invoice / preceding_invoices [{number,     BG-3
      issue_date}]
    seller {name, trading_name, org_number (+_scheme),   BG-4 (BT-27..34), BG-5, BG-6
      vat_id, tax_registration, legal_info, identifiers,
      peppol_id, address, contact, payment_account}
    customer {..., vat_id, contact}                      BG-7, BG-8, BG-9
    payee, tax_representative, delivery                  BG-10, BG-11/12, BG-13/15
    lines[] {id, name, description, note, quantity,      BG-25..BG-32
      unit_code, unit_price | gross_price (+ price_
      discount), base_quantity, vat_category, vat_rate,
      period, order_line_reference, accounting_
      reference, object_id, allowances_charges[],
      seller_item_id, buyer_item_id, standard_item_id,
      classifications[], origin_country, attributes[]}
    allowances_charges[] {is_charge, amount | percent +  BG-20 / BG-21
      base_amount, reason, reason_code, vat_category,
      vat_rate}
    exemption_reasons {cat: text}, exemption_reason_     BT-120, BT-121
      codes {cat: VATEX}
    prepaid_amount, rounding_amount | round_payable_to   BT-113, BT-114
    payment {reference | reference_base, reference_      BG-16: BT-83, and the means
      scheme, creditor_number, means[]}                  (BT-81..91)
    attachments[], attach_pdf                            BG-24
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import Callable, Collection, Mapping
from datetime import date
from decimal import Decimal
from typing import Any

from server.compose.builders.base import iso_date, payment_reference
from server.compose.builders.invoice_lines import read_allowances_charges, read_lines
from server.compose.builders.invoice_payment import has_payment_reference, payment_means
from server.compose.builders.invoice_reader import (
    InvoiceReader,
    optional_amount,
    optional_date,
    required_text,
    text,
)
from server.compose.en16931 import (
    Attachment,
    Delivery,
    Invoice,
    Party,
    Payee,
    PrecedingInvoice,
)
from server.compose.invoice import (
    CREDIT_NOTE,
    INVOICE,
    Details,
    VatAccounting,
    compute_invoice,
)
from server.compose.validation import renamer
from server.errors import InvalidInput

# model path prefix -> input path (first match wins; the rest of the path is kept)
_RENAMES: tuple[tuple[str, str], ...] = (
    ("buyer.legal_id_scheme", "customer.org_number_scheme"),
    ("buyer.legal_id", "customer.org_number"),
    ("buyer.endpoint_id", "customer.peppol_id"),
    ("buyer.endpoint_scheme", "customer.peppol_id"),
    ("buyer.contact_name", "customer.contact.name"),
    ("buyer.contact_phone", "customer.contact.phone"),
    ("buyer.contact_email", "customer.contact.email"),
    ("buyer", "customer"),
    ("seller.legal_id_scheme", "seller.org_number_scheme"),
    ("seller.legal_id", "seller.org_number"),
    ("seller.endpoint_id", "seller.peppol_id"),
    ("seller.endpoint_scheme", "seller.peppol_id"),
    ("seller.contact_name", "seller.contact.name"),
    ("seller.contact_phone", "seller.contact.phone"),
    ("seller.contact_email", "seller.contact.email"),
    ("seller.tax_registration_id", "seller.tax_registration"),
    ("period_start", "period.start"),
    ("period_end", "period.end"),
    ("prepaid", "prepaid_amount"),
    ("exemption_codes", "exemption_reason_codes"),
)


_RENAME = renamer(_RENAMES)


def where(data: Mapping[str, Any], fields: Collection[str] = ()) -> Callable[[str], str]:
    """The `where` function for this input: model path -> JSON path. `fields`: the top-level
    properties of the layout version's schema. The preceding invoices (BG-3) as a whole are
    `$.preceding_invoices`, or `$.preceding_invoice` (one number) when the data gave only
    that or the schema has no other (b2b-invoice 1.0.0)."""
    explicit_means = bool((data.get("payment") or {}).get("means"))
    single_preceding = "preceding_invoices" not in data and (
        "preceding_invoice" in data or (fields and "preceding_invoices" not in fields))

    def resolve(path: str) -> str:
        if path == "preceding_invoices" and single_preceding:
            return "$.preceding_invoice"
        path = _RENAME(path)
        # line periods are {start, end} objects in the input, as the invoice period is
        path = path.replace(".period_start", ".period.start").replace(".period_end",
                                                                      ".period.end")
        if path.startswith("payment_means"):
            if explicit_means:
                path = "payment.means" + path[len("payment_means"):]
            elif path.endswith((".account", ".bic")):
                path = "seller.payment_account"
            else:
                path = "payment"
        return f"$.{path}" if path else "$"

    return resolve


def type_code(data: Mapping[str, Any]) -> str:
    """BT-3: `type_code` when given, else 380 for an invoice and 381 for a credit note."""
    code = text(data.get("type_code"))
    if code:
        return code
    return CREDIT_NOTE if data.get("type") == "credit_note" else INVOICE


def read_invoice(data: Mapping[str, Any], currency: str, today: date | None = None,
                 fields: Collection[str] = ()) -> Invoice:
    """The input -> a computed, EN 16931-validated `Invoice`. Raises `InvalidInput` with
    every problem at its JSON path. `today`: the composition date (which of an issue date
    and an earlier due date to name: `validation.en16931.due_before_issue`); `fields`: the
    layout schema's top-level properties (`where`)."""
    reader = InvoiceReader()
    seller = reader.party(data["seller"], "$.seller", seller=True)
    buyer = reader.party({k: v for k, v in data["customer"].items()
                          if k not in ("email", "mobile")}, "$.customer", seller=False)
    sender_country = seller.address.country if seller.address else None
    reference = payment_reference(data["payment"], currency, sender_country) \
        if has_payment_reference(data.get("payment")) else None
    customer_country = buyer.address.country if buyer.address else None
    means, creditor_ids = payment_means(reader, data, seller, reference, customer_country,
                                        currency)
    if creditor_ids:
        seller = Party(**{**_fields(seller), "identifiers": (*seller.identifiers,
                                                             *creditor_ids)})
    lines = read_lines(reader, data, currency)
    allowances = read_allowances_charges(data, currency)
    details = _details(reader, data)
    vat = data.get("vat_accounting")
    vat_accounting = VatAccounting(
        currency=vat["currency"],
        tax_total=optional_amount(vat.get("tax_total"), "$.vat_accounting.tax_total",
                                  allow_negative=True, currency=vat["currency"],
                                  rule="BR-DEC-15"),
        exchange_rate=optional_amount(vat.get("exchange_rate"), "$.vat_accounting.exchange_rate"),
    ) if vat else None
    if reader.problems:
        raise InvalidInput("invalid invoice", reader.problems)
    return compute_invoice(
        number=required_text(data["number"]),
        type_code=type_code(data),
        issue_date=iso_date(data["issue_date"], "$.issue_date"),
        due_date=optional_date(data.get("due_date"), "$.due_date"),
        currency=currency,
        seller=seller,
        buyer=buyer,
        lines=lines,
        allowances_charges=allowances,
        payment_means=means,
        prepaid=optional_amount(data.get("prepaid_amount"), "$.prepaid_amount",
                                currency=currency, rule="BR-DEC-16") or Decimal(0),
        rounding=optional_amount(data.get("rounding_amount"), "$.rounding_amount",
                                 allow_negative=True, currency=currency, rule="BR-DEC-17"),
        round_payable_to=optional_amount(data.get("round_payable_to"), "$.round_payable_to"),
        vat_accounting=vat_accounting,
        details=details,
        where=where(data, fields),
        today=today,
    )


def _fields(party: Party) -> dict[str, Any]:
    return {name: getattr(party, name) for name in Party.__dataclass_fields__}


def _details(reader: InvoiceReader, data: Mapping[str, Any]) -> Details:
    period = data.get("period") or {}
    preceding = [PrecedingInvoice(required_text(p.get("number")),
                                  optional_date(p.get("issue_date"),
                                                f"$.preceding_invoices[{i}].issue_date"))
                 for i, p in enumerate(data.get("preceding_invoices", ()))]
    if text(data.get("preceding_invoice")):
        preceding.insert(0, PrecedingInvoice(required_text(data["preceding_invoice"])))
    payee = data.get("payee")
    rep = data.get("tax_representative")
    delivery = data.get("delivery")
    return Details(
        buyer_reference=text(data.get("buyer_reference")),
        order_reference=text(data.get("order_reference")),
        preceding_invoices=preceding,
        note=text(data.get("note")),
        note_subject=text(data.get("note_subject")),
        payment_terms=text(data.get("payment_terms")),
        period_start=optional_date(period.get("start"), "$.period.start"),
        period_end=optional_date(period.get("end"), "$.period.end"),
        tax_point_date=optional_date(data.get("tax_point_date"), "$.tax_point_date"),
        tax_point_code=text(data.get("tax_point_code")),
        project_reference=text(data.get("project_reference")),
        contract_reference=text(data.get("contract_reference")),
        sales_order_reference=text(data.get("sales_order_reference")),
        receiving_advice_reference=text(data.get("receiving_advice_reference")),
        despatch_advice_reference=text(data.get("despatch_advice_reference")),
        tender_reference=text(data.get("tender_reference")),
        invoiced_object=reader.identifier(data.get("invoiced_object"), "$.invoiced_object"),
        accounting_reference=text(data.get("accounting_reference")),
        payee=Payee(
            name=required_text(payee.get("name")),
            identifier=reader.identifier(payee.get("identifier"), "$.payee.identifier",
                                         party=True),
            legal_id=reader.identifier(payee.get("legal_id"), "$.payee.legal_id", party=True),
        ) if payee else None,
        tax_representative=reader.tax_representative(rep) if rep else None,
        delivery=Delivery(
            party_name=text(delivery.get("party_name")),
            location=reader.identifier(delivery.get("location"), "$.delivery.location"),
            date=optional_date(delivery.get("date"), "$.delivery.date"),
            address=reader.address(delivery.get("address")),
        ) if delivery else None,
        attachments=_attachments(reader, data),
        exemption_reasons={k: v for k, v in (data.get("exemption_reasons") or {}).items()
                           if text(v)},
        exemption_codes={k: text(v) or "" for k, v in
                         (data.get("exemption_reason_codes") or {}).items() if text(v)},
    )


def _attachments(reader: InvoiceReader, data: Mapping[str, Any]) -> list[Attachment]:
    out = []
    for i, item in enumerate(data.get("attachments", ())):
        content = None
        if item.get("content"):
            try:
                content = base64.b64decode(item["content"], validate=True)
            except (binascii.Error, ValueError):
                reader.fail(f"$.attachments[{i}].content", "is not base64")
        out.append(Attachment(
            id=required_text(item.get("id")), description=text(item.get("description")),
            uri=text(item.get("uri")), content=content, mime_code=text(item.get("mime_code")),
            filename=text(item.get("filename")),
        ))
    if data.get("attach_pdf"):
        number = required_text(data.get("number"))
        out.append(Attachment(id=number, description=text(data.get("attach_pdf_description")),
                              mime_code="application/pdf", filename=f"{number}.pdf",
                              rendered_pdf=True))
    return out
