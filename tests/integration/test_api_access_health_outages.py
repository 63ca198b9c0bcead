"""Around Compose, over gRPC on a real Kanal server in-process with its embedded SeaweedFS:
who may call (API keys, roles, tenants), the Layouts service, health and the metrics the
README lists, and what a caller sees when S3 or the index fail (UNAVAILABLE, nothing
half-indexed, a retry with the same idempotency key completes the document) or the print
queue does (its delivery is retried).
"""

from __future__ import annotations

import json

import boto3
import botocore.exceptions
import grpc
import pytest
from sqlalchemy import create_engine, text

from kanal.v1 import common_pb2, documents_pb2, documents_pb2_grpc, layouts_pb2, layouts_pb2_grpc
from server.app import KanalServer
from server.config import Settings
from tests.client import channel
from tests.integration.compose_api_fixtures import (
    KEYS,
    call_error,
    documents_stub,
    sample,
    start_kanal,
    stub,
)

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def kanal(tmp_path_factory: pytest.TempPathFactory):
    yield from start_kanal(tmp_path_factory)


@pytest.fixture(scope="module")
def documents(kanal: KanalServer):
    yield from documents_stub(kanal)


# --- health and metrics ----------------------------------------------------------------------


def test_health_reports_every_api_service(kanal):
    """The README: every API service is reported. A Check for each answers SERVING."""
    from grpc_health.v1 import health_pb2, health_pb2_grpc

    from server.grpc_server import SERVICE_NAMES

    with grpc.insecure_channel(kanal.address) as ch:
        health = health_pb2_grpc.HealthStub(ch)
        for name in (*SERVICE_NAMES, ""):
            answer = health.Check(health_pb2.HealthCheckRequest(service=name), timeout=5)
            assert answer.status == health_pb2.HealthCheckResponse.SERVING, name
        assert "kanal.v1.Deliveries" in SERVICE_NAMES


def _readme_metrics() -> set[str]:
    """Every metric name the README documents (`..._x` after a kanal_delivery_ name)."""
    import re
    from pathlib import Path

    readme = (Path(__file__).resolve().parents[2] / "README.md").read_text()
    names = set(re.findall(r"`((?:kanal|grpc_server)_[a-z_]+)`", readme))
    names |= {f"kanal_delivery_{tail}" for tail in re.findall(r"`\.\.\._([a-z_]+)`", readme)}
    return names


def test_every_metric_the_readme_lists_is_exported_and_failed_deliveries_count(
        documents, kanal):
    """Deliveries failed for want of a provider are counted in kanal_delivery_failed_total
    (provider "none"), and a scrape shows every metric the README names."""
    import urllib.request

    from prometheus_client import REGISTRY

    labels = {"provider": "none", "state": "failed"}
    before = REGISTRY.get_sample_value("kanal_delivery_failed_total", labels) or 0
    composed = documents.Compose(documents_pb2.ComposeRequest(
        tenant="nordkort", layout_id="card-invoice", data_json=sample("card-invoice")))
    deliveries = documents.GetDocument(documents_pb2.GetDocumentRequest(
        document_id=composed.document_id)).deliveries
    failed = [d for d in deliveries if not d.provider]
    assert failed, "the embedded defaults have no SMS/e-mail provider"
    after = REGISTRY.get_sample_value("kanal_delivery_failed_total", labels)
    assert after == before + len(failed)

    names = _readme_metrics()
    assert {"kanal_delivery_failed_total", "kanal_jobs", "kanal_documents_rendered_total"} <= names
    text = urllib.request.urlopen(kanal.metrics.url, timeout=10).read().decode()
    exported = {line.split()[2] for line in text.splitlines() if line.startswith("# TYPE ")}
    exported |= {f"{n}_total" for n in exported} | {f"{n}_info" for n in exported}
    assert sorted(names - exported) == []


# --- keys, roles, layouts -------------------------------------------------------------------


def test_a_serving_server_has_frozen_its_heap(kanal):
    """Its modules, layouts, clients and pools are frozen (server.app, server.processes):
    full collections of the garbage collector no longer walk them with the GIL held."""
    import gc

    import server.app

    # set only by the serving server's _settle_heap_once, which froze the heap then
    assert server.app._heap_settled and gc.get_freeze_count() > 0


def test_calls_without_a_valid_key_are_unauthenticated(kanal):
    request = documents_pb2.ComposeRequest(layout_id="welcome-letter",
                                           data_json=sample("welcome-letter"))
    for key in (None, "kanal_not-a-key"):
        with channel(kanal.address, key) as ch:
            error = call_error(documents_pb2_grpc.DocumentsStub(ch).Compose, request)
        assert error.code() == grpc.StatusCode.UNAUTHENTICATED, key


def test_roles_and_tenants_are_enforced(kanal, documents):
    request = documents_pb2.ComposeRequest(layout_id="welcome-letter",
                                           data_json=sample("welcome-letter"))
    with stub(kanal, "nordkort", "portal") as ch:  # a portal may not compose
        error = call_error(documents_pb2_grpc.DocumentsStub(ch).Compose, request)
    assert error.code() == grpc.StatusCode.PERMISSION_DENIED
    request.tenant = "other"  # a producer composes for its own tenant only
    assert call_error(documents.Compose, request).code() == grpc.StatusCode.PERMISSION_DENIED

    request.tenant = ""
    mine = documents.Compose(request)
    lookup = documents_pb2.GetDocumentRequest(document_id=mine.document_id)
    with stub(kanal, "nordkort", "service") as ch:  # customer service of the same tenant
        assert documents_pb2_grpc.DocumentsStub(ch).GetDocument(lookup).tenant == "nordkort"
    with stub(kanal, "other", "service") as ch:  # another tenant: as if it did not exist
        error = call_error(documents_pb2_grpc.DocumentsStub(ch).GetDocument, lookup)
    assert error.code() == grpc.StatusCode.NOT_FOUND
    lookup.tenant = "other"
    assert call_error(documents.GetDocument, lookup).code() == grpc.StatusCode.NOT_FOUND


