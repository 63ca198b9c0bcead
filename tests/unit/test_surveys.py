"""The survey stage on SQLite: links work once, not after expiry, not for another customer
or tenant; detractors raise a follow-up with a deadline and a webhook row; SMS reply codes;
the report's numbers; variants and conversions. (The gRPC, HTTP and PostgreSQL path:
tests/integration/test_surveys_api.py.)"""

from __future__ import annotations

import json
from datetime import timedelta

import pytest
from sqlalchemy import select

from server.delivery.tables import metadata as delivery_tables
from server.errors import FailedPrecondition, InvalidInput, NotFound, PermissionDenied
from server.journeys import tables as journey_tables
from server.journeys.policy import ContactPolicy, PolicySettings
from server.surveys.service import LinkExpired, LinkInvalid, LinkUsed
from server.surveys.tables import survey_webhooks
from tests.unit.survey_fixtures import Clock, make_stage, survey_data


@pytest.fixture
def clock():
    return Clock()


@pytest.fixture
def stage(tmp_path, clock):
    stage, documents = make_stage(tmp_path, clock)
    stage.documents = documents
    return stage


def _send(stage, customer, touchpoint="card_delivered", **kwargs):
    sent = stage.service.send("nordkort", "nps-service", touchpoint, survey_data(customer),
                              **kwargs)
    return sent, stage.documents.last_token()


def test_send_composes_the_layout_with_a_signed_link_and_the_reply_code(stage, clock):
    sent, token = _send(stage, "cust-1", touchpoint_ref="parcel-77")
    request = stage.documents.requests[-1]
    assert (request.tenant, request.layout_id) == ("nordkort", "nps-survey")
    data = json.loads(request.data)
    assert data["response"]["url"] == f"{stage.service.public_url}/r/{token}"
    assert data["response"]["reply_code"] == "NPS"
    assert data["response"]["expires"] == "2026-12-14"
    assert sent.expires_at == clock.now + timedelta(days=14)
    assert len(token) < 220  # header, 2 short claims, iat, exp, HS256
    row = stage.store.invitation(sent.invitation_id)
    assert row["document_id"] == sent.document_id and row["touchpoint_ref"] == "parcel-77"
    assert "cust-1" not in token  # nothing personal in the URL


def test_a_link_works_once(stage):
    sent, token = _send(stage, "cust-1")
    answer = stage.service.record_link(token, 9, "Rask levering")
    assert (answer.score, answer.follow_up) == (9, None)
    with pytest.raises(LinkUsed) as used:
        stage.service.record_link(token, 3)
    assert isinstance(used.value, FailedPrecondition)


def test_a_link_does_not_work_after_expiry(stage, clock):
    _, token = _send(stage, "cust-1")
    clock.advance(days=13, hours=23)
    stage.service.invitation_for_token(token)  # still valid
    clock.advance(hours=2)
    with pytest.raises(LinkExpired):
        stage.service.record_link(token, 10)


def test_another_customers_or_tenants_token_records_nothing(stage):
    _, token = _send(stage, "cust-1")
    with pytest.raises(PermissionDenied):
        stage.service.record_link(token, 10, customer_id="cust-2")
    with pytest.raises(NotFound):
        stage.service.record_link(token, 10, tenant="fjordbank")
    header, payload, sig = token.split(".")
    with pytest.raises(LinkInvalid):
        stage.service.record_link(f"{header}.{payload}.{sig[:-2]}AA", 10)
    # the binding: a row changed to another customer no longer matches the token
    stage.service.record_link(token, 8, customer_id="cust-1")  # the owner still can


def test_forged_binding_is_refused(stage):
    from server import tokens
    sent, _ = _send(stage, "cust-1")
    forged = tokens.encode(stage.service.signer.secret,
                           {"jti": sent.invitation_id, "b": "not-the-binding"}, 3600,
                           now=stage.service.clock().timestamp())
    with pytest.raises(LinkInvalid, match="does not belong"):
        stage.service.record_link(forged, 9)


