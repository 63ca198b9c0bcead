"""One refusal names every bad transaction and fee of a card invoice, not only the first
(server/errors.Gathered in server/compose/builders/card_statement.py).

QA: a statement sent with several 3-decimal amounts named only the first; the bank fixed
it, sent it again, and learnt of the next.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime

import pytest

from server.compose.composer import ComposeRequest, compose
from server.errors import MAX_GATHERED, Gathered, InvalidInput
from tests.layouts import shipped

LAYOUTS = shipped()
NOW = datetime(2026, 3, 2, 8, 0, tzinfo=UTC)


def refused(data: dict) -> InvalidInput:
    with pytest.raises(InvalidInput) as info:
        compose(ComposeRequest(tenant="t", layout=LAYOUTS.get("card-invoice"),
                               data=json.dumps(data), document_id="d", now=NOW))
    return info.value


def sample() -> dict:
    return json.loads(LAYOUTS.get("card-invoice").sample_data())


def test_every_bad_transaction_is_named_each_at_its_first_bad_field():
    data = sample()
    rows = data["transactions"]
    rows[1]["amount"] = "44.005"
    rows[3]["date"] = "2027-01-01"
    rows[5]["amount"] = "1.001"
    rows[5]["date"] = "2027-01-01"  # the same row's second problem: not named
    error = refused(data)
    assert [v.field for v in error.violations] == [
        "$.transactions[1].amount", "$.transactions[3].date", "$.transactions[5].amount"]
    assert error.message == "invalid transactions"
    assert error.violations[0].description.startswith("NOK has 2 decimals; 44.005 has 3")


def test_every_bad_fee_is_named():
    data = sample()
    data["fees"] = [{"description": "Gebyr", "amount": "39.001"},
                    {"description": "Purregebyr", "amount": "-5"}]
    assert [v.field for v in refused(data).violations] == [
        "$.fees[0].amount", "$.fees[1].amount"]


def test_one_bad_transaction_is_refused_as_before():
    data = sample()
    data["transactions"][2]["amount"] = "1.001"
    error = refused(data)
    assert error.message == "invalid $.transactions[2].amount"
    assert [v.field for v in error.violations] == ["$.transactions[2].amount"]


def test_a_refusal_names_at_most_max_gathered():
    gathered = Gathered("invalid rows")
    for i in range(MAX_GATHERED + 5):
        with gathered:
            raise InvalidInput.field(f"$.rows[{i}]", "bad")
    with gathered:
        pass  # a good row adds nothing
    with pytest.raises(InvalidInput) as info:
        gathered.raise_any()
    assert len(info.value.violations) == MAX_GATHERED
    with pytest.raises(KeyError), gathered:  # anything but InvalidInput is not gathered
        raise KeyError("x")
