"""Surveys end to end: a real Kanal (in-process, PostgreSQL in a schema of its own, embedded
S3) sends the nps-survey through Compose over gRPC; the link in the archived e-mail is
answered on the HTTP page once; a detractor's follow-up arrives signed at a local webhook
receiver; an SMS reply code is recorded; the report counts it all; an A/B campaign area is
attributed per variant."""

from __future__ import annotations

import email
import email.policy
import json
import re
import time
import urllib.error
import urllib.parse
import urllib.request
import uuid
from collections import Counter

import grpc
import pytest
from hypothesis import HealthCheck, Phase, given, seed, settings
from hypothesis import strategies as st
from sqlalchemy import create_engine, text

from kanal.v1 import (
    common_pb2,
    documents_pb2,
    documents_pb2_grpc,
    events_pb2,
    events_pb2_grpc,
    surveys_pb2,
    surveys_pb2_grpc,
)
from server.app import KanalServer
from server.compose.layouts import LayoutRegistry
from server.compose.variants import assign
from server.config import Settings
from server.delivery.webhooks import SIGNATURE_HEADER, TIMESTAMP_HEADER, verify
from tests.a11y import problems
from tests.client import Keys, channel
from tests.integration.delivery_fixtures import WebhookReceiver, unique_mobile, wait_for
from tests.integration.test_fuzz_api import messages as fuzz_messages

pytestmark = pytest.mark.integration

KEYS = Keys(("nordkort", "producer"), ("nordkort", "portal"), ("nordkort", "service"),
            ("fjordbank", "portal"))
LAYOUTS = LayoutRegistry()
EXPERIMENT = "gold-upgrade-2027"
RULES = [{
    "id": "gold-ab", "tenant": "nordkort", "when": {"layout": "welcome-letter"},
    "campaign": {"area": "main", "id": "gold-upgrade", "experiment": EXPERIMENT, "variants": [
        {"id": "A", "weight": 50, "title": "Gull med cashback", "body": "1 % tilbake."},
        {"id": "B", "weight": 50, "title": "Gull uten årsavgift", "body": "0 kr i år."}]},
}]


@pytest.fixture(scope="module")
def webhook():
    receiver = WebhookReceiver()
    yield receiver
    receiver.close()


@pytest.fixture(scope="module")
def kanal(tmp_path_factory, pg_url, webhook):
    schema = f"kanal_surveys_{uuid.uuid4().hex[:10]}"
    engine = create_engine(pg_url)
    with engine.begin() as conn:
        conn.execute(text(f'CREATE SCHEMA "{schema}"'))
    settings = Settings(
        listen="127.0.0.1:0", state_dir=tmp_path_factory.mktemp("kanal-surveys"),
        api_keys=KEYS.api_keys, index_url=f"{pg_url}?options=-csearch_path%3D{schema}",
        render_workers=0, printing={"rules": RULES},
        delivery={"poll_seconds": 0.2, "tenants": {"nordkort": {
            "webhook_url": webhook.url, "webhook_secret": "whsec-test"}}},
        surveys={
            "listen": "127.0.0.1:0", "link_secret": "test-link-secret-" + "x" * 32,
            "follow_up_hours": 48,
            "surveys": {
                "nps-service": {"reply_code": "NPS", "reply_number": "2222"},
                "nps-quick": {"reply_code": "KORT", "reply_number": "2222",
                              "link_days": 1 / 86400},  # one second: the expiry test
            },
            "experiments": {EXPERIMENT: {"variants": {"A": 50, "B": 50},
                                         "conversion_events": ["card_activated"]}},
        },
    )
    try:
        with KanalServer(settings) as server:
            yield server
    finally:
        with engine.begin() as conn:
            conn.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))
        engine.dispose()


@pytest.fixture(scope="module")
def producer(kanal):
    with channel(kanal.address, KEYS["nordkort", "producer"]) as ch:
        yield surveys_pb2_grpc.SurveysStub(ch), documents_pb2_grpc.DocumentsStub(ch)


