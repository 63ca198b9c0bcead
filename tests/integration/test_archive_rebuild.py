"""Losing and rebuilding the index, repairing a crash between object and index write, verifying
stored bytes, re-rendering a copy, and keyset pagination at 200,000 rows with its query plan.
SQLite and PostgreSQL; the objects live in a real embedded SeaweedFS."""

from __future__ import annotations

import json
import urllib.request
from datetime import UTC, datetime, timedelta

import grpc
import pytest
from sqlalchemy import text

from archive.index import DocumentIndex
from archive.keys import customer_prefix
from archive.rebuild import reconcile, reindex, verify
from kanal.v1 import documents_pb2, documents_pb2_grpc
from server.api.errors import field_violations
from server.app import KanalServer
from server.archive_admin import rerender_copy
from server.auth import Caller
from server.channels import Renderers
from server.compose.layouts import LayoutRegistry
from server.config import Settings
from server.errors import InvalidInput, Unavailable
from server.portal import ListQuery, PortalService, Scope
from tests.client import Keys, channel
from tests.integration.server_index import index_url_for

pytestmark = pytest.mark.integration

KEYS = Keys(("nordkort", "producer"))
LAYOUTS = LayoutRegistry()


def _data(customer_id: str = "20184455") -> str:
    data = json.loads((LAYOUTS.get("card-invoice").path / "sample.json").read_text())
    data["customer"]["customer_id"] = customer_id
    return json.dumps(data)


@pytest.fixture(scope="module", params=["sqlite", "postgresql"])
def kanal(request, tmp_path_factory, pg_url):
    state = tmp_path_factory.mktemp(f"rebuild-{request.param}")
    with index_url_for(request.param, pg_url, "kanal_rebuild") as index_url, \
            KanalServer(Settings(listen="127.0.0.1:0", state_dir=state,
                                 api_keys=KEYS.api_keys, index_url=index_url)) as server, \
            channel(server.address, KEYS["nordkort", "producer"]) as ch:
        server.test_compose = documents_pb2_grpc.DocumentsStub(ch).Compose
        first = server.test_compose(documents_pb2.ComposeRequest(
            layout_id="card-invoice", data_json=_data(), idempotency_key="inv-1"))
        server.test_compose(documents_pb2.ComposeRequest(
            layout_id="card-invoice", data_json=_data(),
            corrects_document_id=first.document_id))
        server.test_compose(documents_pb2.ComposeRequest(
            layout_id="card-invoice", data_json=_data("30999111")))
        yield server


def test_drop_the_index_reindex_from_the_bucket_identical(kanal):
    before = list(kanal.index.iter_all())
    assert len(before) >= 3 and any(r.corrects_document_id for r in before)
    kanal.index.drop_schema()
    assert kanal.index.dialect and not _tables_exist(kanal.index)
    report = reindex(kanal.store, kanal.index)
    after = list(kanal.index.iter_all())
    assert after == before, report.summary()
    assert not report.race_losers and not report.incomplete


def _tables_exist(index: DocumentIndex) -> bool:
    from sqlalchemy import inspect
    with index.engine.connect() as conn:
        return "documents" in inspect(conn).get_table_names()


def test_crash_between_object_and_index_write_is_repaired_by_the_reconciler(kanal):
    crashed: list[str] = []

    def crash(document_id: str) -> None:
        crashed.append(document_id)
        raise Unavailable("simulated crash between the object write and the index write")

    kanal.documents.before_index = crash
    # a crashed server leaves no abandoned marker (server.abandoning): one that lives on to
    # answer the call does, and reconcile leaves its document alone (test_faults)
    kanal.documents.abandonments.mark = lambda doc, reason: None
    try:
        with pytest.raises(grpc.RpcError) as info:
            kanal.test_compose(documents_pb2.ComposeRequest(layout_id="card-invoice",
                                                            data_json=_data("40000001")))
        assert info.value.code() == grpc.StatusCode.UNAVAILABLE
    finally:
        kanal.documents.before_index = lambda document_id: None
        del kanal.documents.abandonments.mark
    [orphan] = crashed
    assert kanal.index.get("nordkort", orphan) is None

    # an idempotency race loser: objects for another document id holding "inv-1"
    winner = kanal.index.find_by_idempotency_key("nordkort", "inv-1")
    loser_id = "01LOSER0000000000000000000"
    for output in winner.outputs:
        obj = kanal.store.head(output.key)
        content = kanal.store.get(output.key)
        kanal.store.put(output.key.replace(winner.document_id, loser_id), content,
                        media_type=obj.media_type,
                        metadata={**obj.metadata, "document-id": loser_id},
                        retain_until=obj.retain_until)

    young = reconcile(kanal.store, kanal.index)  # default min_age: too young to touch
    assert f"nordkort/{orphan}" in young.too_young and not young.indexed
    report = reconcile(kanal.store, kanal.index, min_age=timedelta(0))
    assert report.indexed == [f"nordkort/{orphan}"]
    assert report.race_losers == [f"nordkort/{loser_id}"]
    repaired = kanal.index.get("nordkort", orphan)
    assert repaired is not None and repaired.customer_id == "40000001"
    assert kanal.index.get("nordkort", loser_id) is None
    assert kanal.index.find_by_idempotency_key("nordkort", "inv-1").document_id == \
        winner.document_id


