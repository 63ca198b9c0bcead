"""The PrintShop API and `kanal print` on real print batches: a print shop lists, fetches
(in chunks, resuming at an offset) and acknowledges its batches, spoiled pieces come back in
a reprint batch with fresh sequence numbers, print shops and tenants are isolated (another's
batch is NOT_FOUND exactly like an unknown id), the cutoff closes a group when its time is
up, and the CLI lists, closes, fetches and acknowledges.

A real server (embedded SeaweedFS, SQLite index) with 30 rendered documents and 330 reused
queue entries closed into batches (tests/integration/print_batch_fixtures.py); what the
batches hold: test_print_batches.py.
"""

from __future__ import annotations

import hashlib
import json
from datetime import UTC, datetime, timedelta

import grpc
import pytest
from sqlalchemy import select

from kanal.v1 import printshop_pb2 as pb
from kanal.v1 import printshop_pb2_grpc
from server.app import KanalServer
from server.printing.queue import QueuedPiece, print_pieces
from tests.client import channel
from tests.integration.print_batch_fixtures import (
    KEYS,
    close_batches,
    compose_documents,
    start_kanal,
)

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def kanal(tmp_path_factory: pytest.TempPathFactory):
    yield from start_kanal(tmp_path_factory)


@pytest.fixture(scope="module")
def composed(kanal: KanalServer):
    """24 documents for nordkort and 6 for fjord, composed over gRPC."""
    return compose_documents(kanal)


@pytest.fixture(scope="module")
def batches(kanal: KanalServer, composed):
    """Multiply the queued pieces to a few hundred, then close everything on request."""
    return close_batches(kanal)


def printshop(kanal: KanalServer, tenant: str, role: str):
    return channel(kanal.address, KEYS[tenant, role])


# --- the PrintShop API -------------------------------------------------------------------------


def fetch(stub, batch_id, part=0, offset=0, chunk_size=0):
    chunks = list(stub.FetchPrintBatch(pb.FetchPrintBatchRequest(
        batch_id=batch_id, part=part, offset=offset, chunk_size=chunk_size)))
    return chunks


