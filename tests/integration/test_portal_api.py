"""The Portal and ArchiveAdmin APIs end to end: a real KanalServer (embedded SeaweedFS) with its
index on SQLite and on PostgreSQL, called over gRPC with per-role keys and customer tokens."""

from __future__ import annotations

import hashlib
import json
import time
import urllib.error
import urllib.request
from contextlib import ExitStack

import botocore.exceptions
import grpc
import pytest
from sqlalchemy import event

from kanal.v1 import (
    common_pb2,
    documents_pb2,
    documents_pb2_grpc,
    portal_pb2,
    portal_pb2_grpc,
)
from server import tokens
from server.api.errors import field_violations
from server.app import KanalServer
from server.compose.layouts import LayoutRegistry
from server.config import Settings
from server.portal import CUSTOMER_TOKEN_HEADER, issue_customer_token
from tests.client import Keys, channel
from tests.integration.server_index import index_url_for

pytestmark = pytest.mark.integration

KEYS = Keys(("nordkort", "producer"), ("nordkort", "service"), ("nordkort", "portal"),
            ("nordkort", "admin"), ("other", "service"), ("other", "portal"),
            ("other", "admin"))
SECRETS = {"nordkort": "nordkort-portal-secret-of-32-bytes-or-more",
           "other": "other-portal-secret-of-32-bytes-or-more"}
LAYOUTS = LayoutRegistry()
CUSTOMER_A = "20184455"  # the card-invoice sample's customer
CUSTOMER_B = "30999111"


@pytest.fixture(scope="module", params=["sqlite", "postgresql"])
def kanal(request, tmp_path_factory, pg_url):
    state = tmp_path_factory.mktemp(f"portal-{request.param}")
    with index_url_for(request.param, pg_url, "kanal_portal") as index_url, \
            KanalServer(Settings(listen="127.0.0.1:0", state_dir=state,
                                 api_keys=KEYS.api_keys, index_url=index_url,
                                 portal={"customer_token_secrets": SECRETS})) as server:
        yield server


def _data(customer_id: str) -> str:
    data = json.loads((LAYOUTS.get("card-invoice").path / "sample.json").read_text())
    data["customer"]["customer_id"] = customer_id
    return json.dumps(data)


@pytest.fixture(scope="module")
def docs(kanal):
    """A1, A2 (corrects A1) for customer A; B1 for customer B; all of tenant nordkort."""
    with channel(kanal.address, KEYS["nordkort", "producer"]) as ch:
        compose = documents_pb2_grpc.DocumentsStub(ch).Compose
        a1 = compose(documents_pb2.ComposeRequest(layout_id="card-invoice",
                                                  data_json=_data(CUSTOMER_A)))
        a2 = compose(documents_pb2.ComposeRequest(layout_id="card-invoice",
                                                  data_json=_data(CUSTOMER_A),
                                                  corrects_document_id=a1.document_id))
        b1 = compose(documents_pb2.ComposeRequest(layout_id="card-invoice",
                                                  data_json=_data(CUSTOMER_B)))
    return {"a1": a1, "a2": a2, "b1": b1}


_CHANNELS: dict[tuple[str, str, str], grpc.Channel] = {}


@pytest.fixture(scope="module", autouse=True)
def _close_channels():
    with ExitStack() as stack:
        _CHANNELS.clear()
        _CHANNELS["stack"] = stack  # type: ignore[assignment]
        yield
        _CHANNELS.clear()


def _channel(kanal, tenant: str, role: str) -> grpc.Channel:
    """One open channel per (server, tenant, role), closed when the module ends."""
    key = (kanal.address, tenant, role)
    if key not in _CHANNELS:
        _CHANNELS[key] = _CHANNELS["stack"].enter_context(  # type: ignore[union-attr]
            channel(kanal.address, KEYS[tenant, role]))
    return _CHANNELS[key]


def print_output(response) -> common_pb2.Output:
    [output] = [o for o in response.outputs if o.channel == common_pb2.CHANNEL_PRINT]
    return output


def portal(kanal, tenant="nordkort", role="service", customer=None, token=None):
    """A Portal stub for (tenant, role); a portal role sends a customer token."""
    ch = _channel(kanal, tenant, role)
    metadata = ()
    if token is None and customer is not None:
        token = issue_customer_token(SECRETS[tenant], tenant, customer)
    if token is not None:
        metadata = ((CUSTOMER_TOKEN_HEADER, token),)
    return portal_pb2_grpc.PortalStub(ch), metadata