@pytest.fixture(scope="module")
def portal(kanal):
    with channel(kanal.address, KEYS["nordkort", "portal"]) as ch:
        yield surveys_pb2_grpc.SurveysStub(ch)


def _data(customer_id: str, *, mobile: str | None = None, email_address: str | None = None,
          sample: str = "sample.json") -> str:
    data = json.loads((LAYOUTS.get("nps-survey").path / sample).read_text())
    data.pop("response")
    data["customer"].update(customer_id=customer_id, mobile=mobile or unique_mobile(),
                            email=email_address or f"{customer_id}@example.no")
    return json.dumps(data)


def _send(producer, customer_id: str, touchpoint: str, survey_id: str = "nps-service",
          **kwargs):
    surveys, _ = producer
    return surveys.SendSurvey(surveys_pb2.SendSurveyRequest(
        survey_id=survey_id, touchpoint=touchpoint, data_json=_data(customer_id, **kwargs)))


def _link_in_archived_email(kanal, producer, document_id: str) -> str:
    """The response link as the customer got it: read from the archived e-mail."""
    _, documents = producer
    found = documents.GetDocument(documents_pb2.GetDocumentRequest(document_id=document_id))
    [output] = [o for o in found.outputs if o.channel == common_pb2.CHANNEL_EMAIL]
    message = email.message_from_bytes(kanal.store.get(output.archive_key),
                                       policy=email.policy.default)
    plain = message.get_body(("plain",)).get_content()
    return re.search(r"http://\S+/r/[A-Za-z0-9._-]+", plain).group(0)


def _http(url: str, form: dict | None = None) -> tuple[int, str]:
    data = urllib.parse.urlencode(form).encode() if form is not None else None
    try:
        with urllib.request.urlopen(urllib.request.Request(url, data=data), timeout=10) as r:
            return r.status, r.read().decode()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read().decode()


def _token(link: str) -> str:
    return link.rsplit("/r/", 1)[1]


def test_a_response_link_works_once_and_a_detractor_reaches_the_bank_signed(
        kanal, producer, portal, webhook):
    touchpoint = f"parcel_delivered_{uuid.uuid4().hex[:6]}"
    sent = _send(producer, "cust-det", touchpoint)
    link = _link_in_archived_email(kanal, producer, sent.document_id)
    assert link.startswith(f"http://{kanal.surveys.pages.address}/r/")

    status, html = _http(link)
    assert status == 200 and problems(html, lang="nb") == []
    status, html = _http(link, {"score": "3", "comment": "Pakken kom en uke for sent"})
    assert status == 200 and "Takk for svaret!" in html

    # used: the page says 409, the API says FAILED_PRECONDITION
    assert _http(link, {"score": "10"})[0] == 409
    with pytest.raises(grpc.RpcError) as used:
        portal.RecordResponse(surveys_pb2.RecordResponseRequest(token=_token(link), score=10))
    assert used.value.code() == grpc.StatusCode.FAILED_PRECONDITION

    # the follow-up, signed like the delivery webhooks
    def follow_ups():
        return [(h, b) for h, b in webhook.received
                if h.get("X-Kanal-Event") == "follow_up_required"
                and json.loads(b)["touchpoint"] == touchpoint]
    [(headers, body)] = wait_for(follow_ups, "the follow_up_required webhook")
    assert verify("whsec-test", headers[TIMESTAMP_HEADER], body, headers[SIGNATURE_HEADER],
                  now=time.time())
    assert not verify("other-secret", headers[TIMESTAMP_HEADER], body,
                      headers[SIGNATURE_HEADER], now=time.time())
    posted = json.loads(body)
    assert (posted["type"], posted["customer_id"], posted["score"], posted["comment"]) == (
        "follow_up_required", "cust-det", 3, "Pakken kom en uke for sent")
    assert posted["invitation_id"] == sent.invitation_id
    assert posted["document_id"] == sent.document_id

    # ... and as events a journey can start from, in customer service's timeline
    with channel(kanal.address, KEYS["nordkort", "service"]) as ch:
        timeline = events_pb2_grpc.CustomersStub(ch).ListCustomerActivity(
            events_pb2.ListCustomerActivityRequest(customer_id="cust-det"))
    raised = {(a.kind, a.event_type) for a in timeline.activities}
    assert {("survey_response", "survey_response"),
            ("event", "follow_up_required")} <= raised, raised

    surveys, _ = producer
    report = surveys.GetSurveyReport(surveys_pb2.GetSurveyReportRequest(touchpoint=touchpoint))
    assert (report.total.invited, report.total.responded, report.total.detractors,
            report.total.nps) == (1, 1, 1, -100.0)
    assert report.open_follow_ups >= 1


