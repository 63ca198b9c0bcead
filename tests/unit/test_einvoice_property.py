"""Property test: generated invoices across the whole EN 16931 model, each syntax validated.

Hypothesis writes b2b-invoice input data the way billers' systems do - Norwegian, Swedish,
Danish and Finnish sellers with their identifiers written every usual way, buyers at home
and abroad, several VAT rates and every category Kanal supports (S, Z, E, AE, K, G, O),
allowances and charges at document, line and price level (amounts and percentages), gross
prices and base quantities, credit notes and other type codes, a foreign VAT accounting
currency, prepaid amounts and öre rounding, many lines, every reference, delivery, payee,
tax representative, attachments, payment by transfer, giro, card or direct debit, and text
with odd characters (markup, quotes, emoji, combining marks, right-to-left, blanks) - and
Kanal composes it and renders UBL (Peppol BIS 3), CII (Factur-X EN 16931) and Finvoice 3.0.

The renders are collected first and validated in one batch per syntax (stylesheets and
schemas compiled once): UBL by the UBL 2.1 XSD, the CEN schematron and the Peppol rules; CII
by the Factur-X/CII XSDs and the Factur-X EN 16931 schematron; Finvoice by its XSD. At least
500 invoices per syntax, zero fatal findings. Generation is derandomised, so CI runs the
same 500+ invoices every time.
"""

from __future__ import annotations

import functools
import json
import os
import re
import sys
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from server.channels.einvoice import render_cii, render_finvoice, render_ubl
from server.compose.composer import ComposeRequest, compose
from server.compose.data import INVISIBLE
from server.compose.model import Channel
from tests.layouts import shipped

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
import einvoice_validation as ev  # noqa: E402

# A few buyers pay by card or direct debit and get no Finvoice: 560 leaves >= 500 of each.
# KANAL_PROPERTY_EXAMPLES raises it for a longer local soak.
EXAMPLES = int(os.environ.get("KANAL_PROPERTY_EXAMPLES", "560"))
LAYOUT = shipped().get("b2b-invoice")
NOW = datetime(2026, 3, 2, 9, tzinfo=UTC)

# Sellers: (country, currency, org number as people write it, VAT id as written, peppol id,
# payment account, the standard rates of the country)
SELLERS = [
    ("NO", "NOK", "923 609 016", "NO 923609016 MVA", "0192:923609016",
     {"type": "no_account", "number": "1503.12.34562"}, ["25", "15", "12"]),
    ("NO", "EUR", "923609016", "923609016MVA", "0192:923 609 016",
     {"type": "iban", "number": "NO93 8601 1117 947", "bic": "DNBANOKK"}, ["25", "15"]),
    ("SE", "SEK", "556036-0793", "SE 5560360793 01", "0007:556036-0793",
     {"type": "bankgiro", "number": "5805-6201"}, ["25", "12", "6"]),
    ("SE", "SEK", "5560360793", "SE556036079301", "0007:5560360793",
     {"type": "plusgiro", "number": "4356-2"}, ["25", "12", "6"]),
    ("DK", "DKK", "13 58 56 28", "DK 13585628", "0184:13585628",
     {"type": "iban", "number": "DK5000400440116243"}, ["25"]),
    ("FI", "EUR", "2077474-0", "FI20774740", "0037:20774740",
     {"type": "iban", "number": "FI21 1234 5600 0007 85", "bic": "NDEAFIHH"}, ["25.5", "14",
                                                                              "10"]),
]
BUYERS = [
    {"country": "NO", "org_number": "987 654 325", "vat_id": "NO987654325MVA",
     "peppol_id": "0192:987654325"},
    {"country": "SE", "org_number": "556036-0793", "vat_id": "SE556036079301",
     "peppol_id": "0007:5560360793"},
    {"country": "DK", "org_number": "55133018", "vat_id": "DK55133018",
     "peppol_id": "0184:DK55133018"},
    {"country": "FI", "org_number": "2077474-0", "vat_id": "FI20774740",
     "peppol_id": "0216:003720774740"},
    {"country": "DE", "vat_id": "DE123456789", "peppol_id": "0088:4000001123452"},
    {"country": "FR", "vat_id": "FR40303265045", "peppol_id": "0009:30326504500011"},
]
CITY = {"NO": ("0155", "OSLO"), "SE": ("111 43", "STOCKHOLM"), "DK": ("1620", "KØBENHAVN V"),
        "FI": ("00100", "HELSINKI"), "DE": ("10115", "Berlin"), "FR": ("75002", "Paris")}