def code_of(fn, request, metadata=()) -> grpc.StatusCode:
    with pytest.raises(grpc.RpcError) as info:
        result = fn(request, metadata=metadata)
        if hasattr(result, "__iter__") and not hasattr(result, "SerializeToString"):
            list(result)
    return info.value.code()


def test_service_lists_a_customer_newest_first_with_the_correction_chain(kanal, docs):
    stub, _ = portal(kanal)
    listing = stub.ListDocuments(portal_pb2.ListDocumentsRequest(customer_id=CUSTOMER_A))
    ids = [d.document_id for d in listing.documents]
    assert ids == [docs["a2"].document_id, docs["a1"].document_id]
    newest, oldest = listing.documents
    assert newest.corrects_document_id == docs["a1"].document_id
    assert list(oldest.corrected_by_document_ids) == [docs["a2"].document_id]
    assert newest.layout_id == "card-invoice" and newest.kind == "invoice"
    assert not listing.next_page_token

    filtered = stub.ListDocuments(portal_pb2.ListDocumentsRequest(
        customer_id=CUSTOMER_A, kinds=["letter"]))
    assert not filtered.documents
    by_channel = stub.ListDocuments(portal_pb2.ListDocumentsRequest(
        customer_id=CUSTOMER_A, channels=[common_pb2.CHANNEL_PRINT], layout_id="card-invoice",
        created_from=docs["a2"].created_at))
    assert [d.document_id for d in by_channel.documents] == [docs["a2"].document_id]
    assert not stub.ListDocuments(portal_pb2.ListDocumentsRequest(
        customer_id=CUSTOMER_A, channels=[common_pb2.CHANNEL_EINVOICE])).documents

    got = stub.GetDocument(portal_pb2.PortalGetDocumentRequest(document_id=docs["a1"].document_id))
    assert list(got.corrected_by_document_ids) == [docs["a2"].document_id]


def _statements_naming(values: set[str]):
    """A `before_cursor_execute` listener and the list it fills: the statements that read the
    deliveries table with one of `values` among their parameters (a dispatcher's own reads
    in the background name no document)."""
    seen: list[str] = []

    def before(conn, cursor, statement, parameters, context, executemany):
        flat = parameters.values() if isinstance(parameters, dict) else parameters or ()
        if "FROM deliveries" in statement and values & {str(p) for p in flat}:
            seen.append(statement)

    return seen, before


def test_a_listing_shows_each_documents_deliveries_read_in_one_statement(kanal, docs):
    # QA: ListDocuments left `deliveries` empty (GetDocument filled it), so a portal or a
    # customer-service screen needed one call per document to show how each reached the
    # customer
    stub, _ = portal(kanal)
    ids = {docs["a1"].document_id, docs["a2"].document_id}
    seen, before = _statements_naming(ids)
    event.listen(kanal.delivery.store.engine, "before_cursor_execute", before)
    try:
        listing = stub.ListDocuments(portal_pb2.ListDocumentsRequest(customer_id=CUSTOMER_A))
    finally:
        event.remove(kanal.delivery.store.engine, "before_cursor_execute", before)
    assert {d.document_id for d in listing.documents} == ids
    assert len(seen) == 1, seen  # the page's deliveries in one read, not one per document
    customer, md = portal(kanal, role="portal", customer=CUSTOMER_A)
    as_customer = customer.ListDocuments(portal_pb2.ListDocumentsRequest(), metadata=md)
    for listed, listed_by_customer in zip(listing.documents, as_customer.documents,
                                          strict=True):
        got = stub.GetDocument(portal_pb2.PortalGetDocumentRequest(
            document_id=listed.document_id))
        assert got.deliveries, "the sample's plan delivers by print at least"
        expected = []
        for d in got.deliveries:  # the listing's are GetDocument's, without their events
            d.ClearField("events")
            expected.append(d)
        assert list(listed.deliveries) == expected
        assert list(listed_by_customer.deliveries) == expected
        assert {d.document_id for d in listed.deliveries} == {listed.document_id}
        assert common_pb2.CHANNEL_PRINT in {d.channel for d in listed.deliveries}


def test_an_unknown_kind_is_invalid_argument(kanal, docs):
    stub, _ = portal(kanal)
    with pytest.raises(grpc.RpcError) as info:
        stub.ListDocuments(portal_pb2.ListDocumentsRequest(customer_id=CUSTOMER_A,
                                                           kinds=["bogus"]))
    assert info.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert "kinds[0]" in info.value.details() and "invoice" in info.value.details()