def test_another_customers_token_records_nothing(kanal, producer, portal):
    touchpoint = f"meeting_{uuid.uuid4().hex[:6]}"
    sent_b = _send(producer, "cust-b", touchpoint)
    token_b = _token(_link_in_archived_email(kanal, producer, sent_b.document_id))
    with pytest.raises(grpc.RpcError) as denied:
        portal.RecordResponse(surveys_pb2.RecordResponseRequest(
            token=token_b, score=10, customer_id="cust-a"))
    assert denied.value.code() == grpc.StatusCode.PERMISSION_DENIED
    with (channel(kanal.address, KEYS["fjordbank", "portal"]) as ch,  # another tenant
          pytest.raises(grpc.RpcError) as unknown):
        surveys_pb2_grpc.SurveysStub(ch).RecordResponse(
            surveys_pb2.RecordResponseRequest(token=token_b, score=10))
    assert unknown.value.code() == grpc.StatusCode.NOT_FOUND
    header, payload, signature = token_b.split(".")
    with pytest.raises(grpc.RpcError) as forged:
        portal.RecordResponse(surveys_pb2.RecordResponseRequest(
            token=f"{header}.{payload}.{signature[::-1]}", score=10))
    assert forged.value.code() == grpc.StatusCode.NOT_FOUND
    # the owner's answer still counts, once
    answer = portal.RecordResponse(surveys_pb2.RecordResponseRequest(
        token=token_b, score=9, customer_id="cust-b"))
    assert (answer.customer_id, answer.category, answer.channel) == ("cust-b", "promoter",
                                                                     "api")
    assert not answer.follow_up_id


def test_a_link_does_not_work_after_expiry(kanal, producer, portal):
    sent = _send(producer, "cust-late", f"late_{uuid.uuid4().hex[:6]}", survey_id="nps-quick")
    link = _link_in_archived_email(kanal, producer, sent.document_id)
    status, html = wait_for(lambda: (lambda r: r if r[0] == 410 else None)(_http(link)),
                            "the link to expire (1 s)", timeout=30)
    assert "Lenken er utløpt" in html and problems(html, lang="nb") == []
    assert _http(link, {"score": "9"})[0] == 410
    with pytest.raises(grpc.RpcError) as expired:
        portal.RecordResponse(surveys_pb2.RecordResponseRequest(token=_token(link), score=9))
    assert expired.value.code() == grpc.StatusCode.FAILED_PRECONDITION


