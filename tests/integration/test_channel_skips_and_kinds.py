"""Issue 11 end to end over gRPC (a real KanalServer, embedded SeaweedFS, SQLite index):

- item 3: the card invoice of `Łucja Wałęsa-Żółkiewska` (default plan: paper preference and
  SMS consent) is printed and archived; her SMS fits (2.0.0). On the frozen 1.0.0 layout,
  which declares no way to fit, the SMS is skipped and the reason is in the Compose
  response, GetDocument, the index and the objects' metadata (so a rebuilt index keeps it).
- item 9: a b2b-invoice credit note is `credit_note` in GetDocument, the index, the portal's
  kind filter, its retention and the tenant's insert rules.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime

import grpc
import pytest

from archive.rebuild import record_from_objects
from kanal.v1 import common_pb2, documents_pb2, documents_pb2_grpc, portal_pb2, portal_pb2_grpc
from server.app import KanalServer
from server.compose.layouts import LayoutRegistry
from server.config import Settings
from tests.client import Keys, channel
from tests.integration.delivery_fixtures import queued_pieces

pytestmark = pytest.mark.integration

LAYOUTS = LayoutRegistry()
KEYS = Keys(("nordkort", "producer"), ("nordkort", "service"))
LUCJA = "Łucja Wałęsa-Żółkiewska"
PRINT, SMS = common_pb2.CHANNEL_PRINT, common_pb2.CHANNEL_SMS
# Norway keeps credit notes 6 years here, invoices the built-in 5: retention follows the kind.
RETENTION = {"country": {"NO": {"credit_note": 6}}}
PRINTING = {
    "inserts": {"invoice-terms-2027": {"feeder": 1}},
    "rules": [{"tenant": "nordkort", "id": "terms-with-invoices", "when": {"kind": "invoice"},
               "insert": "invoice-terms-2027"}],
}


@pytest.fixture(scope="module")
def kanal(tmp_path_factory: pytest.TempPathFactory):
    settings = Settings(listen="127.0.0.1:0", state_dir=tmp_path_factory.mktemp("issue11"),
                        api_keys=KEYS.api_keys, render_workers=0, retention=RETENTION,
                        printing=PRINTING)
    with KanalServer(settings) as server:
        yield server


@pytest.fixture(scope="module")
def stubs(kanal: KanalServer):
    with channel(kanal.address, KEYS["nordkort", "producer"]) as producer, \
            channel(kanal.address, KEYS["nordkort", "service"]) as service:
        yield (documents_pb2_grpc.DocumentsStub(producer), portal_pb2_grpc.PortalStub(service))


def data(layout_id: str, sample: str = "sample.json", version: str | None = None,
         **customer) -> str:
    document = json.loads((LAYOUTS.get(layout_id, version).path / sample).read_text())
    document["customer"].update(customer)
    document["customer"] = {k: v for k, v in document["customer"].items() if v is not None}
    return json.dumps(document)


def compose(stubs, layout_id: str, data_json: str, version: str = "") -> object:
    documents, _ = stubs
    return documents.Compose(documents_pb2.ComposeRequest(
        layout_id=layout_id, layout_version=version, data_json=data_json))


# --- item 3 --------------------------------------------------------------------------------


def test_lucja_is_printed_and_her_sms_fits(stubs, kanal) -> None:
    response = compose(stubs, "card-invoice", data("card-invoice", name=LUCJA))
    assert list(response.plan.channels) == [PRINT, SMS] and not response.plan.skipped
    by_channel = {o.channel: o for o in response.outputs}
    assert by_channel[PRINT].pages >= 1 and by_channel[PRINT].archive_key
    sms = by_channel[SMS]
    assert (sms.facts["segments"], sms.facts["encoding"]) == ("1", "GSM-7")
    assert sms.facts["adapted"] == "transliterated"
    body = kanal.store.get(sms.archive_key).decode()
    assert body.startswith("Hei Lucja Walesa-Zolkiewska! Fakturaen din fra Fjordbank ASA")


def test_on_the_frozen_layout_the_sms_is_skipped_with_its_reason_everywhere(stubs, kanal):
    response = compose(stubs, "card-invoice",
                       data("card-invoice", version="1.0.0", name=LUCJA), version="1.0.0")
    # the document the customer is owed: printed and archived
    assert [o.channel for o in response.outputs] == [PRINT]
    assert response.outputs[0].archive_key and response.outputs[0].pages >= 1
    # the response says what was skipped and why
    assert list(response.plan.channels) == [PRINT]
    [skipped] = response.plan.skipped
    assert skipped.channel == SMS and skipped.field == "sms.max_segments"
    assert "2 segments" in skipped.reason and "allows 1" in skipped.reason
    # GetDocument, from the index
    documents, _ = stubs
    record = documents.GetDocument(
        documents_pb2.GetDocumentRequest(document_id=response.document_id))
    assert list(record.plan.skipped) == [skipped]
    indexed = kanal.index.get("nordkort", response.document_id)
    assert [(s.channel, s.field) for s in indexed.skipped_channels] == [
        ("sms", "sms.max_segments")]
    # the objects' metadata: an index rebuilt from the archive alone keeps the reason
    stored = kanal.store.head(response.outputs[0].archive_key)
    assert record_from_objects([stored]).skipped_channels == indexed.skipped_channels


def test_a_requested_sms_that_cannot_fit_is_the_callers_error(stubs) -> None:
    documents, _ = stubs
    with pytest.raises(grpc.RpcError) as info:
        documents.Compose(documents_pb2.ComposeRequest(
            layout_id="card-invoice", layout_version="1.0.0",
            data_json=data("card-invoice", version="1.0.0", name=LUCJA),
            channels=[SMS]))
    assert info.value.code() is grpc.StatusCode.INVALID_ARGUMENT
    assert "sms.max_segments" in info.value.details()


# --- item 9 --------------------------------------------------------------------------------


def test_a_credit_note_is_a_credit_note_everywhere(stubs, kanal) -> None:
    documents, portal = stubs
    paper = {"preferences": ["paper_invoice"], "peppol_id": None}  # both printed
    note = compose(stubs, "b2b-invoice", data("b2b-invoice", "sample-credit-note.json", **paper))
    invoice = compose(stubs, "b2b-invoice", data("b2b-invoice", customer_id="B-100517", **paper))
    got = documents.GetDocument(documents_pb2.GetDocumentRequest(document_id=note.document_id))
    assert got.kind == "credit_note"
    assert documents.GetDocument(documents_pb2.GetDocumentRequest(
        document_id=invoice.document_id)).kind == "invoice"
    assert kanal.index.get("nordkort", note.document_id).kind == "credit_note"

    def listed(kinds):
        return [d.document_id for d in portal.ListDocuments(
            portal_pb2.ListDocumentsRequest(customer_id="B-100517", kinds=kinds)).documents]
    assert listed(["credit_note"]) == [note.document_id]
    assert listed(["invoice"]) == [invoice.document_id]

    # retention by kind: credit notes 6 years in Norway here, invoices 5
    year = note.created_at.ToDatetime(tzinfo=UTC).year
    assert got.retain_until.ToDatetime(tzinfo=UTC) == datetime(year + 7, 1, 1, tzinfo=UTC)
    invoice_record = kanal.index.get("nordkort", invoice.document_id)
    assert invoice_record.retain_until == datetime(year + 6, 1, 1, tzinfo=UTC)

    # the tenant's insert rule for invoices does not put its leaflet into credit notes
    queued_pieces(kanal.index.engine, [invoice.document_id, note.document_id], 2)
    pieces = {p["document_id"]: p["inserts"] for p in kanal.print_queue.pending("nordkort")}
    assert pieces[invoice.document_id] == "invoice-terms-2027"
    assert pieces[note.document_id] == ""
