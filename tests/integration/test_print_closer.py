"""Print batches close in the server's background, never inside a call.

QA: `ListPrintBatches` built the due batches inside the list call, so after 1,500 invoices
a print shop's `kanal print list --timeout 5` got no answer in time and the next one took
25.5 s (two batches closed with reason=size inside it); `print_batches` stayed empty after a
1,000-document job until someone listed or closed. Now the server's closer
(server.printing.closer) closes full groups and groups past their cut-off by itself, builds
a batch a crash left ``closing``, and listing only reads. On PostgreSQL, servers closing
and building at once put every piece in exactly one batch and build a batch once.

A real server (embedded SeaweedFS, SQLite index, batch size 4, the closer looking every
0.2 s) with one composed letter; the queue holds more pieces reusing its archived PDF
under fresh piece ids (the queue's own `enqueue`, as tests/integration/print_batch_fixtures
does), so no test renders more than one document.
"""

from __future__ import annotations

import json
import secrets
import threading
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import insert, select, update

from archive.index import DocumentIndex
from kanal.v1 import common_pb2, documents_pb2, documents_pb2_grpc, printshop_pb2_grpc
from kanal.v1 import printshop_pb2 as pb
from server.app import KanalServer
from server.config import Settings
from server.printing.batches import BatchService
from server.printing.queue import (
    PrintQueue,
    PrintSettings,
    QueuedPiece,
    print_batches,
    print_pieces,
)
from tests.client import Keys, channel
from tests.integration.delivery_fixtures import queued_pieces, wait_for

pytestmark = pytest.mark.integration

LAYOUTS = Path(__file__).resolve().parents[2] / "layouts"
KEYS = Keys(("nordkort", "producer"), ("nordkort", "admin"),
            ("nordkort", "printshop:demo-print"))
BATCH_SIZE = 4
PRINTING = {"batch_size": BATCH_SIZE, "cutoff_minutes": 240, "close_poll_seconds": 0.2}


@pytest.fixture(scope="module")
def kanal(tmp_path_factory: pytest.TempPathFactory):
    state = tmp_path_factory.mktemp("kanal-print-closer")
    layouts = state / "layouts"
    layouts.mkdir()
    for name in ("_shared", "welcome-letter"):
        (layouts / name).symlink_to(LAYOUTS / name)
    with KanalServer(Settings(listen="127.0.0.1:0", state_dir=state, api_keys=KEYS.api_keys,
                              layouts_dir=layouts, printing=PRINTING)) as server:
        yield server


@pytest.fixture(scope="module")
def letter(kanal: KanalServer) -> dict:
    """The print piece of one composed welcome letter (its archived PDF is reused)."""
    data = (LAYOUTS / "welcome-letter" / "1.0.0" / "sample.json").read_text(encoding="utf-8")
    with channel(kanal.address, KEYS["nordkort", "producer"]) as ch:
        response = documents_pb2_grpc.DocumentsStub(ch).Compose(documents_pb2.ComposeRequest(
            tenant="nordkort", layout_id="welcome-letter", data_json=data,
            channels=[common_pb2.CHANNEL_PRINT], idempotency_key="closer-letter"))
    queued_pieces(kanal.index.engine, [response.document_id], 1)
    with kanal.index.engine.begin() as conn:
        return dict(conn.execute(select(print_pieces).where(
            print_pieces.c.document_id == response.document_id)).mappings().one())


def enqueue(queue: PrintQueue, letter: dict, tenant: str, count: int, queued_at: datetime,
            prefix: str = "") -> list[str]:
    """`count` pieces of `tenant` reusing the letter's PDF -> their piece ids."""
    prefix = prefix or secrets.token_hex(4)
    return [queue.enqueue(QueuedPiece(
        document_id=f"{prefix}-{tenant}-{n:04d}", tenant=tenant,
        archive_key=letter["archive_key"], pdf_sha256=letter["pdf_sha256"],
        pages=letter["pages"], envelope=letter["envelope"], inserts=(), country="NO",
        postal_code=f"{150 + n:04d}"), queued_at + timedelta(microseconds=n))
        for n in range(count)]