def test_a_copy_rerenders_byte_identical_from_the_same_input(kanal):
    record = kanal.index.find_by_idempotency_key("nordkort", "inv-1")
    result = rerender_copy(kanal.layouts, Renderers(), record, _data())
    assert result and all(stored == again for stored, again in result.values()), result
    with pytest.raises(InvalidInput) as info:
        rerender_copy(kanal.layouts, Renderers(), record, _data("99999999"))
    assert info.value.violations[0].field == "data"


def test_verify_reports_a_key_written_over_whose_original_is_read(kanal):
    assert verify(kanal.store, kanal.index).ok
    record = kanal.index.find_by_idempotency_key("nordkort", "inv-1")
    output = record.outputs[0]
    original = kanal.store.get(output.key)
    raw = kanal.store._client
    head = raw.head_object(Bucket=kanal.store.bucket, Key=output.key)
    raw.put_object(Bucket=kanal.store.bucket, Key=output.key, Body=b"tampered",
                   Metadata=head["Metadata"], ContentType=head["ContentType"])
    report = verify(kanal.store, kanal.index)
    assert report.overwritten == [output.key] and not report.ok, report.summary()
    assert not report.mismatched and not report.missing
    sampled = verify(kanal.store, kanal.index, sample=0.5)
    assert sampled.checked <= report.checked

    # QA 2026-12-02: the portal answered DATA_LOSS though Kanal's version was intact
    portal = PortalService(kanal.store, kanal.index, customer_token_secrets={},
                           page_token_secret=b"p" * 32)
    scope = Scope("nordkort", None)
    _, chunks = portal.fetch(scope, record.document_id, output.channel)
    assert b"".join(chunks) == original
    _, url, _ = portal.download_url(scope, record.document_id, output.channel, 60)
    with urllib.request.urlopen(url) as response:
        assert response.read() == original


def test_verify_under_a_prefix_reads_only_those_objects(kanal):
    # was: `kanal archive verify --prefix ...` re-read the whole archive (QA L10)
    other = [o.key for r in kanal.index.iter_all() if r.customer_id == "30999111"
             for o in r.outputs]
    report = verify(kanal.store, kanal.index, prefix=customer_prefix("nordkort", "30999111"))
    assert other and report.checked == len(other) and report.ok, report.summary()
    assert verify(kanal.store, kanal.index, prefix="zzz").checked == 0
    tampered = kanal.index.find_by_idempotency_key("nordkort", "inv-1").outputs[0].key
    kanal.store._client.put_object(Bucket=kanal.store.bucket, Key=tampered, Body=b"tampered")
    assert verify(kanal.store, kanal.index, prefix=tampered).overwritten == [tampered]
    assert verify(kanal.store, kanal.index,
                  prefix=customer_prefix("nordkort", "30999111")).ok


def test_reindex_rebuilds_keys_written_over_or_deleted_from_their_originals(kanal):
    # QA 2026-12-02: a rebuilt index dropped an output whose key someone had written over
    [record] = [r for r in kanal.index.iter_all() if r.customer_id == "30999111"]
    written_over, deleted = record.outputs[0].key, record.outputs[-1].key
    raw, bucket = kanal.store._client, kanal.store.bucket
    raw.put_object(Bucket=bucket, Key=written_over, Body=b"tampered")
    raw.delete_object(Bucket=bucket, Key=deleted)  # a delete marker over the locked version
    kanal.index.drop_schema()
    report = reindex(kanal.store, kanal.index)
    assert kanal.index.get("nordkort", record.document_id) == record, report.summary()
    assert {written_over, deleted} <= set(report.overwritten)
    assert not report.incomplete and not set(report.foreign_keys) & {written_over, deleted}


