"""`Invoice` -> the Peppol BIS Billing 3.0 rule violations it would raise, before sending.

EN 16931 rules (BR-*) are enforced where the invoice is computed
(`server.compose.invoice.compute_invoice`); Peppol adds its own on top (the
PEPPOL-EN16931-R*, PEPPOL-COMMON-R*, CL* and national NO-/SE-/DK- rules of
`PEPPOL-EN16931-UBL.sch`). This module checks the ones that depend on the data a caller
sends, so that a bad e-invoice is refused with field paths at composition time instead of
being rejected later by the receiving access point.

Rules checked here:

* PEPPOL-EN16931-R003  buyer reference (BT-10) or purchase order reference (BT-13)
* PEPPOL-EN16931-R010  buyer electronic address (BT-49)
* PEPPOL-EN16931-R020  seller electronic address (BT-34)
* PEPPOL-EN16931-CL008 electronic address scheme from the EAS code list
* PEPPOL-COMMON-R040   GLN (0088) check digit                          (warning in Peppol)
* PEPPOL-COMMON-R041   Norwegian organisation number (0192): 9 digits, MOD11
* PEPPOL-COMMON-R042   Danish CVR (0184) format
* NO-R-001             Norwegian seller VAT id = "NO" + valid org number + "MVA"
* SE-R-001, SE-R-002   Swedish seller VAT id: 14 characters, 12 digits after "SE"
* SE-R-006             Swedish seller, category S: rate 25, 12 or 6
* DK-R-002             Danish seller: legal entity (CVR) given
* PEPPOL-EN16931-P0100/P0101  type code 380 / 381 for profile 01
* PEPPOL-EN16931-R061  direct debit (49, 59) needs a mandate: not supported, refused
* PEPPOL-EN16931-CL002/CL003  allowance reason code in UNCL5189 subset, charge in UNCL7161
* PEPPOL-EN16931-R120  line net = quantity x price (within 0.02)
* Kanal code lists: units (UN/ECE Rec 20 subset), payment means (UNCL4461 subset), VAT
  categories (UNCL5305) as `server.compose.invoice` supports them.

Rules that hold by construction of `ubl.render_ubl` and are therefore not checked here:
R001/R004/R007 (CustomizationID/ProfileID constants), R002 (one note), R008 (no empty
elements: absent values are omitted), R040/R041/R042 (Kanal writes no allowance
percentages or base amounts, so amount = base x percentage cannot be violated), R043
(ChargeIndicator is "true"/"false"), R044/R046 (no price-level allowances or gross prices
are written), R051/CL007 (one ISO 4217 currency on every amount), R053/R054 (one TaxTotal
with subtotals, no tax currency), R121/R130 (no base quantity), F001 (ISO dates),
NO-R-002 ("Foretaksregisteret" is written for Norwegian sellers with an org number).
"""

from __future__ import annotations

import re
from collections.abc import Callable
from decimal import Decimal

from server.compose.invoice import (
    PAYMENT_MEANS_CODES,
    UNIT_CODES,
    VAT_CATEGORIES,
)
from server.compose.model import Invoice, Party
from server.errors import FieldViolation

# Electronic Address Scheme (EAS) codes accepted by Peppol (PEPPOL-EN16931-CL008), as listed
# in the `eaid` variable of PEPPOL-EN16931-UBL.sch (Norway 0192, Sweden 0007, Finland 0037,
# Denmark 0184, GLN 0088). Keep it in step with the Peppol release access points validate with.
_EAS_CODES_TEXT = """
    0002 0007 0009 0037 0060 0088 0096 0097 0106 0130 0135 0142 0151 0183 0184 0190 0191
    0192 0193 0195 0196 0198 0199 0200 0201 0202 0204 9901 9906 9907 9910 9913 9914 9915
    9918 9919 9920 9922 9923 9924 9925 9926 9927 9928 9929 9930 9931 9932 9933 9934 9935
    9936 9937 9938 9939 9940 9941 9942 9943 9944 9945 9946 9947 9948 9949 9950 9951 9952
    9953 9955 9956 9957 9958
    """
EAS_CODES = frozenset(_EAS_CODES_TEXT.split())