def leave_closing(engine, batch_id: str, tenant: str, letter: dict, piece_ids: list[str],
                  first_sequence: int) -> None:
    """What a server that died between claiming and building leaves: the pieces claimed,
    the batch row ``closing``, no files."""
    with engine.begin() as conn:
        sheets = sum(conn.execute(select(print_pieces.c.sheets).where(
            print_pieces.c.piece_id.in_(piece_ids))).scalars())
        conn.execute(update(print_pieces).where(print_pieces.c.piece_id.in_(piece_ids))
                     .values(batch_id=batch_id))
        conn.execute(insert(print_batches).values(
            batch_id=batch_id, tenant=tenant, printshop="demo-print", profile="default",
            envelope=letter["envelope"], inserts="", state="closing", reason="size",
            closed_at=datetime.now(UTC), pieces=len(piece_ids), sheets=sheets, pages=0,
            first_sequence=first_sequence, last_sequence=first_sequence + sheets - 1,
            files="{}"))


def batches_of(engine, tenant: str) -> dict[str, dict]:
    with engine.begin() as conn:
        return {r["batch_id"]: dict(r) for r in conn.execute(
            select(print_batches).where(print_batches.c.tenant == tenant)).mappings()}


def pieces_of(engine, piece_ids: list[str]) -> dict[str, str | None]:
    """piece id -> the batch it is in (None: waiting)."""
    with engine.begin() as conn:
        return dict(conn.execute(select(print_pieces.c.piece_id, print_pieces.c.batch_id)
                                 .where(print_pieces.c.piece_id.in_(piece_ids))).all())


def test_the_server_closes_full_groups_by_itself(kanal, letter):
    """10 pieces with a batch size of 4: two batches by size within seconds, no call."""
    engine = kanal.index.engine
    ids = enqueue(kanal.print_queue, letter, "closer-size", 10, datetime.now(UTC))

    ready = wait_for(lambda: (lambda b: b if len(b) == 2 and all(
        x["state"] == "ready" for x in b.values()) else None)(
        batches_of(engine, "closer-size")), "two ready batches", timeout=60,
        explain=lambda: batches_of(engine, "closer-size"))
    assert {b["reason"] for b in ready.values()} == {"size"}
    assert [b["pieces"] for b in ready.values()] == [BATCH_SIZE, BATCH_SIZE]
    placed = pieces_of(engine, ids)
    assert {p for p, b in placed.items() if b is None} == set(ids[8:])  # the 2 newest wait
    for batch_id, batch in ready.items():  # each piece in one batch, the one that counts it
        assert sum(b == batch_id for b in placed.values()) == batch["pieces"]
        manifest = json.loads(kanal.print_batches.read(
            kanal.print_batches.get("closer-size", None, batch_id), "manifest_json"))
        assert sorted(p["piece_id"] for p in manifest["pieces"]) == sorted(
            p for p, b in placed.items() if b == batch_id)
    ranges = sorted((b["first_sequence"], b["last_sequence"]) for b in ready.values())
    assert ranges[0][1] + 1 == ranges[1][0]  # sheet sequences continue, never overlap


def test_a_batch_a_crash_left_closing_is_built_by_the_closer(kanal, letter):
    """Pieces claimed and the batch row written, then the server died before the files:
    the closer builds it, as the list call used to."""
    engine = kanal.index.engine
    service = kanal.print_batches
    ids = enqueue(kanal.print_queue, letter, "closer-crash", 2, datetime.now(UTC))
    leave_closing(engine, "CRASHED00000000000000000001", "closer-crash", letter, ids,
                  first_sequence=10**6)

    built = wait_for(lambda: (lambda b: b if b and b["state"] == "ready" else None)(
        batches_of(engine, "closer-crash").get("CRASHED00000000000000000001")),
        "the interrupted batch built", timeout=60)
    assert built["pieces"] == 2 and set(json.loads(built["files"])) == {
        "pdf", "manifest_json", "manifest_csv"}
    info = service.get("closer-crash", None, "CRASHED00000000000000000001")
    assert {p["piece_id"] for p in json.loads(service.read(info, "manifest_json"))["pieces"]
            } == set(ids)


