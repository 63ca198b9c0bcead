"""The invoices the e-invoice tests render (test_einvoice_ubl, test_einvoice_peppol_rules,
test_einvoice_cii_finvoice), each computed with `compute_invoice` as composition would:

- parties: a Norwegian seller and buyer (0192 org numbers, NO...MVA VAT ids,
  Foretaksregisteret), a Swedish seller, a German buyer (GLN 0088), a Finnish seller and a
  Finnish consumer without a Peppol address;
- `invoice(**overrides)`: a NOK B2B invoice with a KID, changed field by field;
- `CASES`: eight invoices covering VAT categories S/E/Z/AE/O/G, credit notes, EUR and SEK,
  periods, prepaid amounts, allowances and charges;
- `_assert_valid(report)`: no errors and no warnings but the allowed ones (printed if any);
- `_tampered(invoice)`: payable no longer follows from the totals (BR-CO-16).
"""

from __future__ import annotations

import dataclasses
from datetime import date
from decimal import Decimal as D
from typing import TYPE_CHECKING, Any

from server.compose.en16931 import PrecedingInvoice
from server.compose.invoice import LineInput, compute_invoice
from server.compose.model import (
    AllowanceCharge,
    Invoice,
    Party,
    PaymentMeans,
    PaymentReference,
    PostalAddress,
)

if TYPE_CHECKING:
    from tests.einvoice_validation import Report

# --- parties -----------------------------------------------------------------------------

NO_SELLER = Party(
    name="Fjordbanken ASA",
    address=PostalAddress(("Bryggen 1",), "5003", "Bergen", "NO"),
    vat_id="NO923609016MVA",
    legal_id="923609016",
    legal_id_scheme="0192",
    endpoint_id="923609016",
    endpoint_scheme="0192",
    tax_registration_id="Foretaksregisteret",  # NO-R-002 (the builder adds it for NO sellers)
    contact_name="Fakturaavdelingen",
    contact_email="faktura@fjordbanken.no",
)
NO_BUYER = Party(
    name="Kunde AS",
    address=PostalAddress(("Storgata 2", "Postboks 7", "Bygg C"), "0155", "Oslo", "NO"),
    vat_id="NO987654325MVA",
    legal_id="987654325",
    legal_id_scheme="0192",
    endpoint_id="987654325",
    endpoint_scheme="0192",
)
SE_SELLER = Party(
    name="Norrbanken AB",
    address=PostalAddress(("Kungsgatan 1",), "111 43", "Stockholm", "SE"),
    vat_id="SE556036079301",
    legal_id="5560360793",
    legal_id_scheme="0007",
    endpoint_id="5560360793",
    endpoint_scheme="0007",
)
DE_BUYER = Party(
    name="Beispiel GmbH",
    address=PostalAddress(("Hauptstraße 5",), "10115", "Berlin", "DE"),
    vat_id="DE123456789",
    endpoint_id="4000001123452",
    endpoint_scheme="0088",
)
FI_SELLER = Party(
    name="Suomen Energia Oy",
    address=PostalAddress(("Mannerheimintie 10",), "00100", "Helsinki", "FI"),
    vat_id="FI12345671",
    legal_id="1234567-1",
    legal_id_scheme="0037",
    endpoint_id="12345671",
    endpoint_scheme="0037",
)
FI_CONSUMER = Party(
    name="Matti Meikäläinen",
    address=PostalAddress(("Kotikatu 3 B 12",), "33100", "Tampere", "FI"),
)

KID = PaymentReference("kid_mod10", "1234567897", "12345 67897")
NO_PAYMENT = PaymentMeans("30", "15030100007", reference=KID)


def L(id: str, qty: str, unit: str, price: str, cat: str, rate: str | None, **kw: Any) -> LineInput:  # noqa: E501
    return LineInput(
        id=id,
        name=f"Vare {id}",
        quantity=D(qty),
        unit_code=unit,
        unit_price=D(price),
        vat_category=cat,
        vat_rate=None if rate is None else D(rate),
        **kw,
    )


def invoice(**overrides: Any) -> Invoice:
    args: dict[str, Any] = dict(
        number="2024-001",
        type_code="380",
        issue_date=date(2024, 5, 1),
        due_date=date(2024, 5, 15),
        currency="NOK",
        seller=NO_SELLER,
        buyer=NO_BUYER,
        lines=[L("1", "2", "HUR", "1250", "S", "25")],
        payment=NO_PAYMENT,
        buyer_reference="Ola Nordmann",
    )
    args.update(overrides)
    return compute_invoice(**args)


