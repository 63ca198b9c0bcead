"""Finnish consumer e-invoices (e-lasku) end to end: Kanal composes a card invoice for a
consumer in Finland over gRPC, renders it as Finvoice 3.0, and its dispatcher hands it in
the Finvoice Transmission Frame to a stand-in of the sender's Finvoice operator
(tests/standins/finvoice_operator.py, built from the published frame), which checks the
frame and validates the Finvoice against the Finvoice 3.0 XSD before accepting it."""

from __future__ import annotations

import pytest
from lxml import etree

from kanal.v1 import common_pb2, deliveries_pb2, documents_pb2_grpc
from server.app import KanalServer
from server.config import Settings
from server.delivery.providers.finvoice_frame import message_identifier
from tests.client import Keys, channel
from tests.integration.delivery_fixtures import (
    compose,
    find_delivery,
    fresh_database,
    sample,
    wait_for,
)
from tests.standins import finvoice_operator as fo

pytestmark = pytest.mark.integration

KEYS = Keys(("nordkort", "producer"),)
S = deliveries_pb2
EINVOICE = common_pb2.CHANNEL_EINVOICE
UNKNOWN = "FI7112345600000786"  # a valid IBAN no bank has an e-invoice agreement for
RETRY_FAST = {"backoff_seconds": 0.2, "backoff_max_seconds": 1.0, "breaker_failures": 3,
              "breaker_seconds": 1.0, "max_attempts": 50, "timeout": 5}


@pytest.fixture(scope="module")
def operator():
    server = fo.FinvoiceOperator(unknown={UNKNOWN})
    server.up()
    yield server
    server.down()


@pytest.fixture(scope="module")
def kanal(tmp_path_factory, pg_url, operator):
    databases = fresh_database(pg_url)
    delivery = {
        "lease_seconds": 5, "poll_seconds": 0.2, "purge_seconds": 1,
        "providers": {
            "finvoice-op": {"type": "finvoice", "url": f"{operator.url}/finvoice",
                            "sender_intermediator": "NDEAFIHH", "in_doubt_seconds": 1,
                            **RETRY_FAST},
        },
        "tenants": {
            "nordkort": {"channels": {"einvoice": {"finvoice-3.0": "finvoice-op"}},
                         "finvoice-op": {"username": fo.USERNAME, "password": fo.PASSWORD}},
        },
    }
    settings = Settings(listen="127.0.0.1:0", state_dir=tmp_path_factory.mktemp("kanal-fi"),
                        api_keys=KEYS.api_keys, index_url=next(databases), render_workers=0,
                        delivery=delivery)
    with KanalServer(settings) as server:
        yield server
    next(databases, None)


@pytest.fixture(scope="module")
def documents(kanal):
    with channel(kanal.address, KEYS["nordkort", "producer"]) as ch:
        yield documents_pb2_grpc.DocumentsStub(ch)


def finnish_invoice(documents, address: str, bic: str = "OKOYFIHH") -> str:
    return compose(documents, "card-invoice", sample(
        "card-invoice", "aino@example.fi", country="FI", sample_file="samples/fi-FI.json",
        finvoice={"address": address, "intermediator": bic}))


def archived_finvoice(kanal: KanalServer, document_id: str) -> bytes:
    record = kanal.index.get("nordkort", document_id)
    [output] = [o for o in record.outputs if o.channel == "einvoice"]
    assert output.facts["syntax"] == "finvoice-3.0"
    return kanal.store.get(output.key, expected_sha256=output.sha256)