def test_page_tokens_page_through_and_refuse_tampering(kanal, docs):
    stub, _ = portal(kanal)
    first = stub.ListDocuments(portal_pb2.ListDocumentsRequest(customer_id=CUSTOMER_A,
                                                               page_size=1))
    assert [d.document_id for d in first.documents] == [docs["a2"].document_id]
    second = stub.ListDocuments(portal_pb2.ListDocumentsRequest(
        customer_id=CUSTOMER_A, page_size=1, page_token=first.next_page_token))
    assert [d.document_id for d in second.documents] == [docs["a1"].document_id]

    body, _, mac = first.next_page_token.partition(".")
    forged = body[:-2] + ("AA" if body[-2:] != "AA" else "BB") + "." + mac
    for token, customer in ((forged, CUSTOMER_A), (first.next_page_token, CUSTOMER_B),
                            ("garbage", CUSTOMER_A)):
        with pytest.raises(grpc.RpcError) as info:
            stub.ListDocuments(portal_pb2.ListDocumentsRequest(
                customer_id=customer, page_size=1, page_token=token))
        assert info.value.code() == grpc.StatusCode.INVALID_ARGUMENT
        assert [f for f, _ in field_violations(info.value)] == ["page_token"]


def test_portal_caller_sees_only_its_tokens_customer(kanal, docs):
    stub, md = portal(kanal, role="portal", customer=CUSTOMER_A)
    listing = stub.ListDocuments(portal_pb2.ListDocumentsRequest(), metadata=md)
    assert {d.customer_id for d in listing.documents} == {CUSTOMER_A}
    a1, b1 = docs["a1"].document_id, docs["b1"].document_id
    assert stub.GetDocument(portal_pb2.PortalGetDocumentRequest(document_id=a1),
                            metadata=md).document_id == a1

    # another customer's ids: NOT_FOUND on every RPC
    probes = [
        (stub.ListDocuments, portal_pb2.ListDocumentsRequest(customer_id=CUSTOMER_B)),
        (stub.GetDocument, portal_pb2.PortalGetDocumentRequest(document_id=b1)),
        (stub.FetchDocument, portal_pb2.FetchDocumentRequest(document_id=b1)),
        (stub.GetDownloadUrl, portal_pb2.GetDownloadUrlRequest(document_id=b1)),
    ]
    for fn, request in probes:
        assert code_of(fn, request, md) == grpc.StatusCode.NOT_FOUND, fn

    # no token, a token of another tenant's secret, an expired one: UNAUTHENTICATED
    wrong = issue_customer_token(SECRETS["other"], "nordkort", CUSTOMER_A)
    expired = issue_customer_token(SECRETS["nordkort"], "nordkort", CUSTOMER_A,
                                   ttl_seconds=60, now=time.time() - 3600)
    for token in (None, wrong, expired, "x.y"):
        metadata = ((CUSTOMER_TOKEN_HEADER, token),) if token else ()
        assert code_of(stub.ListDocuments, portal_pb2.ListDocumentsRequest(),
                       metadata) == grpc.StatusCode.UNAUTHENTICATED

    # a token naming no customer says so (it was refused as "not for this tenant")
    nobody = tokens.encode(SECRETS["nordkort"], {"tenant": "nordkort"}, 60)
    with pytest.raises(grpc.RpcError) as refused:
        stub.ListDocuments(portal_pb2.ListDocumentsRequest(),
                           metadata=((CUSTOMER_TOKEN_HEADER, nobody),))
    assert refused.value.code() == grpc.StatusCode.UNAUTHENTICATED
    assert "no customer id ('sub' claim)" in refused.value.details()

    # two API keys: which one counts would be a guess, so neither does
    twice = (*md, ("authorization", f"Bearer {KEYS['nordkort', 'portal']}"))
    with pytest.raises(grpc.RpcError) as refused:
        stub.ListDocuments(portal_pb2.ListDocumentsRequest(), metadata=twice)
    assert refused.value.code() == grpc.StatusCode.UNAUTHENTICATED
    assert "2 'authorization' metadata entries" in refused.value.details()