def test_a_detractor_raises_a_follow_up_with_a_deadline_and_a_webhook_row(tmp_path, clock):
    stage, documents = make_stage(tmp_path, clock, webhook_url="http://127.0.0.1:9/hook")
    stage.service.documents = documents
    stage.service.send("nordkort", "nps-service", "parcel_delivered", survey_data("cust-9"))
    answer = stage.service.record_link(documents.last_token(), 4, "Pakken kom for sent")
    follow_up = answer.follow_up
    assert follow_up is not None
    assert follow_up["deadline"] == clock.now + timedelta(hours=48)
    with stage.store.engine.connect() as conn:
        [row] = conn.execute(select(survey_webhooks)).mappings().all()
    body = json.loads(row["body"])
    assert body["type"] == "follow_up_required"
    assert (body["customer_id"], body["score"], body["comment"]) == (
        "cust-9", 4, "Pakken kom for sent")
    assert body["deadline"] == follow_up["deadline"].isoformat()
    # passives and promoters raise none
    stage.service.send("nordkort", "nps-service", "parcel_delivered", survey_data("cust-8"))
    assert stage.service.record_link(documents.last_token(), 7).follow_up is None


def test_sms_reply_code_answers_the_newest_open_survey_of_that_number(stage, clock):
    sent_old, _ = _send(stage, "cust-1")
    clock.advance(minutes=5)
    sent_new, _ = _send(stage, "cust-1", touchpoint="meeting_held")
    answer = stage.service.record_sms("nordkort", "+4791234567", "NPS 9 great service")
    assert answer.invitation["invitation_id"] == sent_new.invitation_id
    assert (answer.score, answer.comment, answer.channel) == (9, "great service", "sms")
    again = stage.service.record_sms("nordkort", "4791234567", "nps 6")  # gateway without +
    assert again.invitation["invitation_id"] == sent_old.invitation_id
    with pytest.raises(FailedPrecondition, match="no open NPS survey"):
        stage.service.record_sms("nordkort", "+4791234567", "NPS 10")
    with pytest.raises(InvalidInput, match="reply code"):
        stage.service.record_sms("nordkort", "+4791234567", "XYZ 10")


def test_report_numbers_from_known_responses(stage, clock):
    # card_delivered: 10 sent, 8 answer: 9,10,10,9 (4 promoters), 7,8 (2 passives), 3,6
    # (2 detractors) -> response rate 0.8, NPS = 4/8 - 2/8 = 25
    for n, score in enumerate([9, 10, 10, 9, 7, 8, 3, 6, None, None]):
        _, token = _send(stage, f"c{n}")
        if score is not None:
            stage.service.record_link(token, score)
    # meeting_held in December: 2 sent, 1 detractor -> NPS -100
    clock.advance(days=2)
    for n, score in enumerate([0, None]):
        _, token = _send(stage, f"m{n}", touchpoint="meeting_held")
        if score is not None:
            stage.service.record_link(token, score)
    report = stage.service.report("nordkort", period="month")
    rows = {(r.touchpoint, r.period): r for r in report.rows}
    card = rows["card_delivered", "2026-11"]
    assert (card.invited, card.responded, card.promoters, card.passives, card.detractors) == (
        10, 8, 4, 2, 2)
    assert card.response_rate == 0.8 and card.nps == 25.0
    meeting = rows["meeting_held", "2026-12"]
    assert (meeting.invited, meeting.responded, meeting.nps) == (2, 1, -100.0)
    assert (report.total.invited, report.total.responded, report.total.nps) == (
        12, 9, round(100 * (4 - 3) / 9, 1))
    # follow-ups: 3 detractors open; none past its deadline yet, all after 48 h
    assert report.open_follow_ups == 3 and report.overdue == ()
    clock.advance(hours=49)
    overdue = stage.service.report("nordkort").overdue
    assert len(overdue) == 3
    stage.service.close_follow_up("nordkort", overdue[0]["follow_up_id"], "agent-7", "Ringt")
    assert len(stage.service.report("nordkort").overdue) == 2
    only = stage.service.report("nordkort", touchpoint="meeting_held", period="all")
    assert [(r.touchpoint, r.period, r.invited) for r in only.rows] == [
        ("meeting_held", "all", 2)]
    with pytest.raises(InvalidInput):
        stage.service.report("nordkort", period="year")