def test_a_consumer_einvoice_reaches_the_operator_with_both_addresses(kanal, documents,
                                                                      operator):
    document_id = finnish_invoice(documents, "FI4950009420028730")
    einvoice = wait_for(lambda: find_delivery(documents, document_id, EINVOICE,
                                              S.DELIVERY_STATE_SENT), "the operator's 200",
                        explain=lambda: find_delivery(documents, document_id, EINVOICE))
    got = operator.received[message_identifier(einvoice.message_id)]
    assert (got.sender, got.sender_intermediator) == ("003728470514", "NDEAFIHH")
    assert (got.receiver, got.receiver_intermediator) == ("FI4950009420028730", "OKOYFIHH")
    assert einvoice.provider_message_id == got.operator_id
    assert kanal.delivery.store.row(einvoice.delivery_id)["recipient"] == \
        "FI4950009420028730@OKOYFIHH"
    # the archived Finvoice, as rendered, is what arrived, with the routing details added
    sent = etree.fromstring(got.finvoice)
    details = sent.find("MessageTransmissionDetails")
    assert details.findtext("MessageReceiverDetails/ToIdentifier") == "FI4950009420028730"
    sent.remove(details)
    archived = archived_finvoice(kanal, document_id)
    assert etree.tostring(sent, method="c14n") == etree.tostring(
        etree.fromstring(archived), method="c14n")
    assert b"MessageTransmissionDetails" not in archived
    assert [e.state for e in einvoice.events] == [
        S.DELIVERY_STATE_QUEUED, S.DELIVERY_STATE_SENDING, S.DELIVERY_STATE_SENT]


def test_a_receiver_the_operator_does_not_know_is_failed_with_its_reason(documents, operator):
    document_id = finnish_invoice(documents, UNKNOWN, "NDEAFIHH")
    einvoice = wait_for(lambda: (d := find_delivery(documents, document_id, EINVOICE)) and any(
        e.state == S.DELIVERY_STATE_FAILED for e in d.events) and d, "the operator's fault")
    [failed] = [e for e in einvoice.events if e.state == S.DELIVERY_STATE_FAILED]
    assert "rejected by the Finvoice operator" in failed.reason
    assert f"Receiver not found: e-invoice address {UNKNOWN} is unknown at NDEAFIHH" in \
        failed.reason
    assert einvoice.attempts == 1  # a rejection is not sent again
    assert not [r for r in operator.received.values() if r.receiver == UNKNOWN]


def test_a_transient_fault_is_retried_and_the_invoice_arrives_once(documents, operator):
    with operator.lock:
        operator.outages = 2
    document_id = finnish_invoice(documents, "FI2112345600000785")
    einvoice = wait_for(lambda: find_delivery(documents, document_id, EINVOICE,
                                              S.DELIVERY_STATE_SENT), "the retried e-invoice")
    assert [a.outcome for a in einvoice.attempt_log] == ["retry", "retry", "accepted"]
    assert "temporarily unavailable" in einvoice.attempt_log[0].reason
    mine = message_identifier(einvoice.message_id)
    assert [r.message_id for r in operator.received.values()].count(mine) == 1


def test_an_operator_outage_then_recovery_sends_each_invoice_once(documents, operator):
    operator.down()
    try:
        document_id = finnish_invoice(documents, "FI4950009420028730")
        wait_for(lambda: (d := find_delivery(documents, document_id, EINVOICE))
                 and d.attempts >= 2 and d.state == S.DELIVERY_STATE_QUEUED,
                 "retries during the outage")
    finally:
        operator.up()
    einvoice = wait_for(lambda: find_delivery(documents, document_id, EINVOICE,
                                              S.DELIVERY_STATE_SENT), "after the outage", 60)
    assert "Connection refused" in einvoice.attempt_log[0].reason
    assert message_identifier(einvoice.message_id) in operator.received



def test_an_answer_lost_after_the_operator_took_it_is_not_a_second_invoice(documents,
                                                                          operator):
    # The operator has the invoice; its answer comes after our timeout (5 s): in doubt.
    # The resend carries the same MessageId, which the operator knows: sent, once.
    with operator.lock:
        operator.slow, repeats = 1, operator.repeats
    document_id = finnish_invoice(documents, "FI4950009420028730")
    einvoice = wait_for(lambda: find_delivery(documents, document_id, EINVOICE,
                                              S.DELIVERY_STATE_SENT), "the resent e-invoice")
    mine = message_identifier(einvoice.message_id)
    assert [a.outcome for a in einvoice.attempt_log] == ["retry", "accepted"]
    assert "did not answer" in einvoice.attempt_log[0].reason
    assert operator.repeats == repeats + 1 and mine in operator.received
    assert einvoice.provider_message_id == operator.received[mine].operator_id
