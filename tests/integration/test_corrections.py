"""Corrections end to end (QA: a welcome letter and two corrections of it, composed before the
print batch closed, went into one batch and one envelope): a real server (embedded
SeaweedFS; index on SQLite and on PostgreSQL) composes printed welcome letters over gRPC,
its dispatcher hands their print deliveries to the print queue, and the print shop's batches
are closed on request (ClosePrintBatches, as `kanal print close`).

- a correction composed before the batch closes: the batch holds the correction only, the
  original's piece is withdrawn and its print delivery says why;
- after the batch closed: both are printed (nothing is taken back);
- a second correction of the same original: FAILED_PRECONDITION naming the first.
"""

from __future__ import annotations

import json
import uuid

import grpc
import pytest
from google.rpc import error_details_pb2
from grpc_status import rpc_status
from sqlalchemy import select

from kanal.v1 import (
    common_pb2,
    deliveries_pb2_grpc,
    documents_pb2,
    documents_pb2_grpc,
    printshop_pb2_grpc,
)
from kanal.v1 import deliveries_pb2 as S
from kanal.v1 import printshop_pb2 as pb
from server.app import KanalServer
from server.compose.layouts import LayoutRegistry
from server.config import Settings
from server.printing.queue import WITHDRAWN, print_pieces
from tests.client import Keys, channel
from tests.integration import delivery_fixtures
from tests.integration.delivery_fixtures import wait_for
from tests.integration.server_index import index_url_for

pytestmark = pytest.mark.integration

KEYS = Keys(("nordkort", "producer"), ("nordkort", "admin"))
LAYOUTS = LayoutRegistry()


@pytest.fixture(scope="module", params=["sqlite", "postgresql"])
def kanal(request, tmp_path_factory, pg_url):
    state = tmp_path_factory.mktemp(f"corrections-{request.param}")
    with index_url_for(request.param, pg_url, "kanal_corrections") as index_url, \
            KanalServer(Settings(listen="127.0.0.1:0", state_dir=state,
                                 api_keys=KEYS.api_keys, index_url=index_url)) as server:
        yield server


def compose(kanal: KanalServer, customer_id: str, corrects: str = "", key: str = "") -> str:
    """A printed welcome letter for the customer (a correction of `corrects`; with the
    idempotency key `key`) -> its id."""
    data = json.loads((LAYOUTS.get("welcome-letter").path / "sample.json").read_text())
    data["customer"]["customer_id"] = customer_id
    with channel(kanal.address, KEYS["nordkort", "producer"]) as ch:
        return documents_pb2_grpc.DocumentsStub(ch).Compose(documents_pb2.ComposeRequest(
            layout_id="welcome-letter", data_json=json.dumps(data),
            channels=[common_pb2.CHANNEL_PRINT], corrects_document_id=corrects,
            idempotency_key=key)).document_id


def print_delivery(kanal: KanalServer, document_id: str):
    return delivery_fixtures.print_delivery(kanal.address, KEYS["nordkort", "producer"],
                                            document_id)


def queued(kanal: KanalServer, document_id: str) -> None:
    """Wait until the dispatcher handed the letter's print delivery to the print queue."""
    wait_for(lambda: print_delivery(kanal, document_id).state == S.DELIVERY_STATE_SENT,
             f"{document_id}'s piece in the print queue")


def close_batches(kanal: KanalServer) -> list[str]:
    with channel(kanal.address, KEYS["nordkort", "admin"]) as ch:
        return list(printshop_pb2_grpc.PrintShopStub(ch).ClosePrintBatches(
            pb.ClosePrintBatchesRequest()).batch_ids)


def batch_of(kanal: KanalServer, document_ids: list[str]) -> dict[str, str | None]:
    """document id -> the batch id of its piece (WITHDRAWN, or None while it waits)"""
    with kanal.index.engine.connect() as conn:
        return dict(conn.execute(select(print_pieces.c.document_id, print_pieces.c.batch_id)
                                 .where(print_pieces.c.document_id.in_(document_ids))).all())