def test_a_customer_does_not_see_the_hash_of_the_banks_input(kanal, docs):
    # was: the portal listing showed the customer input_sha256, the bank's business
    a1 = docs["a1"].document_id
    customer, md = portal(kanal, role="portal", customer=CUSTOMER_A)
    listing = customer.ListDocuments(portal_pb2.ListDocumentsRequest(), metadata=md)
    got = customer.GetDocument(portal_pb2.PortalGetDocumentRequest(document_id=a1), metadata=md)
    for document in (*listing.documents, got):
        assert document.input_sha256 == "" and document.document_id

    expected = documents_pb2_grpc.DocumentsStub(_channel(kanal, "nordkort", "service")
                                                ).GetDocument(
        documents_pb2.GetDocumentRequest(document_id=a1)).input_sha256
    assert len(expected) == 64  # operators keep it
    for role in ("service", "admin"):
        operator, _ = portal(kanal, role=role)
        listed = operator.ListDocuments(portal_pb2.ListDocumentsRequest(customer_id=CUSTOMER_A))
        assert {d.document_id: d.input_sha256 for d in listed.documents}[a1] == expected
        assert operator.GetDocument(portal_pb2.PortalGetDocumentRequest(
            document_id=a1)).input_sha256 == expected


def test_a_customer_without_documents_lists_empty(kanal, docs):
    # QA T10: was NOT_FOUND ("no customer"); a new customer's portal shows an empty archive
    new = "40111222"
    for role, customer in (("service", None), ("portal", new), ("admin", None)):
        stub, md = portal(kanal, role=role, customer=customer)
        listing = stub.ListDocuments(portal_pb2.ListDocumentsRequest(customer_id=new),
                                     metadata=md)
        assert (list(listing.documents), listing.next_page_token) == ([], ""), role


def test_other_tenant_gets_not_found_everywhere(kanal, docs):
    a1 = docs["a1"].document_id
    for role, customer in (("service", None), ("portal", CUSTOMER_A)):
        stub, md = portal(kanal, tenant="other", role=role, customer=customer)
        # its listing of customer A is the empty one of a customer it does not have
        assert not stub.ListDocuments(portal_pb2.ListDocumentsRequest(customer_id=CUSTOMER_A),
                                      metadata=md).documents
        probes = [
            (stub.GetDocument, portal_pb2.PortalGetDocumentRequest(document_id=a1)),
            (stub.FetchDocument, portal_pb2.FetchDocumentRequest(document_id=a1)),
            (stub.GetDownloadUrl, portal_pb2.GetDownloadUrlRequest(document_id=a1)),
        ]
        for fn, request in probes:
            assert code_of(fn, request, md) == grpc.StatusCode.NOT_FOUND, (role, fn)
    with channel(kanal.address, KEYS["other", "admin"]) as ch:
        admin = portal_pb2_grpc.ArchiveAdminStub(ch)
        assert code_of(admin.SetLegalHold, portal_pb2.SetLegalHoldRequest(
            document_id=a1, on=True)) == grpc.StatusCode.NOT_FOUND


def test_fetch_streams_verified_bytes_and_serves_kanals_version_of_a_forged_key(kanal, docs):
    stub, _ = portal(kanal)
    a1 = docs["a1"]
    chunks = list(stub.FetchDocument(portal_pb2.FetchDocumentRequest(
        document_id=a1.document_id)))
    content = b"".join(c.data for c in chunks)
    assert chunks[0].sha256 == print_output(a1).sha256 == hashlib.sha256(content).hexdigest()
    assert content.startswith(b"%PDF-") and chunks[0].media_type == "application/pdf"

    # a forged new version under the same key, carrying the original sha256 header: the
    # customer still gets what Kanal archived, the key's first version (archive.versions;
    # QA 2026-12-02: DATA_LOSS, though the locked original was intact)
    b1 = print_output(docs["b1"])
    archived = b"".join(c.data for c in stub.FetchDocument(portal_pb2.FetchDocumentRequest(
        document_id=docs["b1"].document_id)))
    raw = kanal.store._client
    head = raw.head_object(Bucket=kanal.store.bucket, Key=b1.archive_key)
    raw.put_object(Bucket=kanal.store.bucket, Key=b1.archive_key, Body=b"%PDF-1.7 forged",
                   Metadata=head["Metadata"], ContentType="application/pdf")
    fetched = b"".join(c.data for c in stub.FetchDocument(portal_pb2.FetchDocumentRequest(
        document_id=docs["b1"].document_id)))
    assert fetched == archived and hashlib.sha256(fetched).hexdigest() == b1.sha256
    url = stub.GetDownloadUrl(portal_pb2.GetDownloadUrlRequest(
        document_id=docs["b1"].document_id, expires_seconds=60))
    with urllib.request.urlopen(url.url, timeout=10) as response:
        assert response.read() == archived