# UNCL5189 subset for allowance reasons (PEPPOL-EN16931-CL002).
_ALLOWANCE_REASON_CODES_TEXT = "41 42 60 62 63 64 65 66 67 68 70 71 88 95 100 102 103 104 105"
ALLOWANCE_REASON_CODES = frozenset(_ALLOWANCE_REASON_CODES_TEXT.split())
# UNCL7161 charge reasons (PEPPOL-EN16931-CL003); the commonly used part of the list.
_CHARGE_REASON_CODES_TEXT = """
    AA AAA AAC AAD AAE AAF AAH AAI AAS AAT AAV AAY AAZ ABA ABB ABC ABD ABF ABK ABL ABN ABR
    ABS ABT ABU ACF ACG ACH ACI ACJ ACK ACL ACM ACS ADC ADE ADJ ADK ADL ADM ADN ADO ADP ADQ
    ADR ADT ADW ADY ADZ AEA AEB AEC AED AEF AEH AEI AEJ AEK AEL AEM AEN AEO AEP AES AET AEU
    AEV AEW AEX AEY AEZ AJ AU CA CAB CAD CAE CAF CAI CAJ CAK CAL CAM CAN CAO CAP CAQ CAR CAS
    CAT CAU CAV CAW CD CG CS CT DAB DAD DL EG EP ER FAA FAB FAC FC FH FI GAA HAA HD HH IAA
    IAB ID IF IR IS KO L1 LA LAA LAB LF MAE MI ML NAA OA PA PAA PC PL RAB RAC RAD RAF RE RF
    RH RV SA SAA SAD SAE SAI SG SH SM SU TAB TAC TT TV V1 V2 WH XAA YY ZZZ
    """
CHARGE_REASON_CODES = frozenset(_CHARGE_REASON_CODES_TEXT.split())

PROFILE_01_TYPE_CODES = frozenset({"380", "381"})  # what Kanal writes of P0100/P0101's lists
SWEDISH_STANDARD_RATES = frozenset({Decimal(25), Decimal(12), Decimal(6)})
LINE_SLACK = Decimal("0.02")

_Add = Callable[[str, str, str], None]  # (field, rule id, text)


def check_peppol(invoice: Invoice, *, field_prefix: str = "$") -> list[FieldViolation]:
    """Every Peppol rule the invoice breaks, as field violations (empty list: sendable)."""
    out: list[FieldViolation] = []

    def add(field: str, rule: str, text: str) -> None:
        out.append(FieldViolation(f"{field_prefix}.{field}", f"[{rule}] {text}"))

    if not (invoice.buyer_reference or invoice.order_reference):
        add(
            "buyer_reference",
            "PEPPOL-EN16931-R003",
            "a buyer reference or a purchase order reference must be given",
        )
    if invoice.type_code not in PROFILE_01_TYPE_CODES:
        add(
            "type_code",
            "PEPPOL-EN16931-P0100",
            f"type code {invoice.type_code} is not one Kanal writes (380, 381)",
        )

    _check_endpoint(add, "seller", invoice.seller, "PEPPOL-EN16931-R020")
    _check_endpoint(add, "buyer", invoice.buyer, "PEPPOL-EN16931-R010")
    for role, party in (("seller", invoice.seller), ("buyer", invoice.buyer)):
        if party.legal_id and party.legal_id_scheme:
            _check_identifier(add, f"{role}.legal_id", party.legal_id_scheme, party.legal_id)
    _check_national_seller(add, invoice)

    for i, line in enumerate(invoice.lines):
        if line.unit_code not in UNIT_CODES:
            add(f"lines[{i}].unit_code", "UNECERec20", f"unit {line.unit_code!r} not supported")
        if line.vat_category not in VAT_CATEGORIES:
            add(f"lines[{i}].vat_category", "UNCL5305", f"{line.vat_category!r} not supported")
        expected = line.quantity * line.unit_price
        if abs(line.net_amount - expected) > LINE_SLACK:
            add(
                f"lines[{i}].net_amount",
                "PEPPOL-EN16931-R120",
                f"line net {line.net_amount} differs from quantity x price {expected}",
            )
    for i, ac in enumerate(invoice.allowances_charges):
        if ac.reason_code is None:
            continue
        if ac.is_charge and ac.reason_code not in CHARGE_REASON_CODES:
            add(
                f"allowances_charges[{i}].reason_code",
                "PEPPOL-EN16931-CL003",
                f"{ac.reason_code!r} is not a UNCL7161 charge reason code",
            )
        if not ac.is_charge and ac.reason_code not in ALLOWANCE_REASON_CODES:
            add(
                f"allowances_charges[{i}].reason_code",
                "PEPPOL-EN16931-CL002",
                f"{ac.reason_code!r} is not in the UNCL5189 allowance reason subset",
            )

    if invoice.payment is not None:
        if invoice.payment.code in ("49", "59"):
            add(
                "payment.code",
                "PEPPOL-EN16931-R061",
                "direct debit needs a mandate reference, which Kanal does not carry",
            )
        elif invoice.payment.code not in PAYMENT_MEANS_CODES:
            add("payment.code", "UNCL4461", f"{invoice.payment.code!r} not supported")
    return out