def _mixed_rates() -> Invoice:
    """NO B2B: 25/15/12, exempt E with reason, zero-rated Z, an allowance and a charge."""
    return invoice(
        lines=[
            L("1", "3", "HUR", "1250.005", "S", "25", description="Rådgivning"),
            L("2", "2", "KGM", "99.90", "S", "15"),
            L("3", "1", "C62", "450", "S", "12"),
            L("4", "1", "MON", "300", "E", None),
            L("5", "4", "C62", "25", "Z", "0"),
        ],
        allowances_charges=[
            AllowanceCharge(False, D("100"), "Lojalitetsrabatt", "S", D(25), "95"),
            AllowanceCharge(True, D("49.50"), "Fakturagebyr", "S", D(25), "ABK"),
        ],
        exemption_reasons={"E": "Finansielle tjenester er unntatt merverdiavgift"},
        order_reference="PO-77",
        note="Takk for handelen",
        payment_terms="14 dager netto",
    )


def _credit_note() -> Invoice:
    return invoice(
        number="K-2024-001",
        type_code="381",
        lines=[L("1", "1", "HUR", "1250", "S", "25"), L("2", "1", "C62", "300", "E", None)],
        exemption_reasons={"E": "Finansielle tjenester"},
        preceding_invoices=[PrecedingInvoice("2024-001")],
        due_date=None,
        payment_terms="Krediteres konto",
    )


def _eur_foreign_currency() -> Invoice:
    """A Swedish seller invoicing a German buyer in EUR: reverse charge (AE)."""
    return invoice(
        number="SE-77",
        currency="EUR",
        seller=SE_SELLER,
        buyer=DE_BUYER,
        lines=[L("1", "10", "DAY", "850", "AE", "0")],
        exemption_reasons={"AE": "Reverse charge"},
        payment=PaymentMeans("58", "SE45 5000 0000 0583 9825 7466", bic="ESSESESS"),
        buyer_reference=None,
        order_reference="DE-PO-5",
    )


def _norwegian_b2b() -> Invoice:
    """Seller 0192 org number, NO...MVA VAT id, Foretaksregisteret; period and prepaid."""
    return invoice(
        number="EHF-9",
        lines=[
            L(
                "1",
                "1",
                "MON",
                "4990",
                "S",
                "25",
                period_start=date(2024, 4, 1),
                period_end=date(2024, 4, 30),
            )
        ],
        period_start=date(2024, 4, 1),
        period_end=date(2024, 4, 30),
        prepaid=D("1000.00"),
    )


def _swedish_rates() -> Invoice:
    return invoice(
        number="SE-1",
        currency="SEK",
        seller=SE_SELLER,
        lines=[
            L("1", "1", "C62", "100", "S", "25"),
            L("2", "1", "C62", "100", "S", "12"),
            L("3", "3", "C62", "33.333", "S", "6"),
        ],
        payment=PaymentMeans("30", "5805-6201", account_name="Norrbanken AB"),
    )


def _finnish_consumer_eur() -> Invoice:
    return invoice(
        number="FI-1001",
        currency="EUR",
        seller=FI_SELLER,
        buyer=FI_CONSUMER,
        lines=[
            L("1", "312.5", "KWH", "0.0855", "S", "25.5"),
            L("2", "1", "MON", "4.90", "S", "25.5"),
        ],
        payment=PaymentMeans(
            "58",
            "FI21 1234 5600 0007 85",
            bic="NDEAFIHH",
            reference=PaymentReference("fi", "1232", "12 32"),
        ),
        buyer_reference="Asiakasnumero 555",
    )


def _not_subject_to_vat() -> Invoice:
    """Category O: a seller outside the VAT system; no VAT ids on either side (BR-O-02)."""
    return invoice(
        number="O-1",
        seller=dataclasses.replace(NO_SELLER, vat_id=None),
        buyer=dataclasses.replace(NO_BUYER, vat_id=None),
        lines=[L("1", "1", "C62", "500", "O", None), L("2", "2", "HUR", "350", "O", None)],
        exemption_reasons={"O": "Ikke merverdiavgiftspliktig"},
    )


def _export() -> Invoice:
    """Category G: export outside the EEA VAT area, rate 0 with a reason."""
    return invoice(
        number="G-1",
        buyer=DE_BUYER,
        lines=[L("1", "5", "PR", "120", "G", "0")],
        exemption_reasons={"G": "Eksport av varer"},
    )


CASES = {
    "not_subject_to_vat": _not_subject_to_vat,
    "export": _export,
    "mixed_rates": _mixed_rates,
    "credit_note": _credit_note,
    "eur_foreign_currency": _eur_foreign_currency,
    "norwegian_b2b": _norwegian_b2b,
    "swedish_rates": _swedish_rates,
    "finnish_consumer_eur": _finnish_consumer_eur,
}


def _assert_valid(report: Report, allowed_warnings: tuple[str, ...] = ()) -> None:
    for problem in report.errors:
        print(problem)
    assert report.errors == []
    unexpected = [w for w in report.warnings if not any(a in w for a in allowed_warnings)]
    for warning in unexpected:
        print(warning)
    assert unexpected == []


def _tampered(inv: Invoice) -> Invoice:
    """An invoice whose payable amount does not follow from its totals (BR-CO-16)."""
    totals = dataclasses.replace(inv.totals, payable=inv.totals.payable + D("1.00"))
    return dataclasses.replace(inv, totals=totals)
