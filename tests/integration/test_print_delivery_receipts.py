"""The print shop's acknowledgement is the print trade's receipt: a real server dispatches
three card invoices' print deliveries into the print queue (`sent`), the print shop fetches
and acknowledges their batch over gRPC with one piece spoiled, and the deliveries read
`delivered` with the batch named; the spoiled one stays `sent` until its reprint batch is
acknowledged."""

from __future__ import annotations

import json
import random

import pytest

from kanal.v1 import common_pb2, documents_pb2, documents_pb2_grpc, printshop_pb2_grpc
from kanal.v1 import deliveries_pb2 as S
from kanal.v1 import printshop_pb2 as pb
from server.app import KanalServer
from tests.client import channel
from tests.integration import delivery_fixtures
from tests.integration.delivery_fixtures import wait_for
from tests.integration.print_batch_fixtures import KEYS, document_data, start_kanal


@pytest.fixture(scope="module")
def kanal(tmp_path_factory: pytest.TempPathFactory):
    yield from start_kanal(tmp_path_factory)


def print_delivery(kanal: KanalServer, document_id: str):
    return delivery_fixtures.print_delivery(kanal.address, KEYS["nordkort", "producer"],
                                            document_id)


def fetch_and_acknowledge(stub, batch_id: str, spoiled: list[str]) -> pb.PrintBatch:
    manifest = json.loads(b"".join(c.data for c in stub.FetchPrintBatch(
        pb.FetchPrintBatchRequest(batch_id=batch_id, part=pb.PRINT_BATCH_PART_MANIFEST_JSON))))
    assert spoiled == [p for p in spoiled if p in {m["piece_id"] for m in manifest["pieces"]}]
    return stub.AcknowledgePrintBatch(pb.AcknowledgePrintBatchRequest(
        batch_id=batch_id, spoiled_piece_ids=spoiled))


def test_acknowledged_pieces_are_delivered_and_a_spoiled_one_after_its_reprint(kanal):
    rng = random.Random(11)
    document_ids = []
    with channel(kanal.address, KEYS["nordkort", "producer"]) as ch:
        documents = documents_pb2_grpc.DocumentsStub(ch)
        for n in range(3):
            data, locale = document_data(rng, "card-invoice", n)
            data = json.loads(data)
            data["card_account"]["segment"] = "private"  # one insert set: one batch
            data["customer"]["address"].update(country="NO", postal_code="0358", city="OSLO")
            document_ids.append(documents.Compose(documents_pb2.ComposeRequest(
                tenant="nordkort", layout_id="card-invoice", data_json=json.dumps(data),
                locale="nb-NO", channels=[common_pb2.CHANNEL_PRINT])).document_id)
    for document_id in document_ids:  # the dispatcher hands each piece to the print queue
        wait_for(lambda: print_delivery(kanal, document_id).state  # noqa: B023
                 == S.DELIVERY_STATE_SENT, f"{document_id}'s piece in the print queue")

    with channel(kanal.address, KEYS["nordkort", "admin"]) as ch:
        [batch_id] = printshop_pb2_grpc.PrintShopStub(ch).ClosePrintBatches(
            pb.ClosePrintBatchesRequest()).batch_ids
    with channel(kanal.address, KEYS["nordkort", "printshop:demo-print"]) as ch:
        stub = printshop_pb2_grpc.PrintShopStub(ch)
        spoiled = document_ids[1]  # a piece's id is its document's id (a reprint's: -R<n>)
        acked = fetch_and_acknowledge(stub, batch_id, [spoiled])

        for document_id in (document_ids[0], document_ids[2]):
            delivery = print_delivery(kanal, document_id)
            assert delivery.state == S.DELIVERY_STATE_DELIVERED
            assert f"printed in print batch {batch_id}" in delivery.reason
            assert "print shop demo-print" in delivery.reason
            assert [e.state for e in delivery.events][-2:] == [
                S.DELIVERY_STATE_SENT, S.DELIVERY_STATE_DELIVERED]
        assert print_delivery(kanal, spoiled).state == S.DELIVERY_STATE_SENT

        again = fetch_and_acknowledge(stub, batch_id, [spoiled])  # idempotent: no new events
        assert again.reprint_batch_id == acked.reprint_batch_id
        assert [e.state for e in print_delivery(kanal, document_ids[0]).events].count(
            S.DELIVERY_STATE_DELIVERED) == 1

        fetch_and_acknowledge(stub, acked.reprint_batch_id, [])
        reprinted = print_delivery(kanal, spoiled)
        assert reprinted.state == S.DELIVERY_STATE_DELIVERED
        assert f"printed in print batch {acked.reprint_batch_id}" in reprinted.reason
