"""End to end over gRPC: a real Kanal server in-process with its embedded SeaweedFS (started
by the same code `kanal serve` uses), called through the generated stubs.

Here: every sample layout composed, archived and verified (PDF text, C5 window, index);
retention, previews, escaping, the plan's reason; idempotent replays; the locale taken from
the data; a Finnish customer's national id on the newest and the pinned 2.0.0 layouts.
Refused input is in test_compose_bad_input.py; keys, roles, the Layouts service, health,
metrics and outages in test_api_access_health_outages.py.
"""

from __future__ import annotations

import hashlib
import json
from datetime import UTC, datetime
from pathlib import Path

import botocore.exceptions
import grpc
import pytest

from archive.store import decode_metadata_value
from kanal.v1 import common_pb2, documents_pb2, documents_pb2_grpc
from server.app import KanalServer
from server.channels.pdf import engine_of
from server.compose.composer import ComposeRequest, compose
from server.compose.formatting import money
from server.compose.model import Channel
from tests.integration.compose_api_fixtures import (
    LAYOUTS,
    call_error,
    count_objects,
    documents_stub,
    print_output,
    s3_client,
    sample,
    start_kanal,
    stub,
)
from tests.pdf_inspect import Box, find_text, normalise, pages_text
from tests.unit.test_national_ids import DEFAULT_VERSION, HELSINKI, WITH_NATIONAL_ID

pytestmark = pytest.mark.integration

# (layout, sample file) for every sample shipped with the layouts that print (the PDF test;
# nps-survey is e-mail and SMS only: tests/integration/test_surveys_api.py)
SAMPLES = [
    (layout.id, sample.name)
    for layout in LAYOUTS.latest() if Channel.PRINT in layout.channels
    for sample in sorted(layout.path.glob("sample*.json"))
]
C5_WINDOW = Box(left=15, top=44, right=15 + 105, bottom=44 + 35)


@pytest.fixture(scope="module")
def kanal(tmp_path_factory: pytest.TempPathFactory):
    yield from start_kanal(tmp_path_factory)


@pytest.fixture(scope="module")
def documents(kanal: KanalServer):
    yield from documents_stub(kanal)


@pytest.fixture(scope="module")
def s3(kanal: KanalServer):
    """A raw S3 client with the server's credentials, to look at the bucket directly."""
    return s3_client(kanal)


def sample_locale(layout_id: str, name: str) -> str:
    """`sample-sv-SE.json` is the Swedish sample; other samples use the default locale."""
    layout = LAYOUTS.get(layout_id)
    suffix = Path(name).stem.removeprefix("sample").removeprefix("-")
    return suffix if suffix in layout.locales else layout.default_locale


# --- every sample layout, end to end --------------------------------------------------------


