"""The Peppol BIS Billing 3.0 rules Kanal checks itself before an e-invoice is chosen
(`check_peppol`), and the EN 16931 code-list rules refused while the invoice is computed:
each violation names its field by JSON path and starts with the rule id (PEPPOL-EN16931-R003,
-R010, -R020, PEPPOL-COMMON-R041, NO-R-001, SE-R-001/-006, BR-CL-19/20/25, BR-CO-09).

Every invoice of tests/unit/einvoice_fixtures.py passes them (the Finnish consumer, who has
no Peppol address, only lacks the buyer's endpoint); where a rule is Peppol's alone, the CEN
EN 16931 schematron passes and the Peppol schematron (run by Saxon) fails as Kanal said.
"""

from __future__ import annotations

import dataclasses
import sys
from decimal import Decimal as D
from pathlib import Path

import pytest

from server.channels.einvoice import check_peppol, render_ubl
from server.compose.model import AllowanceCharge, Invoice
from server.errors import InvalidInput
from tests.unit.einvoice_fixtures import (
    CASES,
    FI_CONSUMER,
    NO_BUYER,
    NO_SELLER,
    SE_SELLER,
    L,
    invoice,
)

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
import einvoice_validation as ev  # noqa: E402


@pytest.fixture(scope="module", params=sorted(CASES))
def case(request: pytest.FixtureRequest) -> Invoice:
    return CASES[request.param]()


# --- Peppol rule checks ----------------------------------------------------------------------


def test_every_case_passes_the_peppol_checks(case: Invoice) -> None:
    got = [v.field for v in check_peppol(case)]
    if case.buyer is FI_CONSUMER:  # a consumer has no Peppol address: Finvoice goes instead
        assert got == ["$.buyer.endpoint_id"]
    else:
        assert got == []


def _violations(inv: Invoice) -> dict[str, str]:
    return {v.field: v.description for v in check_peppol(inv)}


def test_missing_buyer_and_order_reference_is_a_peppol_violation() -> None:
    inv = invoice(buyer_reference=None, order_reference=None)
    got = _violations(inv)
    assert list(got) == ["$.buyer_reference"]
    assert got["$.buyer_reference"].startswith("[PEPPOL-EN16931-R003]")
    # EN 16931 alone does not require it: the CEN schematron passes, Peppol would reject.
    assert ev.validate_ubl(render_ubl(inv), peppol=False).errors == []
    assert any("PEPPOL-EN16931-R003" in e for e in ev.validate_ubl(render_ubl(inv)).errors)
    assert check_peppol(invoice(buyer_reference=None, order_reference="PO-1")) == []


def test_missing_electronic_addresses() -> None:
    seller = dataclasses.replace(NO_SELLER, endpoint_id=None, endpoint_scheme=None)
    buyer = dataclasses.replace(NO_BUYER, endpoint_id=None, endpoint_scheme=None)
    got = _violations(invoice(seller=seller, buyer=buyer))
    assert list(got) == ["$.seller.endpoint_id", "$.buyer.endpoint_id"]
    assert "PEPPOL-EN16931-R020" in got["$.seller.endpoint_id"]
    assert "PEPPOL-EN16931-R010" in got["$.buyer.endpoint_id"]


def test_unknown_endpoint_scheme_and_bad_identifiers() -> None:
    # A scheme off the EAS list is refused while the invoice is computed (EN 16931 BR-CL-25,
    # the same list Peppol's CL008 checks), before any e-invoice is chosen.
    buyer = dataclasses.replace(NO_BUYER, endpoint_scheme="EM", endpoint_id="a@b.no")
    with pytest.raises(InvalidInput) as exc:
        invoice(buyer=buyer)
    assert [(v.field, v.description[:11]) for v in exc.value.violations] == [
        ("$.buyer.endpoint_scheme", "[BR-CL-25] ")]
    seller = dataclasses.replace(NO_SELLER, legal_id="923609017", vat_id="NO923609016")
    got = _violations(invoice(seller=seller))
    assert got.keys() == {"$.seller.legal_id", "$.seller.vat_id"}
    assert "PEPPOL-COMMON-R041" in got["$.seller.legal_id"]
    assert "NO-R-001" in got["$.seller.vat_id"]


def test_norwegian_vat_id_needs_mva_suffix_and_valid_org_number() -> None:
    for bad in ("NO923609016", "NO923609017MVA", "NO 923609016 MVA"):
        seller = dataclasses.replace(NO_SELLER, vat_id=bad)
        got = _violations(invoice(seller=seller))
        assert "NO-R-001" in got.get("$.seller.vat_id", ""), bad
    # Without the country prefix it is not a VAT id at all (EN 16931 BR-CO-09).
    with pytest.raises(InvalidInput) as exc:
        invoice(seller=dataclasses.replace(NO_SELLER, vat_id="923609016MVA"))
    assert [v.field for v in exc.value.violations] == ["$.seller.vat_id"]


def test_swedish_seller_rates_and_vat_id() -> None:
    seller = dataclasses.replace(SE_SELLER, vat_id="SE5560360793")
    got = _violations(
        invoice(seller=seller, currency="SEK", lines=[L("1", "1", "C62", "100", "S", "15")])
    )  # noqa: E501
    assert "SE-R-001" in got["$.seller.vat_id"]
    assert "SE-R-006" in got["$.lines[0].vat_rate"]


def test_allowance_reason_code_lists() -> None:
    # EN 16931 BR-CL-19/20 (the lists Peppol's CL002/CL003 check too), at composition
    with pytest.raises(InvalidInput) as exc:
        invoice(
            allowances_charges=[
                AllowanceCharge(False, D("10"), "Rabatt", "S", D(25), "ABK"),  # a charge code
                AllowanceCharge(True, D("10"), "Gebyr", "S", D(25), "95"),  # an allowance code
            ]
        )
    got = {v.field: v.description for v in exc.value.violations}
    assert got["$.allowances_charges[0].reason_code"].startswith("[BR-CL-19]")
    assert got["$.allowances_charges[1].reason_code"].startswith("[BR-CL-20]")


def test_peppol_field_prefix() -> None:
    inv = invoice(buyer_reference=None)
    assert [v.field for v in check_peppol(inv, field_prefix="$.invoice")] == [
        "$.invoice.buyer_reference"
    ]