def test_api_list_fetch_resume_acknowledge_reprint(kanal, batches):
    with printshop(kanal, "nordkort", "printshop:demo-print") as ch:
        stub = printshop_pb2_grpc.PrintShopStub(ch)
        listed = stub.ListPrintBatches(pb.ListPrintBatchesRequest(
            states=[pb.PRINT_BATCH_STATE_READY])).batches
        mine = {b.batch_id for b in listed}
        assert mine == {i.batch_id for i, _, _ in batches.values()
                        if i.printshop == "demo-print" and i.tenant == "nordkort"}
        batch = max(listed, key=lambda b: b.pieces)
        pdf_file = next(f for f in batch.files if f.part == pb.PRINT_BATCH_PART_PDF)

        chunks = fetch(stub, batch.batch_id, pb.PRINT_BATCH_PART_PDF, chunk_size=256 * 1024)
        assert len(chunks) > 2 and chunks[-1].last
        half = chunks[len(chunks) // 2].offset
        first_half = b"".join(c.data for c in chunks if c.offset < half)
        rest = fetch(stub, batch.batch_id, pb.PRINT_BATCH_PART_PDF, offset=half,
                     chunk_size=256 * 1024)
        assert rest[0].offset == half
        pdf = first_half + b"".join(c.data for c in rest)
        assert hashlib.sha256(pdf).hexdigest() == pdf_file.sha256 == rest[-1].sha256
        assert len(pdf) == pdf_file.size
        everything = fetch(stub, batch.batch_id)  # all parts, PDF first
        assert [p for p in dict.fromkeys(c.part for c in everything)] == [
            pb.PRINT_BATCH_PART_PDF, pb.PRINT_BATCH_PART_MANIFEST_JSON,
            pb.PRINT_BATCH_PART_MANIFEST_CSV]
        csv_bytes = b"".join(c.data for c in everything
                             if c.part == pb.PRINT_BATCH_PART_MANIFEST_CSV)
        csv_file = next(f for f in batch.files if f.part == pb.PRINT_BATCH_PART_MANIFEST_CSV)
        assert hashlib.sha256(csv_bytes).hexdigest() == csv_file.sha256

        fetched = stub.ListPrintBatches(pb.ListPrintBatchesRequest(
            states=[pb.PRINT_BATCH_STATE_FETCHED])).batches
        assert batch.batch_id in {b.batch_id for b in fetched}

        manifest = json.loads(b"".join(c.data for c in everything
                                       if c.part == pb.PRINT_BATCH_PART_MANIFEST_JSON))
        spoiled = [manifest["pieces"][3]["piece_id"], manifest["pieces"][10]["piece_id"]]
        acked = stub.AcknowledgePrintBatch(pb.AcknowledgePrintBatchRequest(
            batch_id=batch.batch_id, spoiled_piece_ids=spoiled))
        assert acked.state == pb.PRINT_BATCH_STATE_ACKNOWLEDGED and acked.reprint_batch_id
        again = stub.AcknowledgePrintBatch(pb.AcknowledgePrintBatchRequest(
            batch_id=batch.batch_id, spoiled_piece_ids=list(reversed(spoiled))))
        assert again.reprint_batch_id == acked.reprint_batch_id  # idempotent
        with pytest.raises(grpc.RpcError) as error:
            stub.AcknowledgePrintBatch(pb.AcknowledgePrintBatchRequest(batch_id=batch.batch_id))
        assert error.value.code() == grpc.StatusCode.FAILED_PRECONDITION

        reprint = next(b for b in stub.ListPrintBatches(pb.ListPrintBatchesRequest()).batches
                       if b.batch_id == acked.reprint_batch_id)
        assert reprint.state == pb.PRINT_BATCH_STATE_READY and reprint.pieces == 2
        assert reprint.closed_reason == "reprint"
        newest = max(i.last_sequence for i, _, _ in batches.values()
                     if i.printshop == "demo-print")
        assert reprint.first_sequence > newest  # fresh sequence numbers
        reprint_manifest = json.loads(b"".join(c.data for c in fetch(
            stub, reprint.batch_id, pb.PRINT_BATCH_PART_MANIFEST_JSON)))
        assert [p["document_id"] for p in reprint_manifest["pieces"]] == sorted(
            (p["document_id"] for p in manifest["pieces"] if p["piece_id"] in spoiled),
            key=lambda d: [p["document_id"] for p in reprint_manifest["pieces"]].index(d))
        assert {p["piece_id"] for p in reprint_manifest["pieces"]}.isdisjoint(spoiled)

        # state only moves forward: the acknowledged batch stays acknowledged after a fetch
        fetch(stub, batch.batch_id, pb.PRINT_BATCH_PART_MANIFEST_CSV)
        assert kanal.print_batches.get("nordkort", None, batch.batch_id).state == "acknowledged"


def test_print_shops_are_isolated(kanal, batches):
    """Another print shop's batch answers exactly like an unknown id: NOT_FOUND, same words."""
    demo = next(i for i, _, _ in batches.values() if i.printshop == "demo-print")
    acme = next(i for i, _, _ in batches.values() if i.printshop == "acme-print")
    with printshop(kanal, "nordkort", "printshop:acme-print") as ch:
        stub = printshop_pb2_grpc.PrintShopStub(ch)
        assert not stub.ListPrintBatches(pb.ListPrintBatchesRequest()).batches
        unknown = "01JUNKNOWNBATCH0000000000"
        for batch_id in (demo.batch_id, unknown):
            for call in (lambda b=batch_id: fetch(stub, b),
                         lambda b=batch_id: stub.AcknowledgePrintBatch(
                             pb.AcknowledgePrintBatchRequest(batch_id=b))):
                with pytest.raises(grpc.RpcError) as error:
                    call()
                assert error.value.code() == grpc.StatusCode.NOT_FOUND
                assert error.value.details() == f"no print batch {batch_id!r}"
        with pytest.raises(grpc.RpcError) as error:  # fjord's acme batch: another tenant
            fetch(stub, acme.batch_id)
        assert error.value.code() == grpc.StatusCode.NOT_FOUND
    with printshop(kanal, "fjord", "printshop:acme-print") as ch:
        stub = printshop_pb2_grpc.PrintShopStub(ch)
        listed = {b.batch_id for b in stub.ListPrintBatches(pb.ListPrintBatchesRequest()).batches}
        assert acme.batch_id in listed and demo.batch_id not in listed
    with channel(kanal.address, KEYS["nordkort", "producer"]) as ch:
        with pytest.raises(grpc.RpcError) as error:
            printshop_pb2_grpc.PrintShopStub(ch).ListPrintBatches(pb.ListPrintBatchesRequest())
        assert error.value.code() == grpc.StatusCode.PERMISSION_DENIED


def test_cutoff_closes_a_group_when_asked_with_a_later_clock(kanal, composed, batches):
    service = kanal.print_batches
    assert not service.queue.pending()  # everything was closed on request
    queued_at = datetime.now(UTC)
    source = next(iter(batches.values()))[2]["pieces"][0]
    with service.engine.begin() as conn:
        original = dict(conn.execute(select(print_pieces).where(
            print_pieces.c.piece_id == source["piece_id"])).mappings().one())
    service.queue.enqueue(QueuedPiece(
        document_id="CUTOFF0000000000000000001", tenant="nordkort",
        archive_key=original["archive_key"], pdf_sha256=original["pdf_sha256"],
        pages=original["pages"], envelope="C5", inserts=(), country="NO", postal_code="0150",
    ), queued_at)
    assert service.close_due(queued_at + timedelta(minutes=239)) == []
    closed = service.close_due(queued_at + timedelta(minutes=240))
    assert len(closed) == 1
    assert service.get("nordkort", "demo-print", closed[0]).reason == "cutoff"


def test_kanal_print_cli_lists_closes_and_fetches(kanal, batches, tmp_path, capsys):
    from server.cli import main

    admin = ["print", "--address", kanal.address, "--key", KEYS["nordkort", "admin"]]
    assert main([*admin, "list"]) == 0
    listed = capsys.readouterr().out
    assert all(i.batch_id in listed for i, _, _ in batches.values() if i.tenant == "nordkort")
    assert main([*admin, "close"]) == 0  # nothing open: closes nothing, succeeds
    open_ones = [i.batch_id for i in kanal.print_batches.list("nordkort", "demo-print",
                                                              ["ready", "fetched"])]
    assert len(open_ones) >= 2
    first, second = open_ones[:2]
    shop = ["--address", kanal.address, "--key", KEYS["nordkort", "printshop:demo-print"]]
    # two batches into one folder: each in its own BATCH_ID folder, nothing overwritten
    for batch_id in (first, second):
        assert main(["print", "fetch", batch_id, "--out", str(tmp_path), *shop]) == 0
    for batch_id in (first, second):
        info = kanal.print_batches.get("nordkort", None, batch_id)
        folder = tmp_path / batch_id
        assert (folder / "print.pdf").read_bytes() == kanal.print_batches.read(info, "pdf")
        assert json.loads((folder / "manifest.json").read_text())["batch_id"] == batch_id
        header, *rows = (folder / "manifest.csv").read_text().splitlines()
        assert header.startswith("batch_id,sequence,piece_id,")
        assert rows and all(row.startswith(f"{batch_id},") for row in rows)
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted([first, second])
    capsys.readouterr()

    # acknowledge one with a spoiled piece: it comes back in a reprint batch
    piece = json.loads((tmp_path / first / "manifest.json").read_text())["pieces"][0]
    assert main(["print", "ack", first, "--spoiled", piece["piece_id"], *shop]) == 0
    out = capsys.readouterr().out
    acked = kanal.print_batches.get("nordkort", None, first)
    assert acked.state == "acknowledged" and acked.spoiled == (piece["piece_id"],)
    assert f"{first}  acknowledged; 1 spoiled piece(s) in reprint batch " \
           f"{acked.reprint_batch_id}" in out

    # a print shop with no batches is told so; another shop's batch is unknown to it
    other = ["--address", kanal.address, "--key", KEYS["nordkort", "printshop:acme-print"]]
    assert main(["print", "list", *other]) == 0
    captured = capsys.readouterr()
    assert "pieces=" not in captured.out  # (the in-process server logs to stdout too)
    assert "no print batches for this key" in captured.err
    assert main(["print", "fetch", second, "--out", str(tmp_path / "x"), *other]) == 1
    assert f"kanal print fetch: NOT_FOUND: no print batch {second!r}\n" in capsys.readouterr().err
    assert not (tmp_path / "x").exists()