@pytest.mark.parametrize(("layout_id", "sample_name"), SAMPLES)
def test_compose_archives_verified_pdf(documents, kanal, layout_id, sample_name):
    data = sample(layout_id, sample_name)
    locale = sample_locale(layout_id, sample_name)
    # The print PDF is asked for: a sample's default plan may not print (an SMS-first reminder,
    # a Peppol e-invoice); tests/integration/test_channels_api.py covers the default plans.
    response = documents.Compose(documents_pb2.ComposeRequest(
        tenant="nordkort", layout_id=layout_id, data_json=data, locale=locale,
        channels=[common_pb2.CHANNEL_PRINT]))

    assert response.document_id and response.layout_version == LAYOUTS.get(layout_id).version
    output = print_output(response.outputs)
    assert output.media_type == "application/pdf"
    assert output.content == b""  # not a preview: bytes are in the archive only

    stored = kanal.store.get(output.archive_key)  # verifies the sha256 metadata
    assert hashlib.sha256(stored).hexdigest() == output.sha256
    assert len(stored) == output.size
    text = pages_text(stored)
    assert len(text) == output.pages >= 1
    assert stored.startswith(b"%PDF-")

    # What the PDF must say, taken from the same composition the server built.
    expected = compose(ComposeRequest(
        tenant="nordkort", layout=LAYOUTS.get(layout_id), data=data, document_id="x",
        now=datetime.now(UTC), locale=locale, channels=(Channel.PRINT,)))
    whole = " ".join(text)
    assert normalise(expected.recipient.name) in whole
    if expected.amount_due is not None:
        assert normalise(money(expected.amount_due, expected.currency, expected.locale)) in whole
    if expected.payment_reference is not None and expected.amount_due:
        reference = expected.payment_reference
        assert reference.display in whole or reference.value in whole.replace(" ", "")

    # The address block sits inside the C5 window on page 1 (the name may appear
    # elsewhere on the page too; one occurrence must be the window's).
    address = expected.recipient.address
    for line in (expected.recipient.name, *address.lines, f"{address.postal_code} {address.city}"):
        boxes = find_text(stored, line)
        assert any(box.inside(C5_WINDOW) for box in boxes), (
            f"{line!r} at {boxes} is not inside the C5 window {C5_WINDOW}")

    # The index knows it, with the same facts.
    document = documents.GetDocument(documents_pb2.GetDocumentRequest(
        tenant="nordkort", document_id=response.document_id))
    assert document.customer_id == expected.recipient.customer_id
    assert document.layout_id == layout_id and document.kind == expected.kind.value
    assert sorted(o.sha256 for o in document.outputs) == sorted(o.sha256 for o in response.outputs)
    assert print_output(document.outputs).archive_key == output.archive_key
    assert print_output(document.outputs).pages == output.pages
    # which engine made the PDF, in the response and in the index
    assert output.facts["engine"] == engine_of(LAYOUTS.get(layout_id))
    assert output.facts["engine_version"] and output.facts["pdf_standards"] == "a-3a,ua-1"
    assert dict(print_output(document.outputs).facts) == dict(output.facts)
    for other in response.outputs:  # every planned channel is archived and verifiable
        assert other.archive_key and kanal.store.get(other.archive_key)
    assert document.retain_until.ToDatetime() > datetime.now()


def test_archived_pdf_cannot_be_deleted_before_retention(documents, s3):
    response = documents.Compose(documents_pb2.ComposeRequest(
        tenant="nordkort", layout_id="welcome-letter", data_json=sample("welcome-letter")))
    client, bucket = s3
    key = print_output(response.outputs).archive_key
    version = client.head_object(Bucket=bucket, Key=key)["VersionId"]
    assert client.get_object_retention(Bucket=bucket, Key=key)["Retention"]["Mode"] == "COMPLIANCE"
    with pytest.raises(botocore.exceptions.ClientError):
        client.delete_object(Bucket=bucket, Key=key, VersionId=version)
    assert client.head_object(Bucket=bucket, Key=key, VersionId=version)["ContentLength"] > 0


def test_preview_returns_bytes_and_stores_nothing(documents, s3):
    before = count_objects(s3)
    response = documents.Compose(documents_pb2.ComposeRequest(
        tenant="nordkort", layout_id="card-invoice", data_json=sample("card-invoice"),
        preview=True))
    output = print_output(response.outputs)
    assert output.content.startswith(b"%PDF-") and output.archive_key == ""
    assert len(output.content) == output.size
    assert count_objects(s3) == before
    error = call_error(documents.GetDocument, documents_pb2.GetDocumentRequest(
        tenant="nordkort", document_id=response.document_id))
    assert error.code() == grpc.StatusCode.NOT_FOUND


def test_html_in_data_is_escaped_not_interpreted(documents):
    data = json.loads(sample("welcome-letter"))
    data["customer"]["name"] = "<b>Kari</b> <img src='http://127.0.0.1:9/x'>"
    response = documents.Compose(documents_pb2.ComposeRequest(
        tenant="nordkort", layout_id="welcome-letter", data_json=json.dumps(data), preview=True))
    text = " ".join(pages_text(print_output(response.outputs).content))
    assert "<b>Kari</b>" in text


