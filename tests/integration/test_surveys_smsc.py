"""An NPS survey by SMS through a real SMPP peer and the customer's answer back on the same
link: Kanal (in-process, PostgreSQL) sends the survey SMS to the npm `smpp` SMSC
(tests/smsc); the SMSC delivers the customer's "NPS 9 ..." as a mobile-originated
deliver_sm; the SMPP adapter hands it to the survey stage, which records it."""

from __future__ import annotations

import json
import uuid

import pytest

from kanal.v1 import common_pb2, surveys_pb2, surveys_pb2_grpc
from server.app import KanalServer
from server.compose.layouts import LayoutRegistry
from server.config import Settings
from server.delivery.providers.smpp import mo_text
from tests.client import Keys, channel
from tests.integration.delivery_fixtures import fresh_database, unique_mobile, wait_for
from tests.smsc import Smsc

pytestmark = pytest.mark.integration

KEYS = Keys(("nordkort", "producer"))
LAYOUTS = LayoutRegistry()


@pytest.fixture(scope="module")
def smsc():
    smsc = Smsc()
    smsc.start()
    yield smsc
    smsc.remove()


@pytest.fixture(scope="module")
def kanal(tmp_path_factory, pg_url, smsc):
    databases = fresh_database(pg_url)
    settings = Settings(
        listen="127.0.0.1:0", state_dir=tmp_path_factory.mktemp("kanal-survey-sms"),
        api_keys=KEYS.api_keys, index_url=next(databases), render_workers=0,
        delivery={"lease_seconds": 5, "poll_seconds": 0.2, "purge_seconds": 1,
                  "channels": {"sms": "smsc"},
                  "providers": {"smsc": smsc.provider_settings(in_doubt_seconds=2)},
                  "tenants": {"nordkort": {"sms_sender": "Fjordbank"}},
                  "rules": {"quiet_hours": {"sms": {}}}},
        surveys={"public_url": "https://svar.fjordbank.no", "link_secret": "k" * 40,
                 "surveys": {"nps-service": {"reply_code": "NPS", "reply_number": "2222"}}})
    with KanalServer(settings) as server:
        yield server
    next(databases, None)


def test_the_survey_goes_by_smpp_and_the_customers_reply_comes_back_recorded(kanal, smsc):
    mobile = unique_mobile()
    data = json.loads((LAYOUTS.get("nps-survey").path / "sample.json").read_text())
    data.pop("response")
    data["customer"].update(customer_id="cust-smpp", mobile=mobile, consents=["sms"])
    touchpoint = f"parcel_delivered_{uuid.uuid4().hex[:6]}"
    with channel(kanal.address, KEYS["nordkort", "producer"]) as ch:
        surveys = surveys_pb2_grpc.SurveysStub(ch)
        sent = surveys.SendSurvey(surveys_pb2.SendSurveyRequest(
            survey_id="nps-service", touchpoint=touchpoint, data_json=json.dumps(data),
            channels=[common_pb2.CHANNEL_SMS]))
        [submitted] = wait_for(lambda: [r for r in smsc.received()
                                        if r["destination_addr"] == mobile.lstrip("+")],
                               "the survey SMS at the SMSC")
        text = mo_text(bytes.fromhex(submitted["short_message"]), submitted["data_coding"])
        assert "NPS" in text and "2222" in text  # the customer is told how to answer

        smsc.mobile_originated(mobile, "NPS 9 Rask levering, takk!")

        def answered():
            report = surveys.GetSurveyReport(surveys_pb2.GetSurveyReportRequest(
                touchpoint=touchpoint))
            return report if report.total.responded else None
        report = wait_for(answered, "the SMS answer recorded")
    assert (report.total.invited, report.total.promoters, report.total.nps) == (1, 1, 100.0)
    row = kanal.surveys.store.invitation(sent.invitation_id)
    assert row["responded_at"] is not None
    # Not an answer, or one too many: acknowledged and dropped (not resent by the SMSC,
    # not recorded). The next survey's answer comes after them on the link, in order.
    # Another customer's answer after them marks when they were handled (the link is read
    # in order), so the next survey is sent only then, not while they are still on the way.
    # The next survey goes to another customer on the same mobile: a second one to
    # cust-smpp is within the survey cap (1 in 90 days, server.journeys.policy).
    with channel(kanal.address, KEYS["nordkort", "producer"]) as ch:
        surveys = surveys_pb2_grpc.SurveysStub(ch)
        marker_mobile, marker = unique_mobile(), f"marker_{uuid.uuid4().hex[:6]}"
        marker_data = {**data, "customer": {**data["customer"], "customer_id": "cust-marker",
                                            "mobile": marker_mobile}}
        assert not surveys.SendSurvey(surveys_pb2.SendSurveyRequest(
            survey_id="nps-service", touchpoint=marker, data_json=json.dumps(marker_data),
            channels=[common_pb2.CHANNEL_SMS])).suppressed
        smsc.mobile_originated(mobile, "Hvem er dette?")
        smsc.mobile_originated(mobile, "NPS 1")
        smsc.mobile_originated(marker_mobile, "NPS 8")
        wait_for(lambda: surveys.GetSurveyReport(surveys_pb2.GetSurveyReportRequest(
            touchpoint=marker)).total.responded or None, "the marker's answer")
        second = f"meeting_held_{uuid.uuid4().hex[:6]}"
        data["customer"]["customer_id"] = "cust-smpp-2"
        assert not surveys.SendSurvey(surveys_pb2.SendSurveyRequest(
            survey_id="nps-service", touchpoint=second, data_json=json.dumps(data),
            channels=[common_pb2.CHANNEL_SMS])).suppressed
        smsc.mobile_originated(mobile, "nps 7")

        def second_answered():
            report = surveys.GetSurveyReport(surveys_pb2.GetSurveyReportRequest(
                touchpoint=second))
            return report if report.total.responded else None
        later = wait_for(second_answered, "the second survey's SMS answer")
    assert (later.total.responded, later.total.passives) == (1, 1)  # 7, not the stray 1
    assert kanal.surveys.store.invitation(sent.invitation_id)["responded_at"] == \
        row["responded_at"]
