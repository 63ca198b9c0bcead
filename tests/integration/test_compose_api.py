"""End to end over gRPC: a real Kanal server in-process with its embedded SeaweedFS (started
by the same code `kanal serve` uses), called through the generated stubs."""

from __future__ import annotations

import hashlib
import json
from datetime import UTC, datetime
from pathlib import Path

import boto3
import botocore.exceptions
import grpc
import pytest
from sqlalchemy import create_engine, text

from archive.store import decode_metadata_value
from kanal.v1 import common_pb2, documents_pb2, documents_pb2_grpc, layouts_pb2, layouts_pb2_grpc
from server.api.errors import field_violations
from server.app import KanalServer
from server.channels.pdf import engine_of
from server.compose.composer import ComposeRequest, compose
from server.compose.formatting import money
from server.compose.layouts import LayoutRegistry
from server.compose.model import Channel
from server.config import Settings
from server.credentials import embedded_credentials
from tests.client import Keys, channel
from tests.pdf_inspect import Box, find_text, normalise, pages_text

pytestmark = pytest.mark.integration

LAYOUTS = LayoutRegistry()
# (layout, sample file) for every sample shipped with the layouts that print (the PDF test;
# nps-survey is e-mail and SMS only: tests/integration/test_surveys_api.py)
SAMPLES = [
    (layout.id, sample.name)
    for layout in LAYOUTS.latest() if Channel.PRINT in layout.channels
    for sample in sorted(layout.path.glob("sample*.json"))
]
C5_WINDOW = Box(left=15, top=44, right=15 + 105, bottom=44 + 35)
KEYS = Keys(("nordkort", "producer"), ("nordkort", "service"), ("nordkort", "portal"),
            ("other", "producer"), ("other", "service"))


@pytest.fixture(scope="module")
def kanal(tmp_path_factory: pytest.TempPathFactory):
    state = tmp_path_factory.mktemp("kanal-state")
    with KanalServer(Settings(listen="127.0.0.1:0", state_dir=state, api_keys=KEYS.api_keys,
                              max_data_bytes=512 * 1024)) as server:
        yield server


def stub(kanal: KanalServer, tenant: str = "nordkort", role: str = "producer"):
    return channel(kanal.address, KEYS[tenant, role] if role else None)


@pytest.fixture(scope="module")
def documents(kanal: KanalServer):
    with stub(kanal) as ch:
        yield documents_pb2_grpc.DocumentsStub(ch)


@pytest.fixture(scope="module")
def s3(kanal: KanalServer):
    """A raw S3 client with the server's credentials, to look at the bucket directly."""
    access_key, secret_key = embedded_credentials(kanal.settings.state_dir)
    client = boto3.client("s3", endpoint_url=kanal.store.endpoint_url, region_name="us-east-1",
                          aws_access_key_id=access_key, aws_secret_access_key=secret_key)
    return client, kanal.store.bucket


def sample(layout_id: str, name: str = "sample.json") -> str:
    return (LAYOUTS.get(layout_id).path / name).read_text(encoding="utf-8")


def sample_locale(layout_id: str, name: str) -> str:
    """`sample-sv-SE.json` is the Swedish sample; other samples use the default locale."""
    layout = LAYOUTS.get(layout_id)
    suffix = Path(name).stem.removeprefix("sample").removeprefix("-")
    return suffix if suffix in layout.locales else layout.default_locale


def print_output(outputs):
    """The print PDF among a document's outputs (the plan may add email, SMS, e-invoice)."""
    [output] = [o for o in outputs if o.channel == common_pb2.CHANNEL_PRINT]
    return output


def call_error(fn, request) -> grpc.RpcError:
    with pytest.raises(grpc.RpcError) as info:
        fn(request)
    return info.value