def test_get_document_and_a_replay_return_the_plans_reason(documents, kanal):
    """The plan rule that chose the channels (e.g. "paper-preference") is kept with the
    document: GetDocument, an idempotent replay and the index say what Compose said."""
    data = json.loads(sample("card-invoice"))
    data["customer"]["preferences"] = ["paper"]
    request = documents_pb2.ComposeRequest(
        tenant="nordkort", layout_id="card-invoice", data_json=json.dumps(data),
        idempotency_key="plan-reason-1")
    composed = documents.Compose(request)
    assert composed.plan.reason.startswith("paper-preference")
    document = documents.GetDocument(documents_pb2.GetDocumentRequest(
        document_id=composed.document_id))
    assert document.plan.reason == composed.plan.reason
    assert list(document.plan.channels) == list(composed.plan.channels)
    replayed = documents.Compose(request)
    assert replayed.replayed and replayed.plan.reason == composed.plan.reason
    record = kanal.index.get("nordkort", composed.document_id)
    assert record.plan_reason == composed.plan.reason


# --- idempotency -----------------------------------------------------------------------------


def test_same_key_same_data_returns_the_same_document(documents, s3):
    request = documents_pb2.ComposeRequest(
        tenant="nordkort", layout_id="card-invoice", data_json=sample("card-invoice"),
        idempotency_key="inv-2026-11-000123")
    first = documents.Compose(request)
    objects = count_objects(s3)
    # Same data, different key order and whitespace: the same request.
    reordered = dict(reversed(json.loads(sample("card-invoice")).items()))
    request.data_json = json.dumps(reordered, indent=4)
    second = documents.Compose(request)
    assert second.replayed and not first.replayed
    assert second.document_id == first.document_id
    assert [o.sha256 for o in second.outputs] == [o.sha256 for o in first.outputs]
    assert [o.archive_key for o in second.outputs] == [o.archive_key for o in first.outputs]
    assert count_objects(s3) == objects  # no second object


def test_same_key_different_data_is_refused(documents):
    data = json.loads(sample("welcome-letter"))
    documents.Compose(documents_pb2.ComposeRequest(
        tenant="nordkort", layout_id="welcome-letter", data_json=json.dumps(data),
        idempotency_key="welcome-42"))
    data["customer"]["name"] = "Someone Else"
    error = call_error(documents.Compose, documents_pb2.ComposeRequest(
        tenant="nordkort", layout_id="welcome-letter", data_json=json.dumps(data),
        idempotency_key="welcome-42"))
    assert error.code() == grpc.StatusCode.ALREADY_EXISTS
    assert "welcome-42" in error.details() and "locale, channels or data" in error.details()


def test_same_key_naming_another_layout_version_is_refused(documents):
    """A key first used without a version (the newest, 2.2.0) and then sent again naming
    1.0.0 asks for another document: ALREADY_EXISTS, not the 2.2.0 one replayed. Naming
    the version the first call got, or none, replays it."""
    data = sample("card-invoice")
    first = documents.Compose(documents_pb2.ComposeRequest(
        tenant="nordkort", layout_id="card-invoice", data_json=data,
        idempotency_key="inv-version-7"))
    assert first.layout_version == "2.2.0"
    error = call_error(documents.Compose, documents_pb2.ComposeRequest(
        tenant="nordkort", layout_id="card-invoice", layout_version="1.0.0", data_json=data,
        idempotency_key="inv-version-7"))
    assert error.code() == grpc.StatusCode.ALREADY_EXISTS
    assert "card-invoice@2.2.0" in error.details()
    for version in ("2.2.0", ""):
        again = documents.Compose(documents_pb2.ComposeRequest(
            tenant="nordkort", layout_id="card-invoice", layout_version=version,
            data_json=data, idempotency_key="inv-version-7"))
        assert again.replayed and again.document_id == first.document_id


def test_idempotency_keys_are_per_tenant(documents, kanal):
    request = documents_pb2.ComposeRequest(
        layout_id="welcome-letter", data_json=sample("welcome-letter"), idempotency_key="shared")
    a = documents.Compose(request)
    with stub(kanal, "other") as ch:
        b = documents_pb2_grpc.DocumentsStub(ch).Compose(request)
    assert a.document_id != b.document_id and not b.replayed


# --- the locale follows the data ------------------------------------------------------------