def test_sms_reply_code_is_recorded(producer):
    surveys, documents = producer
    mobile = unique_mobile()
    touchpoint = f"card_issued_{uuid.uuid4().hex[:6]}"
    sent = surveys.SendSurvey(surveys_pb2.SendSurveyRequest(
        survey_id="nps-service", touchpoint=touchpoint, data_json=_data("cust-sms",
                                                                        mobile=mobile),
        channels=[common_pb2.CHANNEL_SMS]))
    found = documents.GetDocument(documents_pb2.GetDocumentRequest(
        document_id=sent.document_id))
    assert [o.channel for o in found.outputs] == [common_pb2.CHANNEL_SMS]
    answer = surveys.RecordSmsReply(surveys_pb2.RecordSmsReplyRequest(
        from_msisdn=mobile, text="NPS 9 great service"))
    assert (answer.invitation_id, answer.score, answer.channel, answer.customer_id) == (
        sent.invitation_id, 9, "sms", "cust-sms")
    with pytest.raises(grpc.RpcError) as again:
        surveys.RecordSmsReply(surveys_pb2.RecordSmsReplyRequest(from_msisdn=mobile,
                                                                 text="NPS 2"))
    assert again.value.code() == grpc.StatusCode.FAILED_PRECONDITION
    with pytest.raises(grpc.RpcError) as nonsense:
        surveys.RecordSmsReply(surveys_pb2.RecordSmsReplyRequest(from_msisdn=mobile,
                                                                 text="hei"))
    assert nonsense.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    report = surveys.GetSurveyReport(surveys_pb2.GetSurveyReportRequest(
        touchpoint=touchpoint, period="day"))
    [row] = report.rows
    assert (row.invited, row.responded, row.promoters, row.nps, row.response_rate) == (
        1, 1, 1, 100.0, 1.0)


def test_report_numbers_over_grpc(kanal, producer, portal):
    surveys, _ = producer
    touchpoint = f"branch_visit_{uuid.uuid4().hex[:6]}"
    scores = [10, 9, 8, 7, 6, 2, None, None]  # 2 promoters, 2 passives, 2 detractors of 6
    for n, score in enumerate(scores):
        sent = _send(producer, f"r{n}", touchpoint)
        if score is not None:
            portal.RecordResponse(surveys_pb2.RecordResponseRequest(
                token=_token(_link_in_archived_email(kanal, producer, sent.document_id)),
                score=score))
    report = surveys.GetSurveyReport(surveys_pb2.GetSurveyReportRequest(
        touchpoint=touchpoint, period="all"))
    [row] = report.rows
    assert (row.invited, row.responded, row.promoters, row.passives, row.detractors) == (
        8, 6, 2, 2, 2)
    assert row.response_rate == pytest.approx(0.75) and row.nps == 0.0
    assert row.HasField("nps")  # an NPS of 0, not "no NPS" (optional: unset when none)
    with channel(kanal.address, KEYS["nordkort", "service"]) as ch:
        service = surveys_pb2_grpc.SurveysStub(ch)
        follow_up = service.CloseFollowUp(surveys_pb2.CloseFollowUpRequest(
            follow_up_id=_open_follow_up(kanal, touchpoint), note="Ringt kunden"))
    assert follow_up.closed_at.seconds > 0 and follow_up.note == "Ringt kunden"
    with pytest.raises(grpc.RpcError) as bad:
        surveys.GetSurveyReport(surveys_pb2.GetSurveyReportRequest(period="decade"))
    assert bad.value.code() == grpc.StatusCode.INVALID_ARGUMENT


def _open_follow_up(kanal, touchpoint: str) -> str:
    return next(f["follow_up_id"] for f in kanal.surveys.store.open_follow_ups("nordkort")
                if f["touchpoint"] == touchpoint)