def test_compose_refuses_an_unknown_corrected_document(kanal):
    with pytest.raises(grpc.RpcError) as info:
        kanal.test_compose(documents_pb2.ComposeRequest(
            layout_id="card-invoice", data_json=_data(), corrects_document_id="01NOPE"))
    assert [f for f, _ in field_violations(info.value)] == ["corrects_document_id"]


# --- pagination at scale ------------------------------------------------------------------

TOTAL, CUSTOMER_ROWS, CUSTOMER = 200_000, 20_000, "cust-big"
BASE = datetime(2024, 1, 1, tzinfo=UTC)


def _rows(start: int, count: int, customer_of) -> list[tuple]:
    """Document rows in column order; pairs of rows share a created_at (ties on purpose)."""
    return [("bulk", f"D{n:025d}", customer_of(n), "invoice" if n % 3 else "statement",
             "card-invoice@1.0.0", "nb-NO", BASE + timedelta(seconds=n // 2), "0" * 64, None,
             "print", None, None, None) for n in range(start, start + count)]


@pytest.fixture(scope="module", params=["sqlite", "postgresql"])
def big_index(request, tmp_path_factory, pg_url, pg_schema):
    if request.param == "sqlite":
        index = DocumentIndex(f"sqlite:///{tmp_path_factory.mktemp('big')}/index.db")
    else:
        index = DocumentIndex(pg_url, schema=f"{pg_schema}_big")
    index.migrate()
    every = TOTAL // CUSTOMER_ROWS
    index.bulk_load(_rows(0, TOTAL, lambda n: CUSTOMER if n % every == 0 else f"c{n % 9973}"))
    with index.engine.begin() as conn:
        if index.dialect == "postgresql":
            conn.execute(text(f'ANALYZE "{pg_schema}_big".documents'))
    yield index
    if index.dialect == "postgresql":
        with index._base_engine.begin() as conn:
            conn.execute(text(f'DROP SCHEMA "{pg_schema}_big" CASCADE'))
    index.close()


def test_paging_20000_of_200000_is_complete_without_duplicates_under_inserts(big_index):
    service = PortalService(None, big_index, customer_token_secrets={},  # type: ignore[arg-type]
                            page_token_secret=b"test" * 8)
    scope = service.scope(Caller("k", "bulk", "service"), ())
    expected = {f"D{n:025d}" for n in range(0, TOTAL, TOTAL // CUSTOMER_ROWS)}
    seen: list[str] = []
    token, pages, extra = "", 0, TOTAL
    while True:
        page = service.list_documents(scope, ListQuery(customer_id=CUSTOMER, page_size=200,
                                                       page_token=token))
        seen += [r.document_id for r in page.documents]
        pages += 1
        if pages % 10 == 0:  # documents arrive meanwhile (newer than everything listed)
            big_index.bulk_load(_rows(extra, 5, lambda n: CUSTOMER))
            extra += 5
        token = page.next_page_token
        if not token:
            break
    assert len(seen) == len(set(seen)) == CUSTOMER_ROWS
    assert set(seen) == expected
    keys = [(big_index.get("bulk", d).created_at, d) for d in seen[:3]]
    assert keys == sorted(keys, reverse=True)


def test_the_listing_query_uses_the_customer_index(big_index):
    """EXPLAIN of the exact listing query: an index scan on ix_documents_customer_created,
    no sort, no sequential scan (PostgreSQL after ANALYZE; SQLite's EXPLAIN QUERY PLAN)."""
    query = big_index.list_query("bulk", CUSTOMER, limit=51,
                                 after=(BASE + timedelta(days=1), "D" + "9" * 25))
    compiled = query.compile(dialect=big_index.engine.dialect)
    with big_index.engine.connect() as conn:
        if big_index.dialect == "postgresql":
            conn.execute(text(f'SET search_path TO "{big_index.schema}"'))
            rows = conn.exec_driver_sql("EXPLAIN " + compiled.string, compiled.params)
            plan = "\n".join(r[0] for r in rows)
            assert "Seq Scan" not in plan and "Sort" not in plan, plan
        else:
            params = tuple(compiled.params[name] for name in compiled.positiontup)
            rows = conn.exec_driver_sql("EXPLAIN QUERY PLAN " + compiled.string, params)
            plan = "\n".join(str(r[-1]) for r in rows)
            assert "USE TEMP B-TREE" not in plan, plan
    assert "ix_documents_customer_created" in plan, plan