def precondition_violations(error: grpc.RpcError) -> list:
    """The violations of a failed call's google.rpc.PreconditionFailure detail."""
    found = []
    for detail in rpc_status.from_call(error).details:
        if detail.Is(error_details_pb2.PreconditionFailure.DESCRIPTOR):
            failure = error_details_pb2.PreconditionFailure()
            detail.Unpack(failure)
            found += failure.violations
    return found


def customer() -> str:
    return f"7{uuid.uuid4().int % 10**7:07d}"


def test_a_correction_before_the_batch_closes_is_printed_instead_of_the_original(kanal):
    who = customer()
    original = compose(kanal, who)
    queued(kanal, original)
    correction = compose(kanal, who, corrects=original)
    queued(kanal, correction)
    batches = close_batches(kanal)
    pieces = batch_of(kanal, [original, correction])
    assert pieces[correction] in batches
    assert pieces[original] == WITHDRAWN  # in no batch: never printed
    withdrawn = print_delivery(kanal, original)
    assert withdrawn.state == S.DELIVERY_STATE_FAILED
    assert withdrawn.reason.startswith(f"superseded by correction {correction}")
    # QA: an operator's retry put it back to `sent` while its piece stayed withdrawn
    with channel(kanal.address, KEYS["nordkort", "admin"]) as ch, \
            pytest.raises(grpc.RpcError) as info:
        deliveries_pb2_grpc.DeliveriesStub(ch).RetryDelivery(
            S.DeliveryActionRequest(delivery_id=withdrawn.delivery_id))
    assert info.value.code() == grpc.StatusCode.FAILED_PRECONDITION
    assert (f"document {original} was corrected by {correction}: its deliveries are "
            "superseded") in info.value.details()
    assert print_delivery(kanal, original).state == S.DELIVERY_STATE_FAILED


def test_a_correction_after_the_batch_closed_is_printed_on_its_own(kanal):
    who = customer()
    original = compose(kanal, who)
    queued(kanal, original)
    first = close_batches(kanal)
    correction = compose(kanal, who, corrects=original)
    queued(kanal, correction)
    second = close_batches(kanal)
    pieces = batch_of(kanal, [original, correction])
    assert pieces[original] in first and pieces[correction] in second
    assert print_delivery(kanal, original).state == S.DELIVERY_STATE_SENT  # taken by its batch


def test_a_second_correction_of_one_original_is_refused_naming_the_first(kanal):
    who = customer()
    original = compose(kanal, who)
    correction = compose(kanal, who, corrects=original)
    with pytest.raises(grpc.RpcError) as info:
        compose(kanal, who, corrects=original)
    assert info.value.code() == grpc.StatusCode.FAILED_PRECONDITION
    assert f"correct {correction} instead" in info.value.details()
    [violation] = precondition_violations(info.value)  # QA: the field named, not only said
    assert (violation.type, violation.subject) == ("ALREADY_CORRECTED", "corrects_document_id")
    assert f"correct {correction} instead" in violation.description
    assert compose(kanal, who, corrects=correction)  # correcting the correction is fine


def test_an_idempotency_key_replays_only_the_same_correction(kanal):
    """QA: the key of a correction of one document, reused to correct another (or to
    correct none), replayed the first correction; it is the same key for other data."""
    who = customer()
    original, other = compose(kanal, who), compose(kanal, who)
    key = f"correction-{uuid.uuid4()}"
    correction = compose(kanal, who, corrects=original, key=key)
    assert compose(kanal, who, corrects=original, key=key) == correction  # replayed
    for corrects in (other, ""):
        with pytest.raises(grpc.RpcError) as info:
            compose(kanal, who, corrects=corrects, key=key)
        assert info.value.code() == grpc.StatusCode.ALREADY_EXISTS
        assert "corrects_document_id" in info.value.details()
    plain = f"letter-{uuid.uuid4()}"  # a request without a correction replays as always
    assert compose(kanal, who, key=plain) == compose(kanal, who, key=plain)