def count_objects(s3) -> int:
    client, bucket = s3
    return sum(page.get("KeyCount", 0)
               for page in client.get_paginator("list_objects_v2").paginate(Bucket=bucket))


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
    """A key first used without a version (the newest, 2.0.0) and then sent again naming
    1.0.0 asks for another document: ALREADY_EXISTS, not the 2.0.0 one replayed. Naming
    the version the first call got, or none, replays it."""
    data = sample("card-invoice")
    first = documents.Compose(documents_pb2.ComposeRequest(
        tenant="nordkort", layout_id="card-invoice", data_json=data,
        idempotency_key="inv-version-7"))
    assert first.layout_version == "2.0.0"
    error = call_error(documents.Compose, documents_pb2.ComposeRequest(
        tenant="nordkort", layout_id="card-invoice", layout_version="1.0.0", data_json=data,
        idempotency_key="inv-version-7"))
    assert error.code() == grpc.StatusCode.ALREADY_EXISTS
    assert "card-invoice@2.0.0" in error.details()
    for version in ("2.0.0", ""):
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


# --- bad input -------------------------------------------------------------------------------


def test_unknown_layout_and_version_are_not_found(documents):
    for layout_id, version in (("no-such-layout", ""), ("card-invoice", "9.9.9")):
        error = call_error(documents.Compose, documents_pb2.ComposeRequest(
            layout_id=layout_id, layout_version=version, data_json="{}"))
        assert error.code() == grpc.StatusCode.NOT_FOUND, error.details()
        assert (version or layout_id) in error.details()


def test_malformed_json_names_the_position(documents):
    error = call_error(documents.Compose, documents_pb2.ComposeRequest(
        layout_id="card-invoice", data_json='{"customer": {"name": "Kari",}'))
    assert error.code() == grpc.StatusCode.INVALID_ARGUMENT
    [(field, description)] = field_violations(error)
    assert field == "data" and "line 1 column" in description


def test_json_that_is_not_an_object_is_refused_at_its_root_path(documents):
    for data_json, kind in (("[1, 2]", "an array"), ('"x"', "a string")):
        error = call_error(documents.Compose, documents_pb2.ComposeRequest(
            layout_id="card-invoice", data_json=data_json))
        assert error.code() == grpc.StatusCode.INVALID_ARGUMENT
        assert field_violations(error) == [("$", f"must be a JSON object, not {kind}")]


def test_every_schema_violation_is_listed_with_its_path(documents):
    data = json.loads(sample("card-invoice"))
    del data["customer"]["name"]
    data["transactions"][2]["amount"] = "12,50"
    data["invoice"]["due_date"] = 20261215
    error = call_error(documents.Compose, documents_pb2.ComposeRequest(
        layout_id="card-invoice", data_json=json.dumps(data)))
    assert error.code() == grpc.StatusCode.INVALID_ARGUMENT
    fields = [f for f, _ in field_violations(error)]
    assert "$.customer" in fields
    assert "$.transactions[2].amount" in fields
    assert "$.invoice.due_date" in fields


@pytest.mark.parametrize(("change", "field"), [
    (lambda d: d.__setitem__("currency", "XYZ"), "currency"),
    (lambda d: d.__setitem__("payment", {"reference": "1234567893"}), "$.payment.reference"),
    (lambda d: d["invoice"].__setitem__("payments_received", "-5.00"), "payments_received"),
    (lambda d: d["invoice"].__setitem__("due_date", "2026-02-30"), "due_date"),
])
def test_impossible_values_are_refused_with_their_field(documents, change, field):
    data = json.loads(sample("card-invoice"))
    change(data)  # unknown currency, wrong KID check digit (MOD10 gives 7), negative, no date
    error = call_error(documents.Compose, documents_pb2.ComposeRequest(
        layout_id="card-invoice", data_json=json.dumps(data)))
    assert error.code() == grpc.StatusCode.INVALID_ARGUMENT, error.details()
    assert any(field in f for f, _ in field_violations(error)), field_violations(error)


