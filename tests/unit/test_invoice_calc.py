"""EN 16931 arithmetic and input validation of `compute_invoice` (no XML involved)."""

from __future__ import annotations

from datetime import date
from decimal import Decimal as D
from typing import Any

import pytest

from server.compose.en16931 import PrecedingInvoice
from server.compose.invoice import LineInput, compute_invoice, line_net_amount, vat_amount
from server.compose.model import AllowanceCharge, Party, PaymentMeans, PostalAddress
from server.errors import InvalidInput

SELLER = Party(
    name="Fjordbanken ASA",
    address=PostalAddress(("Bryggen 1",), "5003", "Bergen", "NO"),
    vat_id="NO923609016MVA",
    legal_id="923609016",
    legal_id_scheme="0192",
    endpoint_id="923609016",
    endpoint_scheme="0192",
)
BUYER = Party(
    name="Kunde AS",
    address=PostalAddress(("Storgata 2",), "0155", "Oslo", "NO"),
    endpoint_id="987654325",
    endpoint_scheme="0192",
)


def line(id: str = "1", qty: str = "1", price: str = "100", cat: str = "S", rate: Any = "25",
         unit: str = "C62") -> LineInput:  # fmt: skip
    return LineInput(
        id=id,
        name=f"Item {id}",
        quantity=D(qty),
        unit_code=unit,
        unit_price=D(price),
        vat_category=cat,
        vat_rate=None if rate is None else D(rate),
    )


def build(**overrides: Any):
    args: dict[str, Any] = dict(
        number="INV-1",
        type_code="380",
        issue_date=date(2024, 5, 1),
        due_date=date(2024, 5, 15),
        currency="NOK",
        seller=SELLER,
        buyer=BUYER,
        lines=[line()],
        payment=PaymentMeans("30", "15030100007"),
        buyer_reference="ref",
    )
    args.update(overrides)
    return compute_invoice(**args)


def fields(exc: pytest.ExceptionInfo[InvalidInput]) -> list[str]:
    return [v.field for v in exc.value.violations]


# --- arithmetic --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("qty", "price", "net"),
    [
        ("1", "0.005", "0.01"),  # half a cent rounds up
        ("1", "0.004", "0.00"),
        ("3", "1250.005", "3750.02"),  # 3750.015 -> .02
        ("2.5", "0.01", "0.03"),  # 0.025 -> 0.03 (half-up, not banker's 0.02)
        ("0.5", "0.05", "0.03"),  # 0.025
        ("-1", "0.005", "-0.01"),  # half away from zero
        ("312.5", "0.0855", "26.72"),  # 26.71875
    ],
)
def test_line_net_rounds_half_up_to_the_cent(qty: str, price: str, net: str) -> None:
    assert line_net_amount(D(qty), D(price)) == D(net)
    inv = build(lines=[line(qty=qty, price=price)])
    assert inv.lines[0].net_amount == D(net)


def test_vat_is_computed_per_category_not_per_line() -> None:
    # Two lines of 0.10 at 25 %: per line 0.025 -> 0.03 each (0.06); per category 0.20 -> 0.05.
    inv = build(lines=[line("1", price="0.10"), line("2", price="0.10")])
    (entry,) = inv.vat_breakdown
    assert entry.taxable_amount == D("0.20")
    assert entry.tax_amount == D("0.05")
    assert vat_amount(D("0.10"), D(25)) == D("0.03")  # half-cent VAT rounds up


