"""EN 16931-1 business rules on a computed `Invoice` (the rules of the CEN schematron).

Rules that hold by construction of `server.compose.invoice` (totals BR-CO-10..16, the VAT
breakdown's sums BR-CO-14/17, BR-45..48, BR-S-08 and its siblings, one breakdown per
category and rate) are not re-checked here; what a caller's data can break is:

* presence: BR-02..BR-11, BR-16, BR-17..20, BR-21..26, BR-52, BR-54..57, BR-62..65
* values: BR-27/28 (prices), PEPPOL-EN16931-R046 (net price = gross - discount), BR-29/30
  (periods), BR-31..44 (allowances, charges and their reasons), BR-49/50/61 (payment
  means), BR-51 (card number masked), BR-53 (BT-111 with BT-6), BR-CO-03 (tax point date
  xor code), BR-CO-09 (VAT id prefixes), BR-CO-25 (due date or terms when an invoice
  asks for a payment), BR-CO-26 (a seller identifier)
* Kanal's own: KANAL-DUE-DATE (an invoice's due date is not before its issue date;
  EN 16931 has no such rule, France's CIUS has it as BR-FR-CO-07: `due_before_issue`),
  KANAL-CREDIT-NOTE (a credit note's total is not negative), KANAL-CREDIT-NOTE-REFERENCE
  (a credit note names the invoice it credits, BG-3: `credit_note_reference`)
* VAT categories: BR-S/Z/E/AE/IC/G/O/IG/IP-02..05 and -10 (VAT ids, rates, exemption
  reasons), BR-IC-11/12 (intra-community supply needs delivery date and country), BR-O-11..14
* decimals: BR-DEC-* (amounts with at most the currency's minor unit, never more than 2)
* code lists: BR-CL-* (from `server.compose.codelists`)
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from datetime import date
from decimal import Decimal

from server.compose import codelists
from server.compose.en16931 import Invoice, Party
from server.compose.money import is_rounded
from server.compose.validation.findings import Collector, Finding

VAT_CATEGORIES = frozenset(codelists.VAT_CATEGORIES) - {"B"}  # B: Italian split payment only
ZERO_RATE = frozenset({"Z", "E", "AE", "K", "G"})
EXEMPTION_REQUIRED = frozenset({"E", "AE", "K", "G", "O"})
SELLER_VAT_REQUIRED = frozenset({"S", "Z", "E", "AE", "K", "G", "L", "M"})
CREDIT_TRANSFER = frozenset({"30", "58"})  # BR-61 / BR-50: the account is required
CARD = frozenset({"48", "54", "55"})
DIRECT_DEBIT = frozenset({"49", "59"})
# The BR rule group EN 16931 uses for a category
GROUP = {"K": "IC", "L": "IG", "M": "IP"}
_VAT_PREFIXES = frozenset(codelists.COUNTRIES) | {"EL"}
_PAN_DIGITS = re.compile(r"[0-9]")


def _g(category: str) -> str:
    return GROUP.get(category, category)


def due_before_issue(issued: date, due: date, today: date | None, *, issued_at: str,
                     due_at: str) -> tuple[bool, str] | None:
    """None when the due date `due` is on or after the issue date `issued`; else (whether
    to blame the issue date, the reason naming both dates and where each is: `issued_at`,
    `due_at`). KANAL-DUE-DATE: one of the two was mistyped, and the refusal names the one
    the caller most likely got wrong. The due date, when it has already passed on `today`
    (the composition date): a due date in the past is wrong whatever the issue date says.
    Else the issue date, which then lies after today as well as after its own due date: a
    document is dated the day it is issued (2026-12-02 typed for 2026-03-02). `today`
    None (not known): the due date, as before."""
    if due >= issued:
        return None
    if today is not None and due >= today:
        return True, (f"{issued.isoformat()} is after the due date {due.isoformat()} "
                      f"({due_at}), and after today ({today.isoformat()}): a document is "
                      "dated the day it is issued, on or before its due date")
    return False, (f"{due.isoformat()} is before the issue date {issued.isoformat()} "
                   f"({issued_at}): a due date is on or after the day the document is "
                   "issued")


def check_en16931(
    invoice: Invoice,
    *,
    inputs: Sequence = (),
    document_ac: Sequence = (),
    vat_accounting=None,
    info=None,
    today: date | None = None,
) -> list[Finding]:
    """Every EN 16931 rule the invoice breaks (empty: valid), and Kanal's own (module
    docstring). `today`: the composition date, which tells which of two dates in the wrong
    order was more likely mistyped (`due_before_issue`)."""
    add = Collector()
    cur = invoice.currency
    if not invoice.number.strip():
        add("number", "BR-02", "an invoice number is required")
    if invoice.type_code not in codelists.INVOICE_TYPES and \
            invoice.type_code not in codelists.CREDIT_NOTE_TYPES:
        add("type_code", "BR-CL-01", f"{invoice.type_code!r} is not a supported UNCL1001 "
            "document type code")
    if cur not in codelists.CURRENCIES:
        add("currency", "BR-CL-04", f"{cur!r} is not an ISO 4217 currency code")
    misdated = None if invoice.due_date is None or invoice.is_credit_note else \
        due_before_issue(invoice.issue_date, invoice.due_date, today,
                         issued_at="BT-2", due_at="BT-9")
    if misdated:  # was "[BR-CO-25]", a rule about a due date or terms being there at all
        add("issue_date" if misdated[0] else "due_date", "KANAL-DUE-DATE", misdated[1])
    if invoice.period_start and invoice.period_end and invoice.period_end < invoice.period_start:
        add("period_end", "BR-29", "the invoicing period ends before it starts")
    if invoice.tax_point_date and invoice.tax_point_code:
        add("tax_point_code", "BR-CO-03", "give the VAT point date or its code, not both")
    if invoice.tax_point_code and invoice.tax_point_code not in codelists.TAX_POINT_CODES:
        add("tax_point_code", "BR-CL-06", "the VAT point date code is one of 3, 35, 432")
    if invoice.note_subject and invoice.note_subject not in codelists.NOTE_SUBJECTS:
        add("note_subject", "BR-CL-08", f"{invoice.note_subject!r} is not a UNCL4451 code")
    _party(add.at("seller"), invoice.seller, "seller")
    _party(add.at("buyer"), invoice.buyer, "buyer")
    if not (invoice.seller.identifiers or invoice.seller.legal_id or invoice.seller.vat_id
            or invoice.tax_representative):
        add("seller.org_number", "BR-CO-26", "the seller needs an identifier, an organisation "
            "number or a VAT id")
    _other_parties(add, invoice)
    if not invoice.lines:
        add("lines", "BR-16", "an invoice needs at least one line")
    seen: set[str] = set()
    for i, line in enumerate(invoice.lines):
        _line(add.at(f"lines[{i}]"), line, invoice, seen)
    for i, ac in enumerate(invoice.allowances_charges):
        at = add.at(f"allowances_charges[{i}]")
        _allowance_charge(at, ac, cur, document=True)
        _check_vat(at, ac.vat_category, ac.vat_rate)
    _categories(add, invoice, info)
    _payment(add, invoice)
    _totals(add, invoice, vat_accounting)
    missing = credit_note_reference(invoice)
    if missing:
        add("preceding_invoices", "KANAL-CREDIT-NOTE-REFERENCE", missing)
    for i, ref in enumerate(invoice.preceding_invoices):
        if not ref.number.strip():
            add(f"preceding_invoices[{i}].number", "BR-55", "a preceding invoice number is "
                "required")
    if invoice.invoiced_object and invoice.invoiced_object.scheme and \
            invoice.invoiced_object.scheme not in codelists.OBJECT_SCHEMES:
        add("invoiced_object.scheme", "BR-CL-07", "the scheme is a UNCL1153 code")
    for i, att in enumerate(invoice.attachments):
        at = add.at(f"attachments[{i}]")
        if not att.id.strip():
            at("id", "BR-52", "an attachment needs a reference")
        if (att.content is not None or att.rendered_pdf) and (
                att.mime_code not in codelists.MIME_CODES):
            at("mime_code", "BR-CL-24", f"{att.mime_code!r} is not an allowed attachment type "
               f"({', '.join(codelists.MIME_CODES)})")
        if att.content is not None and not att.filename:
            at("filename", "BR-CL-24", "an embedded attachment needs a file name")
    return add.out


def credit_note_reference(invoice: Invoice) -> str | None:
    """None, or why a credit note that names no invoice it credits (BG-3, BT-25: none, or
    only blank numbers) is refused. EN 16931 makes BG-3 optional, but the VAT Directive
    2006/112/EC art. 219 treats a document that amends an invoice as an invoice only when it
    "refers specifically and unambiguously to the initial invoice" (and art. 226 lists what
    an invoice states): without the reference the buyer cannot book the credit against the
    invoice. Kanal's own rule, for every layout and version that takes credit notes."""
    if not invoice.is_credit_note or any(p.number.strip() for p in invoice.preceding_invoices):
        return None
    return ("a credit note must name the invoice it credits (BG-3: preceding_invoices "
            "[{number, issue_date}], or preceding_invoice): VAT Directive 2006/112/EC "
            "art. 219 wants a document amending an invoice to refer specifically and "
            "unambiguously to it")


