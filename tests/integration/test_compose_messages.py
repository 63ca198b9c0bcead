"""Compose's INVALID_ARGUMENT messages over gRPC, in JSON's terms: values as JSON writes
them (`true`, `null`, `"text"`), never Python reprs; a `oneOf` names the field at fault in
the branch that came closest; printed text quoted as the reader sees it; a BOM said so."""

from __future__ import annotations

import json

import grpc
import pytest

from kanal.v1 import documents_pb2, documents_pb2_grpc
from server.api.errors import field_violations
from server.app import KanalServer
from server.compose.layouts import DEFAULT_LAYOUTS_DIR
from server.config import Settings
from tests.client import Keys, channel

pytestmark = pytest.mark.integration

KEYS = Keys(("nordkort", "producer"))


def sample(layout: str) -> dict:
    return json.loads((DEFAULT_LAYOUTS_DIR / layout / "2.0.0" / "sample.json").read_text())


@pytest.fixture(scope="module")
def documents(tmp_path_factory: pytest.TempPathFactory):
    state = tmp_path_factory.mktemp("kanal-messages")
    layouts = tmp_path_factory.mktemp("layouts")  # only what these tests use
    for name in ("card-invoice", "payment-reminder", "_shared"):
        (layouts / name).symlink_to(DEFAULT_LAYOUTS_DIR / name)
    with KanalServer(Settings(listen="127.0.0.1:0", state_dir=state, layouts_dir=layouts,
                              api_keys=KEYS.api_keys)) as server, \
            channel(server.address, KEYS["nordkort", "producer"]) as ch:
        yield documents_pb2_grpc.DocumentsStub(ch)


def refused(documents, layout: str, data: str | bytes) -> tuple[str, list[tuple[str, str]]]:
    text = data.decode("utf-8") if isinstance(data, bytes) else data
    with pytest.raises(grpc.RpcError) as caught:
        documents.Compose(documents_pb2.ComposeRequest(
            layout_id=layout, data_json=text, preview=True), timeout=120)
    assert caught.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    return caught.value.details(), field_violations(caught.value)


def test_schema_violations_show_json_values_at_the_deepest_path(documents):
    data = sample("payment-reminder")
    data["customer"]["name"] = True
    data["reminder"]["fee"] = None
    data["reminder"]["stage"] = "dunning"
    data["reminder"]["interest"] = {"rate_percent": "12.50", "days": -14}
    details, violations = refused(documents, "payment-reminder", json.dumps(data))
    found = dict(violations)
    assert found["$.customer.name"] == 'true is not of type "string"'
    assert found["$.reminder.fee"] == 'null is not of type "number" or "string"'
    assert found["$.reminder.stage"] == '"dunning" is not one of ["reminder", "collection_notice"]'
    # was "$.reminder.interest: {'rate_percent': '12.50', 'days': -14} is not valid under
    # any of the given schemas": neither the field nor why
    assert found["$.reminder.interest.days"] == "-14 is less than the minimum of 1"
    assert "$.reminder.interest" not in found
    for text in (details, *found.values()):
        assert "True" not in text and "None" not in text and "'" not in text


def test_a_missing_property_and_an_unexpected_one_are_named_in_json_quotes(documents):
    data = sample("payment-reminder")
    del data["reminder"]["new_due_date"]
    data["customer"]["nickname"] = "Kari"
    _, violations = refused(documents, "payment-reminder", json.dumps(data))
    found = dict(violations)
    assert found["$.reminder"] == '"new_due_date" is a required property'
    assert found["$.customer"] == ('additional properties are not allowed ("nickname" was '
                                   'unexpected)')


def test_text_that_overflows_the_page_is_quoted_as_printed(documents):
    data = sample("card-invoice")
    data["transactions"][0]["amount"] = "100000000000000.00"
    details, violations = refused(documents, "card-invoice", json.dumps(data))
    whys = [why for field, why in violations if field == "$.transactions[0].amount"]
    # the sum leaves the text area on page 1 and crosses the giro slip's KRONER rule on 2
    assert whys and any('("100 000 000 ' in why for why in whys), whys
    for why in whys:  # was ('100\xa0000\xa0000…'): Python's repr of the no-break spaces
        assert "\\xa0" not in why and "\xa0" not in why, why
    assert "\\xa0" not in details


def test_a_byte_order_mark_is_named_as_one(documents):
    data = "\ufeff" + json.dumps(sample("card-invoice"))
    _, violations = refused(documents, "card-invoice", data)
    [(field, why)] = violations
    assert field == "data"
    assert "starts with a byte-order mark" in why and "without a BOM" in why
    assert "utf-8-sig" not in why


def test_too_many_transactions_say_the_limit(documents):
    # was: '$.transactions: [{"date": ..., …] is too long': neither the limit nor the count
    data = sample("card-invoice")
    data["transactions"] = data["transactions"][:1] * 5000
    details, violations = refused(documents, "card-invoice", json.dumps(data))
    assert violations == [("$.transactions", "has 5000 items; at most 2000 are allowed")]
    assert "at most 2000" in details


def test_a_national_id_with_a_wrong_check_digit_is_refused_at_its_path(documents):
    # was: composed (and the mailbox delivery failed later, or reached nobody)
    data = sample("card-invoice")
    data["customer"]["national_id"] = "01017012345"
    details, violations = refused(documents, "card-invoice", json.dumps(data))
    assert violations == [("$.customer.national_id", (
        '"01017012345" is not a Norwegian fødselsnummer (the customer\'s country NO: a check '
        'digit is wrong; 11 digits DDMMYYNNNCC)'))]
    assert details.startswith('invalid $.customer.national_id: "01017012345" is not a ')


def test_a_numeric_string_past_the_schemas_bound_is_refused_as_a_number_is(documents):
    # was composed: the schemas' bounds bound JSON numbers only, and amounts come as strings
    # (server.compose.schema_bounds; QA 2026-12-02)
    data = sample("card-invoice")
    data["transactions"][0]["amount"] = "1000000000000000.00"
    data["card_account"]["nominal_interest_percent"] = "1000"
    _, violations = refused(documents, "card-invoice", json.dumps(data))
    assert dict(violations) == {
        "$.transactions[0].amount":
            '"1000000000000000.00" is greater than or equal to the maximum of 1000000000000000',
        "$.card_account.nominal_interest_percent":
            '"1000" is greater than or equal to the maximum of 1000'}
    data = sample("payment-reminder")
    data["reminder"]["fee"] = "-1000000000000000"
    _, violations = refused(documents, "payment-reminder", json.dumps(data))
    assert violations == [("$.reminder.fee", '"-1000000000000000" is less than or equal to '
                                             "the minimum of -1000000000000000")]