UNITS = ["C62", "HUR", "DAY", "MON", "KGM", "LTR", "MTR", "KWH", "EA", "XBX", "H87", "LS"]
ODD = ["Ærlig & <Søt> \"AS\"", "Ünïcödé ‘quotes’ — dash", "emoji 🧾✓", "e\u0301 combining",
       "עברית RTL", "Ελληνικά", "Кириллица", "  padded  ", "a\tb", "ﬁ ligature ½", "x" * 180]


REFUSED = re.compile(f"[{INVISIBLE}]")


@functools.cache  # one strategy per shape: Hypothesis validates each new strategy object
def text(max_size: int, *, blank: bool = True) -> st.SearchStrategy[str]:
    """Text a biller's system might send: letters, odd characters, sometimes only spaces."""
    odd = st.sampled_from([s[:max_size] for s in ODD])
    # never the invisible characters Kanal refuses in any text (server.compose.data): this
    # Hypothesis draws string constants of the loaded modules too, INVISIBLE's among them,
    # so which modules a CI worker had imported decided whether an example was refused
    plain = st.text(st.characters(codec="utf-8", exclude_categories=("Cs", "Cc", "Co", "Cn")),
                    min_size=2, max_size=min(max_size, 40)).filter(
        lambda s: len(s.strip()) > 1 and not REFUSED.search(s))
    longest = st.just(("Långt ord " * 120)[:max_size].strip())  # up to the schema's limit
    options = [odd, plain, plain, longest]
    if blank:
        options.append(st.just(" "))
    return st.one_of(*options)


@functools.cache
def money(low: str, high: str, places: int = 2) -> st.SearchStrategy[str]:
    return st.decimals(Decimal(low), Decimal(high), places=places).map(str)