def _party(add: Collector, party: Party, role: str) -> None:
    """BR-6/7 names, BR-8/9/10/11 addresses, BR-CO-09 VAT prefix, BR-62/63 scheme, BR-CL."""
    seller = role == "seller"
    if not party.name.strip():
        add("name", "BR-06" if seller else "BR-07", f"the {role}'s name is required")
    if party.address is None:
        add("address", "BR-08" if seller else "BR-10", f"the {role}'s postal address is "
            "required")
    elif party.address.country not in codelists.COUNTRIES:
        add("address.country", "BR-09" if seller else "BR-11", "an ISO 3166-1 alpha-2 country "
            "code is required")
    if party.vat_id and party.vat_id[:2] not in _VAT_PREFIXES:
        add("vat_id", "BR-CO-09", "a VAT identifier starts with its country prefix")
    if party.endpoint_id and not party.endpoint_scheme:
        add("endpoint_scheme", "BR-62" if seller else "BR-63", "an electronic address needs "
            "its scheme")
    if party.endpoint_scheme and party.endpoint_scheme not in codelists.EAS:
        add("endpoint_scheme", "BR-CL-25", f"{party.endpoint_scheme!r} is not on the EAS list "
            f"({codelists.EAS.version})")
    if party.legal_id_scheme and party.legal_id_scheme not in codelists.ICD:
        add("legal_id_scheme", "BR-CL-11", f"{party.legal_id_scheme!r} is not an ISO 6523 ICD")
    for i, ident in enumerate(party.identifiers):
        if ident.scheme and ident.scheme not in codelists.ICD and ident.scheme != "SEPA":
            add(f"identifiers[{i}].scheme", "BR-CL-10", f"{ident.scheme!r} is not an ISO 6523 "
                "ICD")