def test_listing_only_reads_and_close_stays_the_operators(kanal, letter):
    """With the closer stopped (as while a server stops), groups due by size and by cut-off
    stay open through a list call, which answers within a print shop's deadline; `close`
    then closes them on request."""
    kanal.print_closer.stop()
    engine = kanal.index.engine
    old = datetime.now(UTC) - timedelta(hours=5)  # past the 240-minute cut-off too
    ids = enqueue(kanal.print_queue, letter, "nordkort", 9, old)
    before = batches_of(engine, "nordkort")

    with channel(kanal.address, KEYS["nordkort", "printshop:demo-print"]) as ch:
        started = time.monotonic()
        listed = printshop_pb2_grpc.PrintShopStub(ch).ListPrintBatches(
            pb.ListPrintBatchesRequest(), timeout=5).batches
        took = time.monotonic() - started
    assert batches_of(engine, "nordkort") == before  # nothing closed, nothing built
    assert set(pieces_of(engine, ids).values()) == {None}
    assert {b.batch_id for b in listed} == {
        i for i, b in before.items() if b["state"] != "closing"}
    assert took < 5

    with channel(kanal.address, KEYS["nordkort", "admin"]) as ch:
        closed = printshop_pb2_grpc.PrintShopStub(ch).ClosePrintBatches(
            pb.ClosePrintBatchesRequest(), timeout=60).batch_ids
    placed = pieces_of(engine, ids)
    assert None not in placed.values() and set(placed.values()) <= set(closed)
    after = batches_of(engine, "nordkort")
    assert {after[b]["reason"] for b in closed} == {"request"}


def test_servers_on_one_postgresql_close_every_piece_once(kanal, letter, pg_url, pg_schema):
    """Three closers of two "servers" (own engines) at once, on 30 pieces with a batch size
    of 4 and a batch a crash left closing: every piece lands in exactly one batch, the
    sheet sequences never overlap, and the interrupted batch is built by one of them."""
    tenant = f"pg-{secrets.token_hex(4)}"
    settings = PrintSettings.from_dict({"batch_size": BATCH_SIZE})
    indexes = [DocumentIndex(pg_url, schema=pg_schema) for _ in range(2)]
    queues = [PrintQueue(index, settings) for index in indexes]
    indexes[0].create_schema()  # the schema itself, then the queue's tables in it
    queues[0].create_schema()
    services = [BatchService(queue, kanal.store) for queue in queues]
    now = datetime.now(UTC)
    crashed = enqueue(queues[0], letter, tenant, 3, now - timedelta(hours=1), "crash")
    crashed_id = f"CRASH{secrets.token_hex(10).upper()}"
    leave_closing(indexes[0].engine, crashed_id, tenant, letter, crashed, 10**6)
    ids = enqueue(queues[0], letter, tenant, 30, now)

    results: list[list[str]] = []
    errors: list[BaseException] = []
    start = threading.Barrier(3)

    def run(call) -> None:
        try:
            start.wait()
            results.append(call())
        except BaseException as exc:  # noqa: BLE001 - reported below
            errors.append(exc)

    threads = [threading.Thread(target=run, args=(call,)) for call in (
        lambda: services[0].close_due(now), lambda: services[1].close_due(now),
        lambda: services[1].close_due(now))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(120)
    assert not errors, errors
    assert sum(r.count(crashed_id) for r in results) == 1  # built once

    # what a lost race left is closed by the next round, as the closer's would
    while services[0].close_due(now):
        pass
    engine = indexes[0].engine
    placed = pieces_of(engine, ids)
    batches = batches_of(engine, tenant)
    assert all(b["state"] == "ready" for b in batches.values())
    assert sum(b is None for b in placed.values()) == 30 % BATCH_SIZE  # the newest 2 wait
    assert sorted(p for p, b in placed.items() if b is None) == sorted(ids)[-2:]
    counted = {i: b["pieces"] for i, b in batches.items() if i != crashed_id}
    assert sum(counted.values()) == 28 and set(counted.values()) == {BATCH_SIZE}
    for batch_id, pieces in counted.items():
        assert sum(b == batch_id for b in placed.values()) == pieces
    ranges = sorted((b["first_sequence"], b["last_sequence"]) for b in batches.values())
    assert all(a[1] < b[0] for a, b in zip(ranges, ranges[1:], strict=False))
    for index in indexes:
        index.close()