def test_layouts_service_lists_and_describes(kanal):
    with stub(kanal, "nordkort", "portal") as ch:
        layouts = layouts_pb2_grpc.LayoutsStub(ch)
        listed = {x.id for x in layouts.ListLayouts(layouts_pb2.ListLayoutsRequest()).layouts}
        assert {"card-invoice", "payment-reminder", "welcome-letter"} <= listed
        layout = layouts.GetLayout(layouts_pb2.GetLayoutRequest(layout_id="card-invoice"))
        assert layout.kind == "invoice" and "nb-NO" in layout.locales
        assert json.loads(layout.schema_json)["type"] == "object"
        assert json.loads(layout.sample_json)["customer"]["name"]
        with pytest.raises(grpc.RpcError) as info:
            layouts.GetLayout(layouts_pb2.GetLayoutRequest(layout_id="nope"))
        assert info.value.code() == grpc.StatusCode.NOT_FOUND


# --- outages ---------------------------------------------------------------------------------


def test_s3_outage_is_unavailable_and_indexes_nothing(tmp_path):
    settings = Settings(listen="127.0.0.1:0", state_dir=tmp_path, api_keys=KEYS.api_keys)
    with KanalServer(settings) as server, stub(server) as ch:
        documents = documents_pb2_grpc.DocumentsStub(ch)
        server.embedded_s3.stop()  # the S3 endpoint goes away under a running server
        error = call_error(documents.Compose, documents_pb2.ComposeRequest(
            tenant="nordkort", layout_id="welcome-letter", data_json=sample("welcome-letter")))
        assert error.code() == grpc.StatusCode.UNAVAILABLE
        engine = create_engine(settings.resolved_index_url)
        with engine.connect() as db:
            assert db.execute(text("select count(*) from documents")).scalar() == 0
            assert db.execute(text("select count(*) from outputs")).scalar() == 0


def test_index_outage_is_unavailable(tmp_path, kanal):
    # PostgreSQL index on a port nobody listens on: the server must not start half-working.
    settings = Settings(listen="127.0.0.1:0", state_dir=tmp_path,
                        index_url="postgresql+psycopg://postgres@127.0.0.1:9/test")
    from archive.errors import ArchiveUnavailable
    with pytest.raises(ArchiveUnavailable):
        KanalServer(settings).start()


def test_raw_s3_client_needs_the_servers_credentials(kanal):
    client = boto3.client("s3", endpoint_url=kanal.embedded_s3.endpoint_url,
                          aws_access_key_id="intruder", aws_secret_access_key="wrong-secret",
                          region_name="us-east-1")
    with pytest.raises(botocore.exceptions.ClientError):
        client.list_objects_v2(Bucket=kanal.store.bucket)


def test_a_print_queue_outage_delays_the_piece_and_loses_nothing(kanal, documents,
                                                                  monkeypatch):
    """A printed document's piece is queued by its print delivery, once the send-time rules
    let it go (server.delivery.providers.printing). When the print queue fails at that
    moment, Compose has already succeeded (the document and its delivery commit together);
    the delivery is retried, and the retry queues the piece exactly once."""
    from datetime import UTC, datetime

    from sqlalchemy import update
    from sqlalchemy.exc import OperationalError

    from kanal.v1 import deliveries_pb2
    from server.delivery.tables import deliveries
    from server.printing.queue import PrintQueue, print_pieces
    from tests.integration.delivery_fixtures import find_delivery, queued_pieces, wait_for

    real_enqueue = PrintQueue.enqueue
    attempts: list[str] = []

    def down_once(queue, piece, now):
        attempts.append(piece.document_id)
        if len(attempts) == 1:
            raise OperationalError("INSERT INTO print_pieces", {}, Exception("database down"))
        return real_enqueue(queue, piece, now)

    monkeypatch.setattr(PrintQueue, "enqueue", down_once)
    document_id = documents.Compose(documents_pb2.ComposeRequest(
        layout_id="welcome-letter", data_json=sample("welcome-letter"),
        channels=[common_pb2.CHANNEL_PRINT], idempotency_key="print-outage-1")).document_id
    assert kanal.index.find_by_idempotency_key("nordkort", "print-outage-1") is not None
    retrying = wait_for(lambda: (d := find_delivery(documents, document_id,
                                                    common_pb2.CHANNEL_PRINT))
                        and "database down" in d.reason and d, "the failed attempt")
    assert retrying.state == deliveries_pb2.DELIVERY_STATE_QUEUED and retrying.attempts == 1
    with kanal.index.engine.begin() as db:  # as if its back-off had passed
        db.execute(update(deliveries).where(deliveries.c.delivery_id == retrying.delivery_id)
                   .values(next_attempt_at=datetime.now(UTC)))
    kanal.delivery.notify()
    queued_pieces(kanal.index.engine, [document_id], 1)
    sent = wait_for(lambda: find_delivery(documents, document_id, common_pb2.CHANNEL_PRINT,
                                          deliveries_pb2.DELIVERY_STATE_SENT), "the retry")
    assert sent.attempts == 2 and attempts == [document_id, document_id]
    with kanal.index.engine.connect() as db:
        assert len(db.execute(print_pieces.select().where(
            print_pieces.c.document_id == document_id)).fetchall()) == 1