@st.composite
def invoices(draw: st.DrawFn) -> dict[str, Any]:
    country, currency, org, vat, peppol, account, rates = draw(st.sampled_from(SELLERS))
    buyer = draw(st.sampled_from(BUYERS))
    domestic = buyer["country"] == country
    is_credit = draw(st.integers(0, 3)) == 0
    issue = date(2026, 1, 1) + timedelta(days=draw(st.integers(0, 300)))
    postal_code, city = CITY[buyer["country"]]

    # VAT: categories that make sense for this trade (Kanal's rules refuse the rest)
    if domestic:
        scheme = draw(st.sampled_from(["vat", "vat", "vat", "exempt-mix", "not-subject"]))
    elif buyer["country"] in ("DE", "FR") or country != buyer["country"]:
        scheme = draw(st.sampled_from(["vat", "reverse", "intra", "export"]))
    if country == "NO" and scheme in ("reverse", "intra"):
        scheme = "export"  # Norway is outside the EU VAT area
    categories = {
        "vat": [("S", r) for r in rates],
        "exempt-mix": [("S", rates[0]), ("E", "0"), ("Z", "0")],
        "not-subject": [("O", None)],
        "reverse": [("AE", "0")],
        "intra": [("K", "0")],
        "export": [("G", "0"), ("S", rates[0])] if not domestic else [("S", rates[0])],
    }[scheme]
    if scheme == "export":
        categories = [("G", "0")]

    def line(i: int) -> dict[str, Any]:
        category, rate = draw(st.sampled_from(categories))
        item: dict[str, Any] = {
            "id": str(i + 1), "name": draw(text(200, blank=False)),
            # a credit note credits: positive quantities (a correction is a negative invoice)
            "quantity": draw(money("0" if is_credit else "-5", "500",
                                   draw(st.integers(0, 3)))),
            "unit_code": draw(st.sampled_from(UNITS)), "vat_category": category,
            "vat_rate": rate,
        }
        if draw(st.booleans()):
            item["unit_price"] = draw(money("0", "25000", draw(st.integers(0, 4))))
        else:
            gross = draw(st.decimals(Decimal("1"), Decimal("9999"), places=2))
            item["gross_price"] = str(gross)
            item["price_discount"] = str(draw(st.decimals(Decimal(0), gross, places=2)))
        if draw(st.integers(0, 3)) == 0:
            item["base_quantity"] = draw(st.sampled_from(["1", "10", "100", "0.5"]))
        for key, size in (("description", 1000), ("note", 1000), ("order_line_reference", 50),
                          ("accounting_reference", 100), ("seller_item_id", 100),
                          ("buyer_item_id", 100)):
            if draw(st.integers(0, 3)) == 0:
                item[key] = draw(text(size))
        if draw(st.integers(0, 4)) == 0:
            item["standard_item_id"] = {"id": "7300010000001", "scheme": "0160"}
        if draw(st.integers(0, 4)) == 0:
            item["classifications"] = [{"id": "43211503", "scheme": "STI", "version": "19.0501"}]
        if draw(st.integers(0, 4)) == 0:
            item["origin_country"] = draw(st.sampled_from(["NO", "SE", "CN", "DE"]))
        if draw(st.integers(0, 5)) == 0:
            item["attributes"] = [{"name": draw(text(100, blank=False)),
                                   "value": draw(text(200, blank=False))}]
        if draw(st.integers(0, 4)) == 0:
            item["object_id"] = {"id": "AB-1", "scheme": "AAA"}
        if draw(st.integers(0, 3)) == 0:
            item["allowances_charges"] = [line_ac() for _ in range(draw(st.integers(1, 3)))]
        if draw(st.integers(0, 4)) == 0:
            item["period"] = {"start": "2026-01-01", "end": "2026-01-31"}
        return item

    def line_ac() -> dict[str, Any]:
        charge = is_credit or draw(st.booleans())  # a credit note's total stays positive
        ac: dict[str, Any] = {"is_charge": charge, "reason": draw(text(200))}
        if draw(st.booleans()):
            ac["reason_code"] = draw(st.sampled_from(["ABK", "FC", "CG"] if charge else
                                                     ["95", "100", "41"]))
        if draw(st.booleans()):
            ac["amount"] = draw(money("0", "500"))
        else:
            ac["base_amount"], ac["percent"] = draw(money("1", "5000")), draw(money("0", "30"))
        if not (ac["reason"].strip() or ac.get("reason_code")):
            ac["reason"] = "Rabatt"
        return ac

    # many lines: a few drawn ones, repeated (drawing 60 lines each time would be slow)
    drawn = [line(i) for i in range(draw(st.integers(1, 4)))]
    count = draw(st.sampled_from([1, 2, 3, 4, 8, 60]))
    lines = [{**drawn[i % len(drawn)], "id": str(i + 1)} for i in range(max(count, len(drawn)))]
    data: dict[str, Any] = {
        "currency": currency,
        "type": "credit_note" if is_credit else "invoice",
        "number": draw(st.from_regex(r"[A-Z]{1,3}-[0-9]{1,12}", fullmatch=True)),
        "issue_date": issue.isoformat(),
        "buyer_reference": draw(text(100, blank=False)),
        "seller": {"name": draw(text(80, blank=False)), "org_number": org, "vat_id": vat,
                   "peppol_id": peppol, "payment_account": account,
                   "address": {"lines": [draw(text(70, blank=False))], "postal_code": "5003",
                               "city": "Bergen", "country": country}},
        "customer": {"customer_id": "C-1", "name": draw(text(70, blank=False)),
                     "peppol_id": buyer["peppol_id"], "vat_id": buyer["vat_id"],
                     "address": {"lines": [draw(text(70, blank=False))],
                                 "postal_code": postal_code, "city": city,
                                 "country": buyer["country"]}},
        "lines": lines,
        "payment": {"reference_base": draw(st.from_regex(r"[1-9][0-9]{4,12}",
                                                         fullmatch=True))},
    }
    if country == "DK":
        data["payment"]["creditor_number"] = "86135567"
    if "org_number" in buyer:
        data["customer"]["org_number"] = buyer["org_number"]
    if scheme == "not-subject":  # BR-O-02: no VAT ids at all
        del data["seller"]["vat_id"], data["customer"]["vat_id"]
    if is_credit:
        data["preceding_invoices"] = [{"number": "F-1", "issue_date": "2025-12-01"}]
        if draw(st.booleans()):
            data["type_code"] = draw(st.sampled_from(["381", "396"]))
        data["payment_terms"] = draw(text(300, blank=False))
    else:
        data["due_date"] = (issue + timedelta(days=draw(st.integers(0, 60)))).isoformat()
        if draw(st.integers(0, 5)) == 0:
            data["type_code"] = draw(st.sampled_from(["380", "383", "386", "393"]))
    used = {c for c, _ in categories}
    reasons = {"E": "Unntatt", "O": "Not subject to VAT", "AE": "Reverse charge",
               "K": "Intra-community supply", "G": "Export outside the EU"}
    data["exemption_reasons"] = {c: reasons[c] for c in used if c in reasons}
    if "K" in used or draw(st.integers(0, 3)) == 0:
        data["delivery"] = {"date": issue.isoformat(), "address": {
            "lines": [draw(text(70, blank=False))], "postal_code": postal_code, "city": city,
            "country": buyer["country"]}}
        if draw(st.booleans()):
            data["delivery"]["party_name"] = draw(text(80))
            data["delivery"]["location"] = {"id": "7300010000001", "scheme": "0088"}
    if draw(st.integers(0, 2)) == 0:
        category, rate = draw(st.sampled_from(categories))
        data["allowances_charges"] = [
            {"is_charge": is_credit or draw(st.booleans()), "amount": draw(money("0", "1000")),
             "reason": draw(text(200, blank=False)), "vat_category": category, "vat_rate": rate}
            for _ in range(draw(st.integers(1, 3)))]
        if draw(st.booleans()) and not is_credit:
            data["allowances_charges"].append({
                "is_charge": False, "percent": draw(money("0", "10")),
                "base_amount": draw(money("0", "10000")), "reason_code": "95",
                "vat_category": category, "vat_rate": rate})
    for key, size in (("order_reference", 100), ("sales_order_reference", 100),
                      ("project_reference", 100), ("contract_reference", 100),
                      ("despatch_advice_reference", 100), ("receiving_advice_reference", 100),
                      ("tender_reference", 100), ("accounting_reference", 100),
                      ("note", 1000)):
        if draw(st.integers(0, 4)) == 0:
            data[key] = draw(text(size))
    if draw(st.integers(0, 4)) == 0:
        data["period"] = {"start": "2026-01-01", "end": "2026-01-31"}
        data["tax_point_code"] = draw(st.sampled_from(["3", "35", "432"]))
    elif draw(st.integers(0, 4)) == 0:
        data["tax_point_date"] = issue.isoformat()
    if draw(st.integers(0, 4)) == 0:
        data["invoiced_object"] = {"id": "MTR-77", "scheme": "AAA"}
    if draw(st.integers(0, 3)) == 0:
        other = "NOK" if currency != "NOK" else "EUR"
        data["vat_accounting"] = {"currency": other,
                                  "exchange_rate": draw(money("0.05", "20", 4))}
    if not is_credit and draw(st.integers(0, 3)) == 0:
        data["prepaid_amount"] = draw(money("0", "100"))
    if draw(st.integers(0, 3)) == 0:
        data["round_payable_to"] = draw(st.sampled_from(["1", "0.5", "0.1"]))
    if draw(st.integers(0, 5)) == 0:
        data["payee"] = {"name": "Factoring " + draw(text(60, blank=False)),
                         "legal_id": {"id": "987654325", "scheme": "0192"}}
    if draw(st.integers(0, 5)) == 0:
        data["attachments"] = [{"id": "TS-1", "description": draw(text(200)),
                                "filename": "spec.csv", "mime_code": "text/csv",
                                "content": "YSxiLGMKMSwyLDMK"}]
    if draw(st.integers(0, 5)) == 0:
        data["customer"]["contact"] = {"name": draw(text(80)), "phone": "+47 22 00 00 00",
                                       "email": "ap@example.no"}
    if draw(st.integers(0, 39)) == 0 and country != "DK" and not is_credit:
        means = draw(st.sampled_from(["card", "debit"]))
        data["payment"]["means"] = [
            {"code": "48", "card": {"pan": "5213 88** **** 4821", "holder": "KARI N",
                                    "network": "VISA"}} if means == "card" else
            {"code": "59", "direct_debit": {"mandate_id": "MANDATE-1",
                                            "creditor_id": "NO77ZZZ923609016",
                                            "debited_account": "NO9386011117947"}}]
        data["seller"].pop("payment_account")
    return data


