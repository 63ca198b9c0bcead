"""Peppol BIS Billing 3.0 rules on a composed `Invoice`: what the receiving access point checks.

The official rule set is `PEPPOL-EN16931-UBL.sch` (release 3.0.19); this module checks, on
the model and before anything is rendered, every rule of it that data Kanal accepts can
break. Rules that hold by construction of `server.compose.invoice` and the UBL renderer are
listed in `BY_CONSTRUCTION` with the reason, so the list of rules is complete either way.
The tests run the same rules on the rendered XML (`tests/peppol_rules.py`), and they were
cross-checked against the official schematron.

Checked here:
* PEPPOL-EN16931-R003 (buyer or order reference), R010/R020 (electronic addresses),
  CL008 (EAS scheme), R110/R111 (line periods inside the invoice period), P0104..P0111
  (VATEX code agrees with the category), P0112 (326/384 only between German parties)
* PEPPOL-COMMON-R040..R050: identifier formats of the schemes that have rules
* Norway: NO-R-001 (seller VAT id NO + org number + MVA)
* Sweden: SE-R-001/002 (VAT id), SE-R-003/004/013 (organisation number), SE-R-005
  ("Godkänd för F-skatt"), SE-R-006 (standard rates 25/12/6), SE-R-007..010 (giro numbers)
* Denmark: DK-R-002/014 (CVR as legal id), DK-R-004 (ZZZ charges), DK-R-005 (payment
  means), DK-R-006/007/008/009/010/011 (what each means needs), DK-R-013 (party id scheme),
  DK-R-016 (a credit note's amount due is not negative: a prepaid amount can make it so
  even when its total is positive, which check_en16931 refuses for every credit note)

EN 16931 rules (BR-*) are `check_en16931`'s; both run for a Peppol e-invoice.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from decimal import Decimal

from server.compose.en16931 import Invoice, Party
from server.compose.identifiers import IdentifierError, normalise_id
from server.compose.validation.findings import Collector, Finding

BY_CONSTRUCTION: Mapping[str, str] = {
    "PEPPOL-EN16931-R001/R004/R007": "CustomizationID and ProfileID are constants",
    "PEPPOL-EN16931-R002": "the model has one document note",
    "PEPPOL-EN16931-R008": "blank text is absent and absent values are not written",
    "PEPPOL-EN16931-R040..R042": "allowance/charge percentages are checked by check_en16931",
    "PEPPOL-EN16931-R043": "ChargeIndicator is written 'true' or 'false'",
    "PEPPOL-EN16931-R044": "a price discount is written as an allowance (ChargeIndicator "
                           "'false')",
    "PEPPOL-EN16931-R046": "net = gross - discount is checked by check_en16931",
    "PEPPOL-EN16931-R051/CL007": "one ISO 4217 currency on every amount but BT-111",
    "PEPPOL-EN16931-R053..R055": "one TaxTotal with subtotals, a second one for BT-6",
    "PEPPOL-EN16931-R061": "checked by check_en16931",
    "PEPPOL-EN16931-R080/R100/R101": "one project reference, one object id per line",
    "PEPPOL-EN16931-R120/R121/R130": "line nets computed by compute_invoice",
    "PEPPOL-EN16931-CL001..CL003/CL006": "code lists shared with check_en16931",
    "PEPPOL-EN16931-P0100/P0101": "the type code lists are Peppol's (codelists)",
    "PEPPOL-EN16931-F001": "dates are written ISO 8601",
    "NO-R-002": "'Foretaksregisteret' is written for Norwegian sellers with an org number",
}

_VATEX_CATEGORY = {"VATEX-EU-G": "G", "VATEX-EU-O": "O", "VATEX-EU-IC": "K",
                   "VATEX-EU-AE": "AE", "VATEX-EU-D": "E", "VATEX-EU-F": "E",
                   "VATEX-EU-I": "E", "VATEX-EU-J": "E"}
_VATEX_RULE = {"VATEX-EU-G": "P0104", "VATEX-EU-O": "P0105", "VATEX-EU-IC": "P0106",
               "VATEX-EU-AE": "P0107", "VATEX-EU-D": "P0108", "VATEX-EU-F": "P0109",
               "VATEX-EU-I": "P0110", "VATEX-EU-J": "P0111"}
SWEDISH_STANDARD_RATES = frozenset({Decimal(25), Decimal(12), Decimal(6)})
F_SKATT = "GODKÄND FÖR F-SKATT"
DK_PAYMENT_MEANS = frozenset(["1", "10", "31", "42", "48", "49", "50", "58", "59", "93", "97"])


def supplier_country(invoice: Invoice) -> str:
    """Peppol's `$supplierCountry`: seller VAT prefix, else the tax representative's,
    else the seller's address country."""
    for vat in (invoice.seller.vat_id, invoice.tax_representative and
                invoice.tax_representative.vat_id):
        if vat:
            return vat[:2].upper()
    return invoice.seller.address.country if invoice.seller.address else "XX"