def test_breakdown_per_category_and_rate_with_allowances_and_charges() -> None:
    inv = build(
        lines=[
            line("1", qty="3", price="1250.005", rate="25"),
            line("2", qty="2", price="99.90", rate="15"),
            line("3", price="450", rate="12"),
            line("4", price="300", cat="E", rate=None),
            line("5", qty="4", price="25", cat="Z", rate="0"),
        ],
        allowances_charges=[
            AllowanceCharge(False, D("100"), "Rabatt", "S", D(25), "95"),
            AllowanceCharge(True, D("50"), "Frakt", "S", D(25)),
            AllowanceCharge(False, D("10"), "Rabatt", "S", D(12)),
        ],
        exemption_reasons={"E": "Finansielle tjenester"},
        prepaid=D("500.00"),
    )
    by_key = {(b.category, b.rate): b for b in inv.vat_breakdown}
    assert list(by_key) == [("S", D(25)), ("S", D(15)), ("S", D(12)), ("E", D(0)), ("Z", D(0))]
    assert by_key["S", D(25)].taxable_amount == D("3700.02")  # 3750.02 - 100 + 50
    assert by_key["S", D(25)].tax_amount == D("925.01")  # 925.005 -> 925.01
    assert by_key["S", D(15)].tax_amount == D("29.97")  # 199.80 * 0.15
    assert by_key["S", D(12)].taxable_amount == D("440.00")
    assert by_key["S", D(12)].tax_amount == D("52.80")
    assert by_key["E", D(0)].exemption_reason == "Finansielle tjenester"
    assert by_key["E", D(0)].tax_amount == D("0.00")
    assert by_key["Z", D(0)].exemption_reason is None

    t = inv.totals
    assert t.line_extension == D("3750.02") + D("199.80") + D("450") + D("300") + D("100")  # CO-10
    assert t.allowances == D("110.00")  # BR-CO-11
    assert t.charges == D("50.00")  # BR-CO-12
    assert t.tax_exclusive == t.line_extension - t.allowances + t.charges  # BR-CO-13
    assert t.tax == sum(b.tax_amount for b in inv.vat_breakdown)  # BR-CO-14
    assert t.tax_inclusive == t.tax_exclusive + t.tax  # BR-CO-15
    assert t.payable == t.tax_inclusive - D("500.00") + t.rounding  # BR-CO-16
    assert sum(b.taxable_amount for b in inv.vat_breakdown) == t.tax_exclusive
    for amount in (t.line_extension, t.tax_exclusive, t.tax, t.tax_inclusive, t.payable):
        assert amount.as_tuple().exponent == -2
        assert isinstance(amount, D)


def test_rates_are_normalised_per_category() -> None:
    inv = build(
        lines=[line("1", cat="E", rate=None)],
        exemption_reasons={"E": "Exempt"},
    )
    assert inv.lines[0].vat_rate == D(0)
    seller_without_vat = Party(name="Forening", address=SELLER.address, legal_id="923609016",
                               legal_id_scheme="0192")
    inv = build(
        seller=seller_without_vat,
        lines=[line("1", cat="O", rate="0")],
        exemption_reasons={"O": "Not subject to VAT"},
    )
    assert inv.lines[0].vat_rate is None
    assert inv.vat_breakdown[0].rate is None
    assert inv.totals.tax == D("0.00")


def test_credit_note_amounts_are_positive() -> None:
    inv = build(type_code="381", preceding_invoices=[PrecedingInvoice("INV-0")])
    assert inv.totals.payable == D("125.00")
    assert inv.preceding_invoice == "INV-0"


# --- bad input ---------------------------------------------------------------------------


def test_standard_rate_needs_a_rate() -> None:
    with pytest.raises(InvalidInput) as exc:
        build(lines=[line("1"), line("2"), line("3", rate=None)])
    assert fields(exc) == ["$.lines[2].vat_rate"]
    assert "needs a VAT rate" in str(exc.value)


def test_standard_rate_must_be_positive_and_zero_rate_must_be_zero() -> None:
    with pytest.raises(InvalidInput) as exc:
        build(lines=[line("1", rate="0"), line("2", cat="Z", rate="25")])
    assert fields(exc) == ["$.lines[0].vat_rate", "$.lines[1].vat_rate"]
    assert "BR-S-05" in str(exc.value) and "BR-Z-05" in str(exc.value)


@pytest.mark.parametrize("category", ["E", "AE", "G", "O"])
def test_exempt_categories_need_a_reason(category: str) -> None:
    seller = SELLER if category != "O" else Party(
        name="Forening", address=SELLER.address, legal_id="923609016", legal_id_scheme="0192")
    vat_id = None if category == "O" else "SE556036079301"  # AE needs it, O forbids it
    buyer = Party(name="Buyer AB", address=BUYER.address, vat_id=vat_id)
    with pytest.raises(InvalidInput) as exc:
        build(seller=seller, buyer=buyer, lines=[line("1", cat=category, rate="0")])
    assert fields(exc) == [f"$.exemption_reasons.{category}"]