def test_campaign_variants_are_exposed_and_conversions_attributed(kanal, producer):
    surveys, documents = producer
    data = json.loads((LAYOUTS.get("welcome-letter").path / "sample.json").read_text())
    data.pop("campaign", None)
    customers = [f"ab-{uuid.uuid4().hex[:8]}" for _ in range(12)]
    for customer in customers:
        data["customer"]["customer_id"] = customer
        documents.Compose(documents_pb2.ComposeRequest(
            layout_id="welcome-letter", data_json=json.dumps(data),
            channels=[common_pb2.CHANNEL_PRINT]))
    expected = {c: assign("nordkort", c, EXPERIMENT, {"A": 50, "B": 50}) for c in customers}
    converted = customers[::3]
    for customer in converted:
        result = surveys.RecordConversion(surveys_pb2.RecordConversionRequest(
            experiment_id=EXPERIMENT, customer_id=customer, event_type="card_activated"))
        assert (result.attributed, result.variant) == (True, expected[customer])
    stranger = surveys.RecordConversion(surveys_pb2.RecordConversionRequest(
        experiment_id=EXPERIMENT, customer_id="never-saw-it", event_type="card_activated"))
    assert not stranger.attributed
    report = surveys.GetExperimentReport(surveys_pb2.GetExperimentReportRequest(
        experiment_id=EXPERIMENT))
    by_variant = {v.variant: v for v in report.variants}
    exposed = Counter(expected.values())
    wins = Counter(expected[c] for c in converted)
    for name in ("A", "B"):
        assert by_variant[name].exposed == exposed[name]
        assert by_variant[name].conversion.successes == wins[name]
        rate = by_variant[name].conversion
        assert rate.low <= rate.rate <= rate.high
    assert report.confidence == pytest.approx(0.95)


SURVEY_METHODS = {f"/kanal.v1.Surveys/{m.name}": m for m in
                  surveys_pb2.DESCRIPTOR.services_by_name["Surveys"].methods}
NEVER = {grpc.StatusCode.INTERNAL, grpc.StatusCode.UNKNOWN, grpc.StatusCode.DEADLINE_EXCEEDED}


@settings(deadline=None, database=None, max_examples=150,
          suppress_health_check=list(HealthCheck),
          phases=[Phase.explicit, Phase.reuse, Phase.generate])
@seed(20261130)
@given(data=st.data())
def test_no_survey_request_answers_internal(kanal, data):
    """Any message to any Surveys method (random fields, a real token sometimes) gets a
    status a caller can act on, never INTERNAL, UNKNOWN or a stall."""
    method = data.draw(st.sampled_from(sorted(SURVEY_METHODS)), "method")
    role = data.draw(st.sampled_from(["producer", "portal", "service"]), "role")
    request = data.draw(fuzz_messages(SURVEY_METHODS[method].input_type, {}), "request")
    if method == "/kanal.v1.Surveys/SendSurvey" and data.draw(st.booleans()):
        request.survey_id, request.data_json = "nps-service", _data("fuzz")
    with grpc.insecure_channel(kanal.address) as ch:
        call = ch.unary_unary(method, request_serializer=lambda m: m.SerializeToString())
        try:
            call(request, metadata=(("authorization", f"Bearer {KEYS['nordkort', role]}"),),
                 timeout=30)
        except grpc.RpcError as error:
            assert error.code() not in NEVER, (method, error.code(), error.details())


def test_racing_answers_to_one_link_record_exactly_one(kanal, producer):
    from concurrent.futures import ThreadPoolExecutor
    touchpoint = f"race_{uuid.uuid4().hex[:6]}"
    sent = _send(producer, "cust-race", touchpoint)
    link = _link_in_archived_email(kanal, producer, sent.document_id)
    with ThreadPoolExecutor(8) as pool:
        statuses = sorted(pool.map(lambda n: _http(link, {"score": str(n)})[0], range(8)))
    assert statuses == [200] + [409] * 7
    surveys, _ = producer
    report = surveys.GetSurveyReport(surveys_pb2.GetSurveyReportRequest(touchpoint=touchpoint))
    assert (report.total.invited, report.total.responded) == (1, 1)


def test_the_page_answers_in_the_language_the_survey_was_composed_in(kanal, producer):
    """The Swedish sample names no locale: its address decides sv-SE, and so does the page."""
    sent = _send(producer, "cust-se", f"card_issued_{uuid.uuid4().hex[:6]}",
                 sample="sample-sv-SE.json")
    status, html = _http(_link_in_archived_email(kanal, producer, sent.document_id))
    assert status == 200 and problems(html, lang="sv") == []
    assert "Hur sannolikt är det att du skulle rekommendera Fjordbanken" in html