RENDERS: dict[str, list[bytes]] = {"ubl": [], "cii": [], "finvoice": []}
COMPOSED: list[int] = []


@settings(max_examples=EXAMPLES, deadline=None, derandomize=True, database=None,
          suppress_health_check=list(HealthCheck))
@given(invoices())
def _render_all(data: dict[str, Any]) -> None:
    composition = compose(ComposeRequest(tenant="t", layout=LAYOUT, data=json.dumps(data),
                                         document_id="d", now=NOW,
                                         channels=(Channel.EINVOICE,)))
    invoice = composition.invoice
    COMPOSED.append(1)
    RENDERS["ubl"].append(render_ubl(invoice))
    RENDERS["cii"].append(render_cii(invoice))
    if invoice.payment and invoice.payment.account:
        RENDERS["finvoice"].append(render_finvoice(invoice))


@pytest.fixture(scope="module")
def renders() -> dict[str, list[bytes]]:
    """Generate and render every invoice once for the module (the generation is the test of
    composition: an error the data does not deserve fails here)."""
    for batch in RENDERS.values():
        batch.clear()
    _render_all()
    return RENDERS


def _batch(docs: list[bytes], validate) -> list[str]:
    problems = []
    for i, xml in enumerate(docs):
        report = validate(xml)
        problems += [f"#{i}: {e}" for e in report.errors]
    return problems


# generating and validating 1,600 documents takes a minute or two on a busy 2-core machine
pytestmark = pytest.mark.timeout(900)


def test_ubl_batch_passes_xsd_cen_and_peppol(renders: dict[str, list[bytes]]) -> None:
    assert len(renders["ubl"]) >= 500, {k: len(v) for k, v in renders.items()}
    assert _batch(renders["ubl"], ev.validate_ubl) == []


def test_cii_batch_passes_xsd_and_facturx_schematron(renders: dict[str, list[bytes]]) -> None:
    assert len(renders["cii"]) >= 500, {k: len(v) for k, v in renders.items()}
    assert _batch(renders["cii"], ev.validate_cii) == []


def test_finvoice_batch_passes_the_xsd(renders: dict[str, list[bytes]]) -> None:
    assert len(renders["finvoice"]) >= 500, {k: len(v) for k, v in renders.items()}
    assert _batch(renders["finvoice"], ev.validate_finvoice) == []