def test_exempt_reason_missing_reported_with_custom_prefix() -> None:
    with pytest.raises(InvalidInput) as exc:
        build(lines=[line("1", cat="E", rate=None)], where=lambda p: f"$.invoice.{p}")
    assert fields(exc) == ["$.invoice.exemption_reasons.E"]


def test_unknown_category_unit_and_currency() -> None:
    with pytest.raises(InvalidInput) as exc:
        build(currency="NKR", lines=[line("1", cat="X"), line("2", unit="PCS")])
    assert fields(exc) == ["$.currency", "$.lines[0].vat_category", "$.lines[1].unit_code"]


def test_every_violation_is_reported_at_once() -> None:
    with pytest.raises(InvalidInput) as exc:
        build(
            type_code="999",
            seller=Party(name="", address=None),
            lines=[line("1", rate=None), line("1", price="-1")],
            # a negative amount is allowed (a negative invoice corrects an earlier one)
            allowances_charges=[AllowanceCharge(False, D("-5"), "", "S", D(25))],
            payment=PaymentMeans("30", None),
        )
    assert fields(exc) == [
        "$.type_code",
        "$.seller.name",
        "$.seller.address",
        "$.seller.org_number",  # BR-CO-26: no identifier at all
        "$.lines[0].vat_rate",
        "$.lines[1].id",
        "$.lines[1].unit_price",
        "$.allowances_charges[0].reason",
        "$.seller.vat_id",
        "$.payment_means[0].account",
    ]


def test_not_subject_to_vat_shows_no_vat_ids_and_mixes_with_nothing() -> None:
    with pytest.raises(InvalidInput) as exc:
        build(
            buyer=Party(name="Kunde AS", address=BUYER.address, vat_id="NO987654325MVA"),
            lines=[line("1", cat="O", rate=None), line("2")],
            exemption_reasons={"O": "Not subject to VAT"},
        )
    assert fields(exc) == ["$.lines", "$.seller.vat_id", "$.buyer.vat_id"]
    assert "BR-O-11" in str(exc.value) and "BR-O-02" in str(exc.value)


def test_seller_vat_id_required_for_vat_categories() -> None:
    with pytest.raises(InvalidInput) as exc:
        build(seller=Party(name="Firma", address=SELLER.address, legal_id="923609016",
                           legal_id_scheme="0192"))
    assert fields(exc) == ["$.seller.vat_id"]


def test_credit_note_with_negative_total_is_refused() -> None:
    with pytest.raises(InvalidInput) as exc:
        build(type_code="381", lines=[line("1", qty="-2")],
              preceding_invoices=[PrecedingInvoice("INV-0")])
    assert fields(exc) == ["$.lines"]
    assert "positive" in str(exc.value)


@pytest.mark.parametrize("preceding", [[], [PrecedingInvoice(" ")]])
def test_credit_note_without_the_invoice_it_credits_is_refused(preceding) -> None:
    # VAT Directive 2006/112/EC art. 219: a document amending an invoice refers to it
    # specifically and unambiguously; EN 16931 leaves BG-3 optional, Kanal does not
    with pytest.raises(InvalidInput) as exc:
        build(type_code="381", preceding_invoices=preceding)
    assert "$.preceding_invoices" in fields(exc)
    [violation] = [v for v in exc.value.violations if v.field == "$.preceding_invoices"]
    assert violation.description.startswith("[KANAL-CREDIT-NOTE-REFERENCE] a credit note "
                                             "must name the invoice it credits")
    assert "art. 219" in violation.description
    # an invoice needs none, a credit note naming its invoice is accepted
    assert build().preceding_invoices == ()
    assert build(type_code="381", preceding_invoices=[PrecedingInvoice("INV-0")]).is_credit_note


def test_amount_due_needs_due_date_or_terms() -> None:
    with pytest.raises(InvalidInput) as exc:
        build(due_date=None)
    assert fields(exc) == ["$.due_date"]
    assert build(due_date=None, payment_terms="30 days net").due_date is None


def test_allowance_amounts_have_two_decimals_and_payment_code_is_known() -> None:
    with pytest.raises(InvalidInput) as exc:
        build(
            allowances_charges=[AllowanceCharge(True, D("1.005"), "Fee", "S", D(25))],
            payment=PaymentMeans("999", "15030100007"),
        )
    assert fields(exc) == ["$.allowances_charges[0].amount", "$.payment_means[0].code"]