def test_variant_responses_and_conversions_are_attributed(stage):
    variants = {}
    for n in range(30):
        sent, token = _send(stage, f"v{n}", experiment_id="survey-wording")
        variants[f"v{n}"] = sent.variant
        assert sent.variant == stage.service.variant("nordkort", f"v{n}", "survey-wording")
        if n % 3 == 0:
            stage.service.record_link(token, 10)
    converted = [c for c in variants if int(c[1:]) % 2 == 0]
    for customer in converted:
        stage.service.conversion_from_event("nordkort", customer, "first_deposit",
                                            stage.service.clock())
    assert stage.service.record_conversion("nordkort", "survey-wording", "v0",
                                           "first_deposit") == (True, variants["v0"], True)
    assert stage.service.record_conversion("nordkort", "survey-wording", "stranger",
                                           "first_deposit") == (False, "", False)
    report = {v.variant: v for v in stage.service.experiment_report("nordkort",
                                                                     "survey-wording")}
    for name in ("A", "B"):
        mine = [c for c, v in variants.items() if v == name]
        assert report[name].exposed == len(mine)
        assert report[name].conversion.successes == len([c for c in mine if c in converted])
        assert report[name].response.trials == len(mine)
        assert report[name].response.successes == len([c for c in mine if int(c[1:]) % 3 == 0])
        assert report[name].weight == 0.5
        assert report[name].conversion.low <= report[name].conversion.rate \
            <= report[name].conversion.high


def test_a_survey_that_could_not_be_composed_leaves_no_invitation(stage):
    def refuse(request):
        raise InvalidInput.field("$.customer.name", "is required")
    stage.documents.compose = refuse
    with pytest.raises(InvalidInput):
        stage.service.send("nordkort", "nps-service", "card_delivered", survey_data("c-x"))
    assert stage.service.report("nordkort").total.invited == 0
    with pytest.raises(InvalidInput, match="response"):
        stage.service.send("nordkort", "nps-service", "card_delivered",
                           json.dumps({**json.loads(survey_data("c-x")), "response": {}}))
    with pytest.raises(InvalidInput, match="survey_id"):
        stage.service.send("nordkort", "no-such", "card_delivered", survey_data("c-x"))


def test_a_retried_send_with_its_key_is_the_same_invitation_and_the_same_link(stage):
    first = stage.service.send("nordkort", "nps-service", "card_delivered",
                               survey_data("c-key"), idempotency_key="journey-7:c-key")
    data_first = stage.documents.last_data()
    again = stage.service.send("nordkort", "nps-service", "card_delivered",
                               survey_data("c-key"), idempotency_key="journey-7:c-key")
    assert again.invitation_id == first.invitation_id and again.replayed
    assert stage.documents.last_data() == data_first  # same token: the document replays
    assert [r.idempotency_key for r in stage.documents.requests] == ["journey-7:c-key"] * 2
    with pytest.raises(InvalidInput, match="another customer"):
        stage.service.send("nordkort", "nps-service", "card_delivered",
                           survey_data("c-other"), idempotency_key="journey-7:c-key")
    assert stage.service.report("nordkort").total.invited == 1


@pytest.mark.parametrize(("settings", "message"), [
    ({"link_days": 0}, "surveys.link_days must be > 0"),
    ({"surveys": {"nps": {"reply_code": "N1", "reply_number": "2222"}}}, "reply_code"),
    ({"surveys": {"a": {"reply_code": "NPS", "reply_number": "2222"},
                  "b": {"reply_code": "nps", "reply_number": "2222"}}}, "already a's"),
    ({"surveys": {"nps": {"reply_code": "NPS"}}}, "reply_number"),
    ({"experiments": {"e": {"variants": {"A": 0}}}}, "add up to 0"),
    ({"listen": "8480"}, "HOST:PORT"),
    ({"public_url": "svar.fjordbank.no"}, "http(s) URL"),
])
def test_settings_that_cannot_work_are_refused_naming_the_setting(settings, message):
    from server.surveys.settings import SurveySettings
    with pytest.raises(ValueError, match=message.replace("(", r"\(").replace(")", r"\)")):
        SurveySettings.from_dict(settings)