def _other_parties(add: Collector, invoice: Invoice) -> None:
    payee, rep, delivery = invoice.payee, invoice.tax_representative, invoice.delivery
    if payee is not None and not payee.name.strip():
        add("payee.name", "BR-17", "the payee's name is required")
    elif payee is not None and payee.name == invoice.seller.name:
        add("payee.name", "UBL-SR-19", "the payee is someone other than the seller: when the "
            "seller is paid, leave the payee out")
    if rep is not None:
        if not rep.name.strip():
            add("tax_representative.name", "BR-18", "the tax representative's name is required")
        if rep.address.country not in codelists.COUNTRIES:
            add("tax_representative.address.country", "BR-20", "an ISO 3166-1 country code is "
                "required")
        if not rep.vat_id or rep.vat_id[:2] not in _VAT_PREFIXES:
            add("tax_representative.vat_id", "BR-56", "the tax representative's VAT id (with "
                "its country prefix) is required")
    if delivery is not None and delivery.address is not None and \
            delivery.address.country not in codelists.COUNTRIES:
        add("delivery.address.country", "BR-57", "a deliver-to address needs its country")
    if delivery is not None and delivery.location and delivery.location.scheme and \
            delivery.location.scheme not in codelists.ICD:
        add("delivery.location.scheme", "BR-CL-26", "the location id scheme is an ISO 6523 ICD")