def _address_country(party: Party) -> str:
    return party.address.country if party.address else ""


def check_peppol(invoice: Invoice) -> list[Finding]:
    """Every Peppol rule (PEPPOL-*, NO/SE/DK national) the invoice breaks."""
    add = Collector()
    if not (invoice.buyer_reference or invoice.order_reference):
        add("buyer_reference", "PEPPOL-EN16931-R003",
            "a buyer reference or a purchase order reference must be given")
    _endpoint(add.at("seller"), invoice.seller, "PEPPOL-EN16931-R020")
    _endpoint(add.at("buyer"), invoice.buyer, "PEPPOL-EN16931-R010")
    for role, party in (("seller", invoice.seller), ("buyer", invoice.buyer)):
        if party.legal_id and party.legal_id_scheme:
            _identifier(add, f"{role}.legal_id", party.legal_id_scheme, party.legal_id)
        for i, ident in enumerate(party.identifiers):
            if ident.scheme:
                _identifier(add, f"{role}.identifiers[{i}]", ident.scheme, ident.value)
    for i, line in enumerate(invoice.lines):
        if invoice.period_start and line.period_start and line.period_start < \
                invoice.period_start:
            add(f"lines[{i}].period_start", "PEPPOL-EN16931-R110",
                "the line period starts within the invoice period")
        if invoice.period_end and line.period_end and line.period_end > invoice.period_end:
            add(f"lines[{i}].period_end", "PEPPOL-EN16931-R111",
                "the line period ends within the invoice period")
    for entry in invoice.vat_breakdown:
        code = (entry.exemption_reason_code or "").upper()
        if code in _VATEX_CATEGORY and _VATEX_CATEGORY[code] != entry.category:
            add(f"exemption_codes.{entry.category}", f"PEPPOL-EN16931-{_VATEX_RULE[code]}",
                f"{code} is only used with VAT category {_VATEX_CATEGORY[code]}")
    if invoice.type_code in ("326", "384") and not (
            _address_country(invoice.seller) == "DE" and _address_country(invoice.buyer) == "DE"):
        add("type_code", "PEPPOL-EN16931-P0112", "type codes 326 and 384 are only for German "
            "seller and buyer")
    _norway(add, invoice)
    _sweden(add, invoice)
    _denmark(add, invoice)
    return add.out


def _endpoint(add: Collector, party: Party, rule: str) -> None:
    if not party.endpoint_id:
        add("endpoint_id", rule, "the electronic address (Peppol participant id) is required")
        return
    if party.endpoint_scheme:
        _identifier(add, "endpoint_id", party.endpoint_scheme, party.endpoint_id)


def _identifier(add: Collector, path: str, scheme: str, value: str) -> None:
    """PEPPOL-COMMON-R040..R050: the value is in its scheme's exact form."""
    try:
        normal = normalise_id(scheme, value)
    except IdentifierError as exc:
        add(path, exc.rule, str(exc).partition("] ")[2])
        return
    if normal != value:
        add(path, "PEPPOL-COMMON-R049" if scheme == "0007" else "BR-CL-11",
            f"{value!r} must be written {normal!r} for scheme {scheme}")


def _norway(add: Collector, invoice: Invoice) -> None:
    vat = invoice.seller.vat_id
    if supplier_country(invoice) == "NO" and vat and vat.startswith("NO") and not (
            re.fullmatch(r"NO[0-9]{9}MVA", vat) and _mod11(vat[2:11])):
        add("seller.vat_id", "NO-R-001", "a Norwegian VAT id is NO + a valid 9-digit "
            "organisation number + MVA")


def _mod11(number: str) -> bool:
    digits = [int(d) for d in number[:-1]][::-1]
    total = sum(d * (i % 6 + 2) for i, d in enumerate(digits))
    return int(number) > 0 and (11 - total % 11) % 11 == int(number[-1])