def test_a_short_link_secret_is_refused(tmp_path, clock):
    with pytest.raises(ValueError, match="at least 32"):
        make_stage(tmp_path, clock, link_secret="short")


def test_follow_up_webhook_is_retried_until_the_bank_takes_it(tmp_path, clock):
    from server.delivery.webhooks import SIGNATURE_HEADER, TIMESTAMP_HEADER, verify
    from tests.integration.delivery_fixtures import WebhookReceiver
    receiver = WebhookReceiver(status=503)
    try:
        stage, documents = make_stage(tmp_path, clock, webhook_url=receiver.url)
        stage.service.documents = documents
        stage.service.send("nordkort", "nps-service", "parcel_delivered", survey_data("c-w"))
        stage.service.record_link(documents.last_token(), 2, "Feil pakke")
        assert stage.webhooks.post_due() == 0 and len(receiver.received) == 1  # refused
        assert stage.webhooks.post_due() == 0 and len(receiver.received) == 1  # backing off
        receiver.status = 200
        clock.advance(seconds=30)
        assert stage.webhooks.post_due() == 1
        headers, body = receiver.received[-1]
        assert headers["X-Kanal-Event"] == "follow_up_required"
        assert verify("whsec-test", headers[TIMESTAMP_HEADER], body,
                      headers[SIGNATURE_HEADER], now=clock.now.timestamp())
        assert json.loads(body)["comment"] == "Feil pakke"
        assert stage.webhooks.post_due() == 0  # posted once
    finally:
        receiver.close()


@pytest.mark.parametrize("field, value", [("sender", [1]), ("sender", "Fjordbank"),
                                          ("survey", "x"), ("survey", [])])
def test_a_sender_or_survey_that_is_no_object_is_refused_naming_it(stage, field, value):
    data = {**json.loads(survey_data("c-shape")), field: value}
    with pytest.raises(InvalidInput) as refused:
        stage.service.send("nordkort", "nps-service", "card_delivered", json.dumps(data))
    assert [v.field for v in refused.value.violations] == [f"$.{field}"]
    assert stage.service.report("nordkort").total.invited == 0


def test_a_refused_survey_does_not_use_up_the_customers_survey_cap(tmp_path, clock):
    """The cap (1 survey / 90 days) counts surveys sent, not requests refused: a request
    whose data the stage refuses leaves the customer's next survey free to go."""
    stage, documents = make_stage(tmp_path, clock)
    stage.service.policy = ContactPolicy(PolicySettings(), stage.service.store.engine)
    with stage.service.store.engine.begin() as conn:
        delivery_tables.create_all(conn)
        journey_tables.metadata.create_all(conn)
    data = json.loads(survey_data("c-cap"))
    for bad in ({**data, "sender": [1]}, {**data, "survey": "x"}):
        with pytest.raises(InvalidInput):
            stage.service.send("nordkort", "nps-service", "card_delivered", json.dumps(bad))
    sent = stage.service.send("nordkort", "nps-service", "card_delivered", survey_data("c-cap"))
    assert sent.document_id and not sent.suppressed


def test_a_null_survey_object_is_filled_in_like_a_missing_one(stage):
    data = {**json.loads(survey_data("c-null")), "survey": None}
    sent = stage.service.send("nordkort", "nps-service", "card_delivered", json.dumps(data))
    assert sent.document_id
    assert stage.documents.last_data()["survey"] == {"survey_id": "nps-service",
                                                     "touchpoint": "card_delivered"}


@pytest.mark.parametrize("number", ["abc", "", "+47 912 34 567", "+4791234567x"])
def test_an_sms_reply_from_no_number_is_refused_naming_the_number(stage, number):
    with pytest.raises(InvalidInput) as refused:
        stage.service.record_sms("nordkort", number, "NPS 9")
    assert [v.field for v in refused.value.violations] == ["from_msisdn"]
