"""SendSurvey goes through the contact policy (server.journeys.policy), on the surveys tests'
real Kanal (tests/integration/test_surveys_api.py's fixtures: PostgreSQL, embedded S3):
a sent survey is counted in `contact_log` (so the journeys' caps see it), a second within
the 90-day survey cap or one to a customer who opted out of surveys is not sent (an OK
answer saying so and why, the suppression in customer service's timeline), and a survey
that could not be composed counts nothing. GetSurveyReport tells "no NPS" from an NPS of 0.
"""

from __future__ import annotations

import json
import uuid
from datetime import UTC, datetime

import grpc
import pytest
from sqlalchemy import select

from kanal.v1 import events_pb2, events_pb2_grpc, surveys_pb2
from server.journeys.tables import contact_log, suppressions
from tests.client import channel
from tests.integration.test_surveys_api import (  # noqa: F401  (the module's fixtures)
    EXPERIMENT,
    KEYS,
    _data,
    _send,
    kanal,
    producer,
    webhook,
)

pytestmark = pytest.mark.integration
TENANT = "nordkort"


def logged(kanal, table, customer: str) -> list[tuple[str, str, str]]:  # noqa: F811
    """(category, source, ref or reason) of the customer's rows in `table`, oldest first."""
    last = table.c.ref if table is contact_log else table.c.reason
    with kanal.index.engine.begin() as conn:
        return [tuple(r) for r in conn.execute(
            select(table.c.category, table.c.source, last).where(
                table.c.tenant == TENANT, table.c.customer_id == customer)
            .order_by(table.c.at))]


def invited(producer, touchpoint: str) -> list:  # noqa: F811
    surveys, _ = producer
    return list(surveys.GetSurveyReport(surveys_pb2.GetSurveyReportRequest(
        touchpoint=touchpoint, period="all")).rows)


def test_a_sent_survey_counts_and_a_second_within_the_cap_is_suppressed(
        kanal, producer):  # noqa: F811
    customer, run = f"cap-{uuid.uuid4().hex[:6]}", uuid.uuid4().hex[:6]
    first = _send(producer, customer, f"parcel_{run}")
    assert first.document_id and first.invitation_id and not first.suppressed
    assert logged(kanal, contact_log, customer) == [
        ("survey", f"survey:parcel_{run}", first.invitation_id)]
    [row] = invited(producer, f"parcel_{run}")
    # invited, nobody answered: no NPS (unset), which is not an NPS of 0
    assert (row.invited, row.responded, row.HasField("nps")) == (1, 0, False)
    surveys, _ = producer
    variants = surveys.GetExperimentReport(surveys_pb2.GetExperimentReportRequest(
        experiment_id=EXPERIMENT)).variants  # this server's: nobody exposed or answering
    assert [(v.variant, v.response.trials, v.HasField("nps")) for v in variants] == [
        ("A", 0, False), ("B", 0, False)]

    second = _send(producer, customer, f"card_{run}")
    why = "frequency cap survey: 1 of 1 in 90 days already"
    assert (second.suppressed, second.suppressed_reason) == (True, why)
    assert (second.invitation_id, second.document_id, second.HasField("expires_at")) == (
        "", "", False)
    assert invited(producer, f"card_{run}") == []  # no invitation, no document
    assert len(logged(kanal, contact_log, customer)) == 1
    assert logged(kanal, suppressions, customer) == [("survey", f"survey:card_{run}", why)]
    with channel(kanal.address, KEYS[TENANT, "service"]) as ch:
        timeline = events_pb2_grpc.CustomersStub(ch).ListCustomerActivity(
            events_pb2.ListCustomerActivityRequest(customer_id=customer)).activities
    assert [(a.kind, a.reason) for a in timeline if a.kind == "suppression"] == [
        ("suppression", why)]


def test_a_customer_who_opted_out_of_surveys_gets_none(kanal, producer):  # noqa: F811
    run = uuid.uuid4().hex[:6]
    recorded, profiled = f"out-{run}", f"prof-{run}"
    # the delivery stage's opt-out (an unsubscribe), and one the bank told in the profile
    kanal.delivery.store.opt_out(TENANT, recorded, "surveys", datetime.now(UTC), "test")
    with channel(kanal.address, KEYS[TENANT, "producer"]) as ch:
        events_pb2_grpc.EventsStub(ch).PublishEvent(events_pb2.PublishEventRequest(
            customer_id=profiled, event_type="account_opened",
            data_json=json.dumps({"account_id": f"A-{run}", "product": "ASK"}),
            attributes_json=json.dumps({"opt_outs": ["survey"]})))
    for customer in (recorded, profiled):
        sent = _send(producer, customer, f"visit_{run}")
        assert (sent.suppressed, sent.suppressed_reason, sent.document_id) == (
            True, "customer opted out of survey", "")
        assert logged(kanal, contact_log, customer) == []
    assert invited(producer, f"visit_{run}") == []


def test_a_survey_that_cannot_be_composed_counts_nothing(kanal, producer):  # noqa: F811
    surveys, _ = producer
    customer, run = f"bad-{uuid.uuid4().hex[:6]}", uuid.uuid4().hex[:6]
    data = json.loads(_data(customer))
    data["customer"]["email"] = 7  # the layout's schema refuses it
    with pytest.raises(grpc.RpcError) as refused:
        surveys.SendSurvey(surveys_pb2.SendSurveyRequest(
            survey_id="nps-service", touchpoint=f"branch_{run}", data_json=json.dumps(data)))
    assert refused.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert logged(kanal, contact_log, customer) == []
    sent = _send(producer, customer, f"branch_{run}")  # not capped by the one never sent
    assert sent.document_id and not sent.suppressed