def test_control_character_is_invalid_argument_with_its_path(documents):
    # issue 12: a U+000B in any text made every renderer raise and the API answer INTERNAL
    data = json.loads(sample("card-invoice"))
    data["customer"]["name"] = "Kari\x0bNordmann"
    error = call_error(documents.Compose, documents_pb2.ComposeRequest(
        layout_id="card-invoice", data_json=json.dumps(data)))
    assert error.code() == grpc.StatusCode.INVALID_ARGUMENT, error.details()
    [(field, description)] = field_violations(error)
    assert field == "$.customer.name" and "U+000B" in description


@pytest.mark.parametrize(("layout_id", "change", "field", "why"), [
    ("payment-reminder", lambda d: d["reminder"].update(date="2026-01-10"), "$.reminder.date",
     "2026-01-10 is not after the invoice's due date 2026-01-26"),
    ("card-invoice", lambda d: d["transactions"][0].update(amount="0.005"),
     "$.transactions[0].amount", "NOK has 2 decimals; 0.005 has 3"),
    ("card-invoice", lambda d: d["customer"].update(name="\u202eRLO override gnirts\u202c"),
     "$.customer.name", "U+202E RIGHT-TO-LEFT OVERRIDE"),
    ("card-invoice", lambda d: d["transactions"][0].update(date="2027-01-01"),
     "$.transactions[0].date", "after the invoice date 2026-03-02"),
], ids=["reminder before due", "sub-øre amount", "bidi override", "future transaction"])
def test_input_checks_are_invalid_argument_with_path_and_reason(documents, layout_id, change,
                                                                field, why):
    # QA H3, M6, M8 and the future card transaction: each is refused, never composed
    data = json.loads(sample(layout_id))
    change(data)
    error = call_error(documents.Compose, documents_pb2.ComposeRequest(
        layout_id=layout_id, data_json=json.dumps(data)))
    assert error.code() == grpc.StatusCode.INVALID_ARGUMENT, error.details()
    [(found, description)] = field_violations(error)
    assert found == field and why in description, description


def test_peppol_rule_is_invalid_argument_with_path_and_rule(documents):
    data = json.loads(sample("b2b-invoice"))
    data["customer"]["peppol_id"] = "9955:5560360793"  # a scheme the EAS list withdrew
    error = call_error(documents.Compose, documents_pb2.ComposeRequest(
        layout_id="b2b-invoice", data_json=json.dumps(data),
        channels=[common_pb2.CHANNEL_EINVOICE]))
    assert error.code() == grpc.StatusCode.INVALID_ARGUMENT, error.details()
    [(field, description)] = field_violations(error)
    assert field == "$.customer.peppol_id"
    assert description.startswith("[PEPPOL-EN16931-CL008]")


def test_text_running_into_a_print_mark_zone_is_invalid_argument_with_its_path(documents, s3):
    # issue 11 fault 7: a long unbroken URL ran under the right-edge OMR column and
    # DataMatrix of the Pitney Bowes profile; printed, it would vanish under the marks.
    # The 2.0.0 letter now breaks it inside its column and prints; the frozen 1.0.0 letter,
    # which cannot, is refused naming the field, and nothing is archived.
    data = json.loads(sample("welcome-letter"))
    data["letter"]["paragraphs"][2] = (
        "Les mer på fjordbank.no/velkommen?utm_source=velkomstbrev&utm_medium=print"
        "&utm_campaign=kredittkort2026&utm_content=nykunde&ref=4419002199502026 om vilkårene.")
    text = json.dumps(data, ensure_ascii=False)
    printed = documents.Compose(documents_pb2.ComposeRequest(
        layout_id="welcome-letter", data_json=text, channels=[common_pb2.CHANNEL_PRINT]))
    assert printed.layout_version == "2.0.0" and printed.outputs
    before = count_objects(s3)
    error = call_error(documents.Compose, documents_pb2.ComposeRequest(
        layout_id="welcome-letter", layout_version="1.0.0", data_json=text,
        channels=[common_pb2.CHANNEL_PRINT]))
    assert error.code() == grpc.StatusCode.INVALID_ARGUMENT, error.details()
    [(field, description)] = field_violations(error)
    assert field == "$.letter.paragraphs[2]" and "utm_source" in description
    assert count_objects(s3) == before  # nothing archived