def _sweden(add: Collector, invoice: Invoice) -> None:
    seller = invoice.seller
    if _address_country(seller) != "SE":
        return
    vat = seller.vat_id or ""
    if vat.startswith("SE"):
        if len(vat) != 14:
            add("seller.vat_id", "SE-R-001", "a Swedish VAT id has 14 characters")
        if not vat[2:14].isdigit():
            add("seller.vat_id", "SE-R-002", "a Swedish VAT id has 12 digits after 'SE'")
        for i, line in enumerate(invoice.lines):
            if line.vat_category == "S" and line.vat_rate not in SWEDISH_STANDARD_RATES:
                add(f"lines[{i}].vat_rate", "SE-R-006", "Swedish standard rates are 25, 12, 6")
        for i, ac in enumerate(invoice.allowances_charges):
            if ac.vat_category == "S" and ac.vat_rate not in SWEDISH_STANDARD_RATES:
                add(f"allowances_charges[{i}].vat_rate", "SE-R-006",
                    "Swedish standard rates are 25, 12, 6")
    if seller.legal_id:
        number = seller.legal_id
        if not (number.isdigit() and len(number) == 10):
            add("seller.legal_id", "SE-R-004", "a Swedish organisation number is 10 digits")
        elif not _luhn(number):
            add("seller.legal_id", "SE-R-013", "the last digit of a Swedish organisation "
                "number is its Luhn check digit")
        if seller.tax_registration_id and seller.tax_registration_id.strip().upper() != F_SKATT:
            add("seller.tax_registration_id", "SE-R-005", "a Swedish seller's tax registration "
                "is stated 'Godkänd för F-skatt'")
    for i, means in enumerate(invoice.payment_means):
        if means.code != "30" or means.bic not in ("SE:BANKGIRO", "SE:PLUSGIRO"):
            continue
        account = means.account or ""
        low, high = (7, 8) if means.bic == "SE:BANKGIRO" else (2, 8)
        if not (account.isdigit() and low <= len(account) <= high):
            add(f"payment_means[{i}].account", "SE-R-009" if low == 7 else "SE-R-010",
                f"a {means.bic[3:].lower()} number is {low}-{high} digits")


def _luhn(number: str) -> bool:
    total = 0
    for i, d in enumerate(int(c) for c in reversed(number)):
        total += d if i % 2 == 0 else (d * 2 // 10 + d * 2 % 10)
    return total % 10 == 0


def _denmark(add: Collector, invoice: Invoice) -> None:
    seller, buyer = invoice.seller, invoice.buyer
    if _address_country(seller) != "DK":
        return
    if not seller.legal_id:
        add("seller.legal_id", "DK-R-002", "a Danish seller gives its CVR number")
    elif seller.legal_id_scheme != "0184":
        add("seller.legal_id", "DK-R-014", "a Danish seller's legal id has scheme 0184 (CVR)")
    if _address_country(buyer) != "DK":
        return
    for role, party in (("seller", seller), ("buyer", buyer)):
        for i, ident in enumerate(party.identifiers):
            if not ident.scheme:
                add(f"{role}.identifiers[{i}].scheme", "DK-R-013", "a party identifier "
                    "between Danish parties needs its scheme")
    for i, ac in enumerate(invoice.allowances_charges):
        reason = (ac.reason or "").strip()
        if ac.reason_code == "ZZZ" and not (re.fullmatch(r"[0-9]{4}", reason) or (
                "#" in reason and not reason.startswith("#") and not reason.endswith("#"))):
            add(f"allowances_charges[{i}].reason", "DK-R-004", "a ZZZ (non-VAT tax) charge "
                "names its 4-digit tax category or a text with '#' inside")
    if invoice.is_credit_note:
        if invoice.totals.payable < 0:
            add("prepaid", "DK-R-016", "between Danish parties a credit note's amount due "
                f"(BT-115) is not negative; the paid amount makes it {invoice.totals.payable}")
        return
    for i, means in enumerate(invoice.payment_means):
        at = add.at(f"payment_means[{i}]")
        pid = means.payment_id or ""
        if means.code not in DK_PAYMENT_MEANS:
            at("code", "DK-R-005", "between Danish parties the payment means are 1, 10, 31, "
               "42, 48, 49, 50, 58, 59, 93 or 97")
        if means.code in ("31", "42") and not (means.account and means.bic):
            at("account", "DK-R-006", "payment means 31/42 need the account and the bank "
               "registration number")
        if means.code == "49" and not (means.mandate_id and means.debited_account):
            at("mandate_id", "DK-R-007", "payment means 49 needs the mandate and the payer's "
               "account")
        if means.code == "50":
            if not (pid[:3] in ("01#", "04#", "15#") and re.fullmatch(r"[0-9]{7,8}",
                                                                       means.account or "")):
                at("reference", "DK-R-008", "giro (50) needs a 01#/04#/15# payment id and a "
                   "7-8 digit giro account")
            elif pid[:3] in ("04#", "15#") and len(pid) != 19:
                at("reference", "DK-R-009", "a 04#/15# giro payment id has 16 digits")
        if means.code == "93":
            if not (pid[:3] in ("71#", "73#", "75#") and len(means.account or "") == 8):
                at("reference", "DK-R-010", "FIK (93) needs a 71#/73#/75# payment id and the "
                   "8-digit creditor number")
            elif pid[:3] in ("71#", "75#") and len(pid) not in (18, 19):
                at("reference", "DK-R-011", "a 71#/75# FIK payment id has 15-16 digits")