def test_presigned_url_downloads_the_bytes_then_expires(kanal, docs):
    stub, _ = portal(kanal)
    a1 = docs["a1"]
    url = stub.GetDownloadUrl(portal_pb2.GetDownloadUrlRequest(
        document_id=a1.document_id, expires_seconds=2))
    with urllib.request.urlopen(url.url, timeout=10) as response:
        assert hashlib.sha256(response.read()).hexdigest() == url.sha256 == print_output(a1).sha256
    deadline = time.monotonic() + 30
    while True:  # poll until the URL stops working (bounded)
        try:
            with urllib.request.urlopen(url.url, timeout=10) as response:
                response.read()
        except urllib.error.HTTPError as exc:
            assert exc.code == 403
            break
        assert time.monotonic() < deadline, "presigned URL still works 30 s after its expiry"
        time.sleep(0.25)
    assert time.time() >= url.expires_at.seconds - 1
    assert code_of(stub.GetDownloadUrl, portal_pb2.GetDownloadUrlRequest(
        document_id=a1.document_id, expires_seconds=3600)) == grpc.StatusCode.INVALID_ARGUMENT


def test_legal_hold_set_and_released_by_an_admin(kanal, docs):
    a2 = docs["a2"]
    with channel(kanal.address, KEYS["nordkort", "admin"]) as ch:
        admin = portal_pb2_grpc.ArchiveAdminStub(ch)
        held = admin.SetLegalHold(portal_pb2.SetLegalHoldRequest(document_id=a2.document_id,
                                                                 on=True))
        keys = sorted(o.archive_key for o in a2.outputs)
        assert held.on and sorted(held.held_keys) == keys
        key = print_output(a2).archive_key
        assert kanal.store.head(key).legal_hold
        raw = kanal.store._client
        version = raw.head_object(Bucket=kanal.store.bucket, Key=key)["VersionId"]
        with pytest.raises(botocore.exceptions.ClientError):
            raw.delete_object(Bucket=kanal.store.bucket, Key=key, VersionId=version)
        released = admin.SetLegalHold(portal_pb2.SetLegalHoldRequest(
            document_id=a2.document_id, on=False))
        assert not released.on
        assert not admin.GetLegalHold(portal_pb2.GetLegalHoldRequest(
            document_id=a2.document_id)).on
    with channel(kanal.address, KEYS["nordkort", "service"]) as ch:
        assert code_of(portal_pb2_grpc.ArchiveAdminStub(ch).SetLegalHold,
                       portal_pb2.SetLegalHoldRequest(document_id=a2.document_id, on=True)
                       ) == grpc.StatusCode.PERMISSION_DENIED


def test_unknown_or_foreign_correction_is_refused_naming_the_field(kanal, docs):
    with channel(kanal.address, KEYS["nordkort", "producer"]) as ch:
        compose = documents_pb2_grpc.DocumentsStub(ch).Compose
        for target in ("01JUNKNOWNDOCUMENT0000000", docs["b1"].document_id):
            with pytest.raises(grpc.RpcError) as info:
                compose(documents_pb2.ComposeRequest(layout_id="card-invoice",
                                                     data_json=_data(CUSTOMER_A),
                                                     corrects_document_id=target))
            assert info.value.code() == grpc.StatusCode.INVALID_ARGUMENT
            assert [f for f, _ in field_violations(info.value)] == ["corrects_document_id"]


def test_a_correction_made_with_another_layout_is_refused(kanal, docs):
    # QA: a payment reminder "corrected" a card invoice, and replaced it in the portal
    reminder = json.loads((LAYOUTS.get("payment-reminder").path / "sample.json").read_text())
    reminder["customer"]["customer_id"] = CUSTOMER_A
    with (channel(kanal.address, KEYS["nordkort", "producer"]) as ch,
          pytest.raises(grpc.RpcError) as info):
        documents_pb2_grpc.DocumentsStub(ch).Compose(documents_pb2.ComposeRequest(
            layout_id="payment-reminder", data_json=json.dumps(reminder),
            corrects_document_id=docs["a1"].document_id))
    assert info.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert field_violations(info.value) == [(
        "corrects_document_id",
        f"document {docs['a1'].document_id} is a card-invoice document; its correction "
        "replaces it, so it must be a card-invoice too, not a payment-reminder")]