def _line(add: Collector, line, invoice: Invoice, seen: set[str]) -> None:
    cur = invoice.currency
    if not line.id.strip():
        add("id", "BR-21", "a line identifier is required")
    elif line.id in seen:
        add("id", "BR-21", f"line id {line.id!r} is used twice")
    seen.add(line.id)
    if not line.name.strip():
        add("name", "BR-25", "an item name is required")
    if line.unit_code not in codelists.UNITS:
        add("unit_code", "BR-CL-23", f"{line.unit_code!r} is not a UN/ECE Rec 20/21 unit code")
    if line.unit_price < 0:
        add("unit_price", "BR-27", "the item net price must not be negative")
    if line.gross_price is not None and line.gross_price < 0:
        add("gross_price", "BR-28", "the item gross price must not be negative")
    if line.price_discount is not None and line.gross_price is None:
        add("price_discount", "BR-28", "a price discount needs the gross price")
    elif line.gross_price is not None:
        # EN 16931 defines BT-146 as BT-148 - BT-147 and every syntax writes all three, so a
        # receiver checks it (Peppol's R046 on the price allowance); a caller may send the
        # net price beside the gross price, and the two must agree
        expected = line.gross_price - (line.price_discount or Decimal(0))
        if line.unit_price != expected:
            add("unit_price", "PEPPOL-EN16931-R046", "the item net price (BT-146) is the gross "
                "price (BT-148) less the price discount (BT-147): "
                f"{line.gross_price:f} - {line.price_discount or Decimal(0):f} = {expected:f}, "
                f"not {line.unit_price:f}; give that unit_price or leave it out")
    if line.base_quantity is not None and line.base_quantity <= 0:
        add("base_quantity", "PEPPOL-EN16931-R121", "the price base quantity is above zero")
    if line.period_start and line.period_end and line.period_end < line.period_start:
        add("period_end", "BR-30", "the line period ends before it starts")
    if line.object_id and line.object_id.scheme and \
            line.object_id.scheme not in codelists.OBJECT_SCHEMES:
        add("object_id.scheme", "BR-CL-07", "the scheme is a UNCL1153 code")
    if line.standard_item_id is not None:
        if not line.standard_item_id.scheme:
            add("standard_item_id.scheme", "BR-64", "a standard item id needs its scheme")
        elif line.standard_item_id.scheme not in codelists.ICD:
            add("standard_item_id.scheme", "BR-CL-21", "the scheme is an ISO 6523 ICD")
    for j, cls in enumerate(line.classifications):
        if not cls.scheme:
            add(f"classifications[{j}].scheme", "BR-65", "a classification needs its scheme")
        elif cls.scheme not in codelists.ITEM_CLASSIFICATIONS:
            add(f"classifications[{j}].scheme", "BR-CL-13", "the scheme is a UNCL7143 code")
    if line.origin_country and line.origin_country not in codelists.COUNTRIES:
        add("origin_country", "BR-CL-15", "an ISO 3166-1 alpha-2 country code is required")
    for j, attr in enumerate(line.attributes):
        if not (attr.name.strip() and attr.value.strip()):
            add(f"attributes[{j}]", "BR-54", "an item attribute needs a name and a value")
    for j, ac in enumerate(line.allowances_charges):
        _allowance_charge(add.at(f"allowances_charges[{j}]"), ac, cur, document=False)
    _check_vat(add, line.vat_category, line.vat_rate)