def test_unknown_locale_is_invalid(documents):
    for locale in ("xx-YY", "de-DE"):  # unknown to Babel; known but not in the layout
        error = call_error(documents.Compose, documents_pb2.ComposeRequest(
            layout_id="card-invoice", data_json=sample("card-invoice"),
            locale=locale))
        assert error.code() == grpc.StatusCode.INVALID_ARGUMENT
        assert field_violations(error)[0][0] == "locale"


def test_oversized_data_is_refused(documents):
    data = json.loads(sample("welcome-letter"))
    data["padding"] = "x" * (600 * 1024)
    error = call_error(documents.Compose, documents_pb2.ComposeRequest(
        layout_id="welcome-letter", data_json=json.dumps(data)))
    assert error.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
    huge = documents_pb2.ComposeRequest(layout_id="welcome-letter",
                                        data_json="x" * (17 * 1024 * 1024))
    assert call_error(documents.Compose, huge).code() == grpc.StatusCode.RESOURCE_EXHAUSTED


def test_missing_required_request_fields(documents):
    error = call_error(documents.Compose, documents_pb2.ComposeRequest(data_json="{}"))
    assert error.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert field_violations(error) == [("layout_id", "is required")]
    error = call_error(documents.GetDocument, documents_pb2.GetDocumentRequest(
        tenant="nordkort", document_id="01JNOSUCHDOCUMENT0000000000"))
    assert error.code() == grpc.StatusCode.NOT_FOUND


# --- layouts ---------------------------------------------------------------------------------


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


def test_a_print_queue_outage_indexes_nothing_and_the_retry_indexes_document_and_piece(
        kanal, documents, monkeypatch):
    """The print piece is written in the document's index transaction (server.archiving):
    when writing it fails, the caller sees UNAVAILABLE and nothing is indexed (no document
    without its piece); the retry with the same idempotency key makes the document and its
    one piece."""
    from sqlalchemy.exc import OperationalError

    from server.printing.queue import PrintQueue, print_pieces

    real_enqueue_on = PrintQueue.enqueue_on
    attempts: list[str] = []

    def down_once(conn, row):
        attempts.append(row["document_id"])
        if len(attempts) == 1:
            raise OperationalError("INSERT INTO print_pieces", {}, Exception("database down"))
        return real_enqueue_on(conn, row)

    monkeypatch.setattr(PrintQueue, "enqueue_on", staticmethod(down_once))
    request = documents_pb2.ComposeRequest(
        layout_id="welcome-letter", data_json=sample("welcome-letter"),
        channels=[common_pb2.CHANNEL_PRINT], idempotency_key="print-outage-1")
    assert call_error(documents.Compose, request).code() == grpc.StatusCode.UNAVAILABLE
    assert kanal.index.find_by_idempotency_key("nordkort", "print-outage-1") is None
    retry = documents.Compose(request)
    assert not retry.replayed and len(attempts) == 2
    with kanal.index.engine.connect() as db:
        queued = db.execute(print_pieces.select().where(
            print_pieces.c.document_id == retry.document_id)).fetchall()
    assert len(queued) == 1


def test_a_retry_queues_the_print_piece_of_a_document_indexed_without_it(kanal, documents):
    """A document indexed without its piece (by a version that queued pieces after the
    index transaction, or a crash after a one-by-one commit): the retry with the same
    idempotency key queues it."""
    from server.printing.queue import print_pieces

    request = documents_pb2.ComposeRequest(
        layout_id="welcome-letter", data_json=sample("welcome-letter"),
        channels=[common_pb2.CHANNEL_PRINT], idempotency_key="print-outage-2")
    first = documents.Compose(request)
    with kanal.index.engine.begin() as db:
        db.execute(print_pieces.delete().where(print_pieces.c.document_id == first.document_id))
    retry = documents.Compose(request)
    assert retry.replayed and retry.document_id == first.document_id
    with kanal.index.engine.connect() as db:
        queued = db.execute(print_pieces.select().where(
            print_pieces.c.document_id == retry.document_id)).fetchall()
    assert len(queued) == 1


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


