"""A card transaction dated after the statement's invoice date is refused at its date; one
before the period start is kept (posting lag) (server/compose/builders/card_statement.py).

QA: a 2027-01-01 transaction on the February 2026 statement composed and printed.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime

import pytest

from server.compose.composer import ComposeRequest, compose
from server.compose.model import Composition
from server.errors import InvalidInput
from tests.layouts import shipped

LAYOUTS = shipped()
NOW = datetime(2026, 3, 2, 8, 0, tzinfo=UTC)


def run(data: dict, version: str | None = None) -> Composition:
    layout = LAYOUTS.get("card-invoice", version) if version else LAYOUTS.get("card-invoice")
    return compose(ComposeRequest(tenant="fjordbank", layout=layout, data=json.dumps(data),
                                  document_id="01JTEST", now=NOW))


def sample(version: str | None = None) -> dict:
    layout = LAYOUTS.get("card-invoice", version) if version else LAYOUTS.get("card-invoice")
    return json.loads(layout.sample_data())


@pytest.mark.parametrize("version", ["1.0.0", "2.0.0"])
def test_a_transaction_after_the_invoice_date_is_refused_at_its_date(version):
    data = sample(version)  # the February 2026 statement, invoice date 2026-03-02
    data["transactions"][1]["date"] = "2027-01-01"
    with pytest.raises(InvalidInput) as info:
        run(data, version)
    assert [(v.field, v.description) for v in info.value.violations] == [
        ("$.transactions[1].date", "2027-01-01 is after the invoice date 2026-03-02 "
         "($.invoice.invoice_date): a statement bills only transactions made by the day it "
         "is issued")]


def test_transactions_up_to_the_invoice_date_and_before_the_period_are_kept():
    data = sample()
    data["transactions"][0]["date"] = "2026-01-29"  # made in January, posted in February
    data["transactions"][1]["date"] = data["invoice"]["invoice_date"]
    rows = run(data).context["transactions"]
    assert [r["date"] for r in rows[:2]] == ["29.01.2026", "02.03.2026"]