def test_a_swedish_document_without_locale_is_swedish_and_says_why(kanal, documents, s3):
    data = sample("card-invoice", "sample-sv-SE.json")
    request = documents_pb2.ComposeRequest(
        tenant="nordkort", layout_id="card-invoice", data_json=data,
        channels=[common_pb2.CHANNEL_PRINT], idempotency_key="locale-from-data-1")
    response = documents.Compose(request)
    assert response.locale == "sv-SE"
    assert response.locale_source == documents_pb2.LOCALE_SOURCE_LAYOUT_RULE
    assert response.locale_reason == "$.currency = SEK -> SE"

    slip = pages_text(kanal.store.get(print_output(response.outputs).archive_key))[-1]
    assert "OCR-NUMMER" in slip and "TILL BANKGIRONUMMER" in slip and "KID" not in slip

    document = documents.GetDocument(documents_pb2.GetDocumentRequest(
        document_id=response.document_id))
    assert (document.locale, document.locale_source, document.locale_reason) == (
        "sv-SE", documents_pb2.LOCALE_SOURCE_LAYOUT_RULE, "$.currency = SEK -> SE")
    record = kanal.index.get("nordkort", response.document_id)
    assert (record.locale, record.locale_decision) == ("sv-SE", "rule: $.currency = SEK -> SE")
    client, bucket = s3
    head = client.head_object(Bucket=bucket, Key=print_output(response.outputs).archive_key)
    assert decode_metadata_value(head["Metadata"]["locale-decision"]) == (
        "rule: $.currency = SEK -> SE")

    # A retry without a locale matches the first request's fingerprint: the same document.
    replay = documents.Compose(request)
    assert replay.replayed and replay.document_id == response.document_id
    assert (replay.locale, replay.locale_source) == ("sv-SE", response.locale_source)


def test_the_request_locale_is_recorded_as_the_requests(documents):
    response = documents.Compose(documents_pb2.ComposeRequest(
        tenant="nordkort", layout_id="card-invoice", data_json=sample("card-invoice"),
        locale="nb-NO", channels=[common_pb2.CHANNEL_PRINT], preview=True))
    assert (response.locale, response.locale_source) == (
        "nb-NO", documents_pb2.LOCALE_SOURCE_REQUEST)


# --- a Finnish national id ------------------------------------------------------------------


def finnish(layout_id: str, national_id: str) -> str:
    data = json.loads(sample(layout_id))
    customer = data["customer"]
    customer.update(national_id=national_id, address=HELSINKI, name="Aino Virtanen")
    for norwegian in ("org_number", "vat_id"):  # the b2b sample's buyer: a company in Oslo
        customer.pop(norwegian, None)
    return json.dumps(data)


@pytest.mark.parametrize("layout_id", WITH_NATIONAL_ID)
def test_a_finnish_customer_is_printed_on_the_default_version(documents, layout_id):
    # A henkilötunnus with a letter for century sign or check character: the newest version
    # (2.1.0, b2b-invoice's 2.8.0 with 2.1.0's schema) of every layout with a national id
    # takes it, python-stdnum checks it. Pinned to 2.0.0, whose schema pattern refused it,
    # the call is refused as before (a layout version is immutable once used). The
    # composer's cases: tests/unit/test_national_ids.py
    for national_id in ("010100A123D", "131052-308T"):
        response = documents.Compose(documents_pb2.ComposeRequest(
            tenant="nordkort", layout_id=layout_id, data_json=finnish(layout_id, national_id),
            channels=[common_pb2.CHANNEL_PRINT], preview=True))
        assert response.layout_version == DEFAULT_VERSION[layout_id]
        pdf = print_output(response.outputs).content
        assert pdf.startswith(b"%PDF-") and "Aino Virtanen" in "".join(pages_text(pdf))

    pinned = call_error(documents.Compose, documents_pb2.ComposeRequest(
        tenant="nordkort", layout_id=layout_id, layout_version="2.0.0",
        data_json=finnish(layout_id, "010100A123D"), channels=[common_pb2.CHANNEL_PRINT],
        preview=True))
    assert pinned.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert "$.customer.national_id" in pinned.details()