def test_a_locale_that_would_print_a_wrong_slip_is_invalid_naming_both_sides(documents, s3):
    before = count_objects(s3)
    error = call_error(documents.Compose, documents_pb2.ComposeRequest(
        tenant="nordkort", layout_id="card-invoice", locale="nb-NO",
        data_json=sample("card-invoice", "sample-sv-SE.json")))
    assert error.code() == grpc.StatusCode.INVALID_ARGUMENT
    fields = dict(field_violations(error))
    assert set(fields) == {"locale", "$.currency", "$.issuer.payment_account.type"}
    assert "use sv-SE" in fields["locale"]
    assert count_objects(s3) == before


def test_character_no_print_font_draws_is_invalid_argument_with_field_and_code_point(documents,
                                                                                      s3):
    # issue 11 item 2: a name the letter would print as boxes is refused, nothing archived
    data = json.loads(sample("card-invoice"))
    data["customer"]["name"] = "Kari \U00010380 Nordmann"  # U+10380 UGARITIC LETTER ALPA
    before = count_objects(s3)
    error = call_error(documents.Compose, documents_pb2.ComposeRequest(
        tenant="nordkort", layout_id="card-invoice", data_json=json.dumps(data)))
    assert error.code() == grpc.StatusCode.INVALID_ARGUMENT, error.details()
    [(field, description)] = field_violations(error)
    assert field == "$.customer.name" and description.startswith("U+10380 UGARITIC")
    assert count_objects(s3) == before


def test_a_private_use_character_is_invalid_argument_not_internal(documents, s3):
    # Inter draws icons at 745 private-use code points, so they passed the glyph check and
    # Typst's PDF/A-3a export then refused the document: INTERNAL. Refused by field now.
    data = json.loads(sample("card-invoice"))
    data["customer"]["name"] = "Kari \ue000 Nordmann"
    data["transactions"][0]["description"] = "Kiosk \U000F0001"
    before = count_objects(s3)
    error = call_error(documents.Compose, documents_pb2.ComposeRequest(
        tenant="nordkort", layout_id="card-invoice", data_json=json.dumps(data)))
    assert error.code() == grpc.StatusCode.INVALID_ARGUMENT, error.details()
    fields = dict(field_violations(error))
    # the merchant text is one the card invoice prints without what it cannot draw
    # ([print] replace_unprintable: "Kiosk ?"); the name is refused
    assert set(fields) == {"$.customer.name"}
    assert fields["$.customer.name"].startswith("U+E000 is a private-use character")
    assert count_objects(s3) == before


def test_text_running_off_the_page_is_invalid_argument_and_not_archived(documents, s3):
    # issue 11 item 1, the example on the frozen 1.0.0 card invoice (whose table
    # still widens for a 61-character descriptor): the print preflight refuses the page
    data = json.loads(sample("card-invoice"))
    data["transactions"][0]["description"] = ("WWWEXAMPLESHOPNOORDER" + "7" * 40)[:61]
    before = count_objects(s3)
    error = call_error(documents.Compose, documents_pb2.ComposeRequest(
        tenant="nordkort", layout_id="card-invoice", layout_version="1.0.0",
        data_json=json.dumps(data)))
    assert error.code() == grpc.StatusCode.INVALID_ARGUMENT, error.details()
    fields = {field for field, _ in field_violations(error)}
    assert fields == {"$.transactions[0].description"}
    assert count_objects(s3) == before
    # the same data on the 2.0.0 layout prints, the amounts on the page
    reply = documents.Compose(documents_pb2.ComposeRequest(
        tenant="nordkort", layout_id="card-invoice", data_json=json.dumps(data),
        preview=True))
    assert "412,80" in " ".join(pages_text(print_output(reply.outputs).content))
