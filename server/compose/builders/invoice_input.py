"""b2b-invoice input data (JSON) -> the EN 16931 `Invoice`, and where each value came from.

The b2b-invoice schema is the EN 16931 semantic model in the words of a biller's system;
this module reads it (amounts as `Decimal`, dates, identifiers normalised per country by
`server.compose.identifiers`, blank text as absent) and hands it to `compute_invoice`, which
does every sum once. `WHERE` maps a model path (`buyer.legal_id`) back to the JSON path of
the input (`$.customer.org_number`), so every EN 16931 or Peppol rule a value breaks is
reported where the caller wrote it.

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
from collections.abc import Callable, Mapping
from datetime import date
from decimal import Decimal
from typing import Any

from server.compose import identifiers as ids
from server.compose.builders.base import amount, iso_date, payment_account, payment_reference
from server.compose.en16931 import (
    AllowanceCharge,
    Attachment,
    Delivery,
    Identifier,
    Invoice,
    ItemAttribute,
    LineAllowanceCharge,
    Party,
    Payee,
    PaymentMeans,
    PrecedingInvoice,
    TaxRepresentative,
)
from server.compose.invoice import (
    CREDIT_NOTE,
    INVOICE,
    Details,
    LineInput,
    VatAccounting,
    compute_invoice,
)
from server.compose.model import PaymentReference, PostalAddress
from server.compose.validation import renamer
from server.errors import FieldViolation, InvalidInput

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


def where(data: Mapping[str, Any]) -> Callable[[str], str]:
    """The `where` function for this input: model path -> JSON path."""
    explicit_means = bool((data.get("payment") or {}).get("means"))

    def resolve(path: str) -> str:
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


def text(value: Any) -> str | None:
    """Blank text is absent: EN 16931 has no empty values and Peppol no empty elements."""
    if value is None:
        return None
    stripped = str(value).strip()
    return stripped or None


def required_text(value: Any) -> str:
    return text(value) or ""


class _Reader:
    """Reads the input, collecting identifier errors so all are reported at once."""

    def __init__(self) -> None:
        self.problems: list[FieldViolation] = []

    def fail(self, path: str, message: str) -> None:
        self.problems.append(FieldViolation(path, message))

    def address(self, data: Mapping[str, Any] | None) -> PostalAddress | None:
        if not data:
            return None
        return PostalAddress(
            lines=tuple(line for line in (text(x) for x in data.get("lines", ())) if line),
            postal_code=text(data.get("postal_code")) or "",
            city=text(data.get("city")) or "",
            country=text(data.get("country")) or "",
            subdivision=text(data.get("subdivision")),
        )

    def identifier(self, data: Mapping[str, Any] | None, path: str, *,
                   party: bool = False) -> Identifier | None:
        """An identifier with its scheme; a party's (BT-29/46/60/61) is normalised for its
        scheme as Peppol checks those (PEPPOL-COMMON-R040..R050), items and locations are
        taken as given."""
        if not data or not text(data.get("id")):
            return None
        scheme = text(data.get("scheme"))
        value = required_text(data.get("id"))
        if party:
            try:
                value = ids.normalise_id(scheme, value)
            except ids.IdentifierError as exc:
                self.fail(f"{path}.id", str(exc))
        return Identifier(value, scheme, text(data.get("version")))

    def party(self, data: Mapping[str, Any], path: str, *, seller: bool) -> Party:
        address = self.address(data.get("address"))
        country = address.country if address else None
        org, org_scheme = text(data.get("org_number")), text(data.get("org_number_scheme"))
        if org:
            try:
                org, org_scheme = ids.organisation_number(org, country, org_scheme)
            except ids.IdentifierError as exc:
                self.fail(f"{path}.org_number", str(exc))
        vat = text(data.get("vat_id"))
        if vat:
            try:
                vat = ids.vat_id(vat, country)
            except ids.IdentifierError as exc:
                self.fail(f"{path}.vat_id", str(exc))
        endpoint_id = endpoint_scheme = None
        if text(data.get("peppol_id")):
            try:
                endpoint_scheme, endpoint_id = ids.peppol_id(data["peppol_id"])
            except ids.IdentifierError as exc:
                # The seller's own address is the biller's error. A buyer's Peppol id that
                # cannot be routed is a routing problem: no electronic address, and the
                # e-invoice channel finds the buyer unreachable (the plan goes on without it,
                # or refuses when the e-invoice is owed: server/channels/einvoice_channel.py).
                if seller:
                    self.fail(f"{path}.peppol_id", str(exc))
        contact = data.get("contact") or {}
        tax_registration = text(data.get("tax_registration"))
        if seller and tax_registration is None and org:
            tax_registration = ids.default_tax_registration(country, org_scheme)
        return Party(
            name=required_text(data.get("name")),
            address=address,
            vat_id=vat,
            legal_id=org,
            legal_id_scheme=org_scheme if org else None,
            endpoint_id=endpoint_id,
            endpoint_scheme=endpoint_scheme,
            contact_name=text(contact.get("name")),
            contact_phone=text(contact.get("phone")),
            contact_email=text(contact.get("email")),
            trading_name=text(data.get("trading_name")),
            identifiers=tuple(
                ident for i, item in enumerate(data.get("identifiers", ()))
                if (ident := self.identifier(item, f"{path}.identifiers[{i}]", party=True))
            ),
            tax_registration_id=tax_registration if seller else None,
            legal_info=text(data.get("legal_info")) if seller else None,
        )


def _rate(value: Any, path: str) -> Decimal | None:
    return None if value is None or value == "" else amount(value, path)


def _opt_amount(value: Any, path: str, *, allow_negative: bool = False) -> Decimal | None:
    return None if value is None else amount(value, path, allow_negative=allow_negative)


def _date(value: Any, path: str) -> date | None:
    return iso_date(value, path) if value else None


def _line_allowances(items: Any, path: str) -> list[LineAllowanceCharge]:
    return [
        LineAllowanceCharge(
            is_charge=bool(ac["is_charge"]),
            amount=_opt_amount(ac.get("amount"), f"{path}[{j}].amount",  # type: ignore[arg-type]
                               allow_negative=True),
            reason=text(ac.get("reason")),
            reason_code=text(ac.get("reason_code")),
            base_amount=_opt_amount(ac.get("base_amount"), f"{path}[{j}].base_amount"),
            percent=_opt_amount(ac.get("percent"), f"{path}[{j}].percent"),
        )
        for j, ac in enumerate(items or ())
    ]


def _lines(reader: _Reader, data: Mapping[str, Any]) -> list[LineInput]:
    out = []
    for i, line in enumerate(data["lines"]):
        path = f"$.lines[{i}]"
        period = line.get("period") or {}
        price = line.get("unit_price")
        out.append(LineInput(
            id=text(line.get("id")) or str(i + 1),
            name=required_text(line.get("name")),
            quantity=amount(line["quantity"], f"{path}.quantity", allow_negative=True),
            unit_code=text(line.get("unit_code")) or "C62",
            unit_price=None if price is None else amount(price, f"{path}.unit_price",
                                                         allow_negative=True),
            vat_category=line["vat_category"],
            vat_rate=_rate(line.get("vat_rate"), f"{path}.vat_rate"),
            description=text(line.get("description")),
            period_start=_date(period.get("start"), f"{path}.period.start"),
            period_end=_date(period.get("end"), f"{path}.period.end"),
            note=text(line.get("note")),
            object_id=reader.identifier(line.get("object_id"), f"{path}.object_id"),
            order_line_reference=text(line.get("order_line_reference")),
            accounting_reference=text(line.get("accounting_reference")),
            allowances_charges=_line_allowances(line.get("allowances_charges"),
                                                f"{path}.allowances_charges"),
            gross_price=_opt_amount(line.get("gross_price"), f"{path}.gross_price",
                                    allow_negative=True),
            price_discount=_opt_amount(line.get("price_discount"), f"{path}.price_discount"),
            base_quantity=_opt_amount(line.get("base_quantity"), f"{path}.base_quantity",
                                      allow_negative=True),
            seller_item_id=text(line.get("seller_item_id")),
            buyer_item_id=text(line.get("buyer_item_id")),
            standard_item_id=reader.identifier(line.get("standard_item_id"),
                                               f"{path}.standard_item_id"),
            classifications=[
                ident for j, c in enumerate(line.get("classifications", ()))
                if (ident := reader.identifier(c, f"{path}.classifications[{j}]"))
            ],
            origin_country=text(line.get("origin_country")),
            attributes=[ItemAttribute(required_text(a.get("name")), required_text(a.get("value")))
                        for a in line.get("attributes", ())],
        ))
        if price is None and line.get("gross_price") is None:
            reader.fail(f"{path}.unit_price", "[BR-26] the item net price (unit_price) or the "
                        "gross price is required")
    return out


def _allowances_charges(data: Mapping[str, Any]) -> list[AllowanceCharge]:
    return [
        AllowanceCharge(
            is_charge=bool(ac["is_charge"]),
            amount=_opt_amount(ac.get("amount"), f"$.allowances_charges[{i}].amount",  # type: ignore[arg-type]
                               allow_negative=True),
            reason=text(ac.get("reason")),
            vat_category=ac["vat_category"],
            vat_rate=_rate(ac.get("vat_rate"), f"$.allowances_charges[{i}].vat_rate"),
            reason_code=text(ac.get("reason_code")),
            base_amount=_opt_amount(ac.get("base_amount"),
                                    f"$.allowances_charges[{i}].base_amount"),
            percent=_opt_amount(ac.get("percent"), f"$.allowances_charges[{i}].percent"),
        )
        for i, ac in enumerate(data.get("allowances_charges", ()))
    ]


def _transfer(account_data: Mapping[str, Any], path: str, seller: Party,
              reference: PaymentReference | None, domestic_dk: bool) -> PaymentMeans:
    """A credit transfer to the seller's account, coded the way the receiver expects:
    Swedish giro accounts are 30 + SE:BANKGIRO / SE:PLUSGIRO (SE-R-007..012), an IBAN is SEPA
    58, a Norwegian account 30."""
    account = payment_account(account_data, path)
    bic = text(account_data.get("bic"))
    code = "30"
    if account.kind == "bankgiro":
        bic = "SE:BANKGIRO"
    elif account.kind == "plusgiro":
        bic = "SE:PLUSGIRO"
    elif account.kind == "iban":
        code = "58"
    if domestic_dk and code == "30":
        code = "31"
    return PaymentMeans(code=code, account=account.number, bic=bic,
                        account_name=seller.name or None, reference=reference)


def _payment_means(reader: _Reader, data: Mapping[str, Any], seller: Party,
                   reference: PaymentReference | None, customer_country: str | None,
                   currency: str) -> tuple[list[PaymentMeans], list[Identifier]]:
    """BG-16 from `payment.means`, or one credit transfer to `seller.payment_account`.
    Returns the means and the creditor identifiers (BT-90) they bring."""
    seller_country = seller.address.country if seller.address else None
    domestic_dk = seller_country == "DK" and customer_country == "DK"
    creditor_ids: list[Identifier] = []
    explicit = (data.get("payment") or {}).get("means") or []
    means: list[PaymentMeans] = []
    if reference is not None and reference.scheme in ("fik", "fik73", "fik75") and not explicit:
        creditor = reference.value.rstrip("<").rpartition("+")[2]
        means.append(PaymentMeans(code="93", account=creditor, account_name=seller.name or None,
                                  reference=reference))
    for i, item in enumerate(explicit):
        path = f"$.payment.means[{i}]"
        code = str(item["code"])
        if "account" in item:
            transfer = _transfer(item["account"], f"{path}.account", seller, reference,
                                 domestic_dk)
            means.append(PaymentMeans(code=code, account=transfer.account, bic=transfer.bic,
                                      account_name=transfer.account_name, reference=reference,
                                      text=text(item.get("text"))))
            continue
        card = item.get("card") or {}
        debit = item.get("direct_debit") or {}
        if debit.get("creditor_id"):
            creditor_ids.append(Identifier(required_text(debit["creditor_id"]), "SEPA"))
        means.append(PaymentMeans(
            code=code, reference=reference, text=text(item.get("text")),
            # BT-87 as EN 16931 writes it: the shown digits only, at most 10 (BR-51)
            card_pan="".join(c for c in card.get("pan", "") if c.isdigit()) or None,
            card_holder=text(card.get("holder")),
            card_network=text(card.get("network")) if card else None,
            mandate_id=text(debit.get("mandate_id")),
            debited_account=text(debit.get("debited_account")),
        ))
    account_data = data["seller"].get("payment_account")
    if account_data and not explicit and not means:  # FIK is the one means (UBL-SR-47)
        means.append(_transfer(account_data, "$.seller.payment_account", seller, reference,
                               domestic_dk))
    return means, creditor_ids


def type_code(data: Mapping[str, Any]) -> str:
    """BT-3: `type_code` when given, else 380 for an invoice and 381 for a credit note."""
    code = text(data.get("type_code"))
    if code:
        return code
    return CREDIT_NOTE if data.get("type") == "credit_note" else INVOICE


def read_invoice(data: Mapping[str, Any], currency: str) -> Invoice:
    """The input -> a computed, EN 16931-validated `Invoice`. Raises `InvalidInput` with
    every problem at its JSON path."""
    reader = _Reader()
    seller = reader.party(data["seller"], "$.seller", seller=True)
    buyer = reader.party({k: v for k, v in data["customer"].items()
                          if k not in ("email", "mobile")}, "$.customer", seller=False)
    sender_country = seller.address.country if seller.address else None
    reference = payment_reference(data["payment"], currency, sender_country) \
        if _has_reference(data.get("payment")) else None
    customer_country = buyer.address.country if buyer.address else None
    means, creditor_ids = _payment_means(reader, data, seller, reference, customer_country,
                                         currency)
    if creditor_ids:
        seller = Party(**{**_fields(seller), "identifiers": (*seller.identifiers,
                                                             *creditor_ids)})
    lines = _lines(reader, data)
    allowances = _allowances_charges(data)
    details = _details(reader, data)
    vat = data.get("vat_accounting")
    vat_accounting = VatAccounting(
        currency=vat["currency"],
        tax_total=_opt_amount(vat.get("tax_total"), "$.vat_accounting.tax_total",
                              allow_negative=True),
        exchange_rate=_opt_amount(vat.get("exchange_rate"), "$.vat_accounting.exchange_rate"),
    ) if vat else None
    if reader.problems:
        raise InvalidInput("invalid invoice", reader.problems)
    return compute_invoice(
        number=required_text(data["number"]),
        type_code=type_code(data),
        issue_date=iso_date(data["issue_date"], "$.issue_date"),
        due_date=_date(data.get("due_date"), "$.due_date"),
        currency=currency,
        seller=seller,
        buyer=buyer,
        lines=lines,
        allowances_charges=allowances,
        payment_means=means,
        prepaid=_opt_amount(data.get("prepaid_amount"), "$.prepaid_amount") or Decimal(0),
        rounding=_opt_amount(data.get("rounding_amount"), "$.rounding_amount",
                             allow_negative=True),
        round_payable_to=_opt_amount(data.get("round_payable_to"), "$.round_payable_to"),
        vat_accounting=vat_accounting,
        details=details,
        where=where(data),
    )


def _has_reference(payment: Mapping[str, Any] | None) -> bool:
    return bool(payment) and ("reference" in payment or "reference_base" in payment)


def _fields(party: Party) -> dict[str, Any]:
    return {name: getattr(party, name) for name in Party.__dataclass_fields__}


def _details(reader: _Reader, data: Mapping[str, Any]) -> Details:
    period = data.get("period") or {}
    preceding = [PrecedingInvoice(required_text(p.get("number")),
                                  _date(p.get("issue_date"),
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
        period_start=_date(period.get("start"), "$.period.start"),
        period_end=_date(period.get("end"), "$.period.end"),
        tax_point_date=_date(data.get("tax_point_date"), "$.tax_point_date"),
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
        tax_representative=_tax_representative(reader, rep) if rep else None,
        delivery=Delivery(
            party_name=text(delivery.get("party_name")),
            location=reader.identifier(delivery.get("location"), "$.delivery.location"),
            date=_date(delivery.get("date"), "$.delivery.date"),
            address=reader.address(delivery.get("address")),
        ) if delivery else None,
        attachments=_attachments(reader, data),
        exemption_reasons={k: v for k, v in (data.get("exemption_reasons") or {}).items()
                           if text(v)},
        exemption_codes={k: text(v) or "" for k, v in
                         (data.get("exemption_reason_codes") or {}).items() if text(v)},
    )


def _tax_representative(reader: _Reader, rep: Mapping[str, Any]) -> TaxRepresentative:
    address = reader.address(rep.get("address"))
    vat = required_text(rep.get("vat_id"))
    try:
        vat = ids.vat_id(vat, address.country if address else None)
    except ids.IdentifierError as exc:
        reader.fail("$.tax_representative.vat_id", str(exc))
    return TaxRepresentative(required_text(rep.get("name")), vat,
                             address or PostalAddress((), "", "", ""))


def _attachments(reader: _Reader, data: Mapping[str, Any]) -> list[Attachment]:
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