def _allowance_charge(add: Collector, ac, currency: str, *, document: bool) -> None:
    """BR-31..44 and BR-CO-21..24: amount, reason or reason code, code lists, decimals."""
    charge = ac.is_charge
    if not is_rounded(ac.amount, currency):
        add("amount", "BR-DEC-01" if document else "BR-DEC-24",
            f"an amount has at most the currency's decimals ({currency})")
    if not (ac.reason or "").strip() and not ac.reason_code:
        rule = ("BR-38" if charge else "BR-33") if document else ("BR-44" if charge else "BR-42")
        add("reason", rule, "a reason or a reason code is required")
    if ac.reason_code:
        codes, rule = ((codelists.CHARGE_REASONS, "BR-CL-20") if charge
                       else (codelists.ALLOWANCE_REASONS, "BR-CL-19"))
        if ac.reason_code not in codes:
            add("reason_code", rule, f"{ac.reason_code!r} is not a "
                f"{'UNCL7161 charge' if charge else 'UNCL5189 allowance'} reason code")
    if (ac.base_amount is None) != (ac.percent is None):
        add("percent" if ac.percent is None else "base_amount",
            "PEPPOL-EN16931-R041" if ac.percent is not None else "PEPPOL-EN16931-R042",
            "give the percentage and its base amount together")
    elif ac.base_amount is not None and ac.percent is not None:
        expected = ac.base_amount * ac.percent / Decimal(100)
        if abs(expected - ac.amount) > Decimal("0.02"):
            add("amount", "PEPPOL-EN16931-R040", f"the amount is base x percentage / 100 "
                f"({expected:f})")


def _check_vat(add: Collector, category: str, rate: Decimal | None) -> None:
    """A category with the rate the category allows (BR-x-05)."""
    if category not in VAT_CATEGORIES:
        add("vat_category", "BR-CL-18", f"{category!r} is not a supported UNCL5305 VAT "
            f"category ({', '.join(sorted(VAT_CATEGORIES))})")
        return
    if category == "O":
        return  # the model never stores a rate for O
    if rate is None:
        add("vat_rate", f"BR-{_g(category)}-05", f"VAT category {category} needs a VAT rate")
    elif rate < 0 or rate >= 100:
        add("vat_rate", f"BR-{_g(category)}-05", "a VAT rate is a percentage from 0 to 100")
    elif category == "S" and rate <= 0:
        add("vat_rate", "BR-S-05", "standard rated (S) needs a VAT rate above zero")
    elif category in ZERO_RATE and rate != 0:
        add("vat_rate", f"BR-{_g(category)}-05", f"VAT category {category} has a VAT rate of 0")


def _categories(add: Collector, invoice: Invoice, info) -> None:
    """Rules over the categories used: VAT ids, exemption reasons, O alone, K delivery."""
    seller, buyer, rep = invoice.seller, invoice.buyer, invoice.tax_representative
    categories = [ln.vat_category for ln in invoice.lines] + \
        [ac.vat_category for ac in invoice.allowances_charges]
    used = list(dict.fromkeys(categories))
    reasons: Mapping[str, str] = getattr(info, "exemption_reasons", {}) or {}
    codes: Mapping[str, str] = getattr(info, "exemption_codes", {}) or {}
    for category in used:
        g = _g(category)
        if category in SELLER_VAT_REQUIRED and not (seller.vat_id or (rep and rep.vat_id)):
            add("seller.vat_id", f"BR-{g}-02", f"VAT category {category} needs the seller's "
                "VAT id (or a tax representative's)")
        if category in EXEMPTION_REQUIRED:
            if not (reasons.get(category) or "").strip() and not codes.get(category):
                add(f"exemption_reasons.{category}", f"BR-{g}-10", f"VAT category {category} "
                    "needs an exemption reason text or code")
        elif (reasons.get(category) or codes.get(category)):
            add(f"exemption_reasons.{category}", f"BR-{g}-10", f"VAT category {category} has "
                "no exemption reason")
        code = codes.get(category)
        if code and code.upper() not in codelists.VATEX:
            add(f"exemption_codes.{category}", "BR-CL-22", f"{code!r} is not a VATEX code")
        if category in ("AE", "K") and not (buyer.vat_id or (category == "AE" and buyer.legal_id)):
            add("buyer.vat_id", f"BR-{g}-03" if category == "K" else "BR-AE-03",
                f"VAT category {category} needs the buyer's VAT id"
                + (" or legal registration id" if category == "AE" else ""))
    if "K" in used:
        d = invoice.delivery
        if not ((d and d.date) or invoice.period_start or invoice.period_end):
            add("delivery.date", "BR-IC-11", "an intra-community supply needs the actual "
                "delivery date or the invoicing period")
        if not (d and d.address and d.address.country):
            add("delivery.address.country", "BR-IC-12", "an intra-community supply needs the "
                "deliver-to country")
    if "O" in used:
        if len(used) > 1:
            add("lines", "BR-O-11", "category O (not subject to VAT) cannot be mixed with other "
                "categories")
        if seller.vat_id:
            add("seller.vat_id", "BR-O-02", "with category O the seller VAT id is not shown")
        if buyer.vat_id:
            add("buyer.vat_id", "BR-O-02", "with category O the buyer VAT id is not shown")
        if rep is not None:
            add("tax_representative", "BR-O-04", "with category O there is no tax "
                "representative VAT id")