def _check_endpoint(add: _Add, role: str, party: Party, rule: str) -> None:
    if not party.endpoint_id:
        add(f"{role}.endpoint_id", rule, f"the {role}'s electronic address must be given")
        return
    if party.endpoint_scheme not in EAS_CODES:
        add(
            f"{role}.endpoint_scheme",
            "PEPPOL-EN16931-CL008",
            f"{party.endpoint_scheme!r} is not an Electronic Address Scheme code",
        )
        return
    _check_identifier(add, f"{role}.endpoint_id", party.endpoint_scheme, party.endpoint_id)


def _check_identifier(add, field: str, scheme: str, value: str) -> None:
    """PEPPOL-COMMON-R040/R041/R042: identifier formats for the schemes that have rules."""
    if scheme == "0192" and not is_norwegian_org_number(value):
        add(field, "PEPPOL-COMMON-R041", f"{value!r} is not a valid Norwegian org number")
    elif scheme == "0088" and not _gln_ok(value):
        add(field, "PEPPOL-COMMON-R040", f"{value!r} is not a valid GLN")
    elif scheme == "0184" and not re.fullmatch(r"DK[0-9]{8}", value):
        add(field, "PEPPOL-COMMON-R042", f"{value!r} is not a Danish CVR number (DK + 8 digits)")


def _check_national_seller(add: _Add, invoice: Invoice) -> None:
    """NO-R-001, SE-R-001/002/006, DK-R-002 for the seller's country."""
    seller = invoice.seller
    vat = seller.vat_id or ""
    country = vat[:2].upper() if vat else (seller.address.country if seller.address else "")
    if (
        country == "NO"
        and vat
        and not (re.fullmatch(r"NO[0-9]{9}MVA", vat) and is_norwegian_org_number(vat[2:11]))
    ):
        add(
            "seller.vat_id",
            "NO-R-001",
            "a Norwegian VAT id is 'NO' + a valid 9-digit organisation number + 'MVA'",
        )
    seller_country = seller.address.country if seller.address else ""
    if seller_country == "SE" and vat.startswith("SE"):
        if len(vat) != 14:
            add("seller.vat_id", "SE-R-001", "a Swedish VAT id has 14 characters")
        if not vat[2:14].isdigit():
            add("seller.vat_id", "SE-R-002", "a Swedish VAT id has 12 digits after 'SE'")
        for i, line in enumerate(invoice.lines):
            if line.vat_category == "S" and line.vat_rate not in SWEDISH_STANDARD_RATES:
                add(f"lines[{i}].vat_rate", "SE-R-006", "Swedish standard rates are 25, 12, 6")
    if seller_country == "DK" and not seller.legal_id:
        add("seller.legal_id", "DK-R-002", "a Danish seller must give its CVR number")


def is_norwegian_org_number(value: str) -> bool:
    """9 digits, MOD11 with weights 3,2,7,6,5,4,3,2 (the Brønnøysund register's rule)."""
    if not re.fullmatch(r"[0-9]{9}", value):
        return False
    weights = (3, 2, 7, 6, 5, 4, 3, 2)
    remainder = sum(int(d) * w for d, w in zip(value[:8], weights, strict=True)) % 11
    check = 0 if remainder == 0 else 11 - remainder
    return check != 10 and check == int(value[8])


def _gln_ok(value: str) -> bool:
    """GS1 check digit over 13 digits (weights 3,1 from the right, excluding the check)."""
    if not re.fullmatch(r"[0-9]{13}", value):
        return False
    body = [int(d) for d in value[:-1]][::-1]
    total = sum(d * (3 if i % 2 == 0 else 1) for i, d in enumerate(body))
    return (10 - total % 10) % 10 == int(value[-1])