def _payment(add: Collector, invoice: Invoice) -> None:
    for i, means in enumerate(invoice.payment_means):
        at = add.at(f"payment_means[{i}]")
        if means.code not in codelists.PAYMENT_MEANS:
            at("code", "BR-CL-16", f"{means.code!r} is not a UNCL4461 payment means code")
        if means.code in CREDIT_TRANSFER and not means.account:
            at("account", "BR-61", "a credit transfer needs the payee account")
        if means.card_pan is not None:
            digits = len(_PAN_DIGITS.findall(means.card_pan))
            if digits > 10 or len(means.card_pan) > 10:
                at("card_pan", "BR-51", "a card number shows at most its first 6 and last 4 "
                   "digits (PCI DSS)")
        if means.code in DIRECT_DEBIT and not means.mandate_id:
            at("mandate_id", "PEPPOL-EN16931-R061", "a direct debit needs the mandate "
               "reference")
    codes = {m.code for m in invoice.payment_means}
    if len(codes) > 1:  # one BG-16: several accounts, one means code (UBL-SR-47, CII-SR-?)
        add("payment_means", "UBL-SR-47", "an invoice has one payment means code; give "
            f"several accounts with the same code, not {', '.join(sorted(codes))}")
    cards = sum(1 for m in invoice.payment_means if m.card_pan)
    if cards > 1:
        add("payment_means", "BR-66", "at most one payment card")
    debits = sum(1 for m in invoice.payment_means if m.mandate_id)
    if debits > 1:
        add("payment_means", "BR-67", "at most one direct debit")


def _totals(add: Collector, invoice: Invoice, vat_accounting) -> None:
    t, cur = invoice.totals, invoice.currency
    if not is_rounded(t.prepaid, cur):
        add("prepaid", "BR-DEC-16", "the paid amount has at most the currency's decimals")
    # an invoice's rule: a credit note's positive BT-115 is credited, not due (CEN's
    # schematron fires it on invoices only, issues #84, #241), and it asks for no payment
    if invoice.asks_for_payment and invoice.due_date is None and not invoice.payment_terms:
        add("due_date", "BR-CO-25", "an amount is due, so a due date or payment terms are "
            "needed")
    if invoice.is_credit_note and t.tax_inclusive < 0:
        # Kanal's rule (Peppol's DK-R-016 for Danish parties): a credit note credits, its
        # total is not negative; a negative correction is an invoice with negative lines
        add("lines", "KANAL-CREDIT-NOTE", "a credit note's amounts are positive (what is "
            f"credited); its total came to {t.tax_inclusive}: send credited quantities as positive "
            "numbers, or make it an invoice (380) with negative lines")
    if invoice.tax_currency is not None:
        if invoice.tax_currency not in codelists.CURRENCIES:
            add("vat_accounting.currency", "BR-CL-05", "an ISO 4217 currency code is required")
        if invoice.tax_currency == cur:
            add("vat_accounting.currency", "PEPPOL-EN16931-R005", "the VAT accounting "
                "currency differs from the invoice currency")
        if t.tax_in_accounting_currency is None:
            add("vat_accounting", "BR-53", "with a VAT accounting currency the VAT total in "
                "that currency (or the exchange rate) is required")
        elif (t.tax_in_accounting_currency < 0) != (t.tax < 0) and t.tax and \
                t.tax_in_accounting_currency:
            add("vat_accounting.tax_total", "PEPPOL-EN16931-R055", "the VAT total in the "
                "accounting currency has the sign of the VAT total")
