"""A journey's document is always its own customer's (QA, medium: data protection).

A journey runs for the event's customer A, and its send's data takes the document's customer
from the profile (`customer = "$customer.recipient"`) or the trigger's data. The document's
`customer.customer_id` is its archive folder, portal listing and mailbox: a profile whose
recipient named customer B filed A's communication under B. Now:

* at intake, an event for A whose attributes give a `recipient.customer_id` of B is
  INVALID_ARGUMENT at `attributes.$.recipient.customer_id` (`events[n].…` in a batch), and
  nothing is stored or started;
* when the journey sends, a document whose `customer.customer_id` is not the instance's
  customer (a profile stored before that check, a step taking the id from elsewhere) is not
  planned: no `journey_sends` row (so no job record), not counted against the caps, and
  recorded as a suppression with its reason, as the contact policy's are;
* a send planned that way by an older server is `refused` where its job record would be
  written (server.journeys.sends), recorded the same way and taken off the contact log.

Journeys on SQLite with the injected clock (test_journeys' stage).
"""

from __future__ import annotations

import json
from datetime import timedelta

import pytest
from sqlalchemy import func, select, update

from kanal.v1 import events_pb2
from server.api.events import EventsServicer
from server.auth import Caller, set_caller
from server.errors import InvalidInput
from server.events.publish import EventInput
from server.events.tables import events as events_table
from server.journeys.definition import JourneyCatalog
from server.journeys.tables import contact_log, customers, instances, sends, suppressions
from tests.unit.test_journeys import T0, opened, planned, stage, write  # noqa: F401

OPENED = '{"account_id": "A", "product": "ASK"}'


def count(engine, table) -> int:
    with engine.begin() as conn:
        return conn.execute(select(func.count()).select_from(table)).scalar()


def test_an_event_whose_recipient_is_another_customer_is_refused_naming_the_path(
        stage):  # noqa: F811
    events, _, _, engine, _ = stage
    attributes = json.dumps({"consents": ["marketing"], "recipient": {"customer_id": "B"}})
    with pytest.raises(InvalidInput) as raised:
        events.publish([EventInput("t", "A", "account_opened", OPENED, occurred_at=T0,
                                   attributes_json=attributes)])
    [violation] = raised.value.violations
    assert violation.field == "attributes.$.recipient.customer_id"
    assert violation.description.startswith('"B" is not the event\'s customer_id "A"')
    with pytest.raises(InvalidInput) as raised:  # a batch names the event
        events.publish([EventInput("t", "A", "account_opened", OPENED, occurred_at=T0,
                                   attributes_json=attributes)], indexed=True)
    assert [v.field for v in raised.value.violations] == [
        "events[0].attributes.$.recipient.customer_id"]
    set_caller(Caller("test", "t", "producer"))
    try:  # over gRPC: the servicer raises it, the interceptor answers INVALID_ARGUMENT
        with pytest.raises(InvalidInput) as raised:
            EventsServicer(events).PublishEvent(events_pb2.PublishEventRequest(
                customer_id="A", event_type="account_opened", data_json=OPENED,
                attributes_json=attributes), None)
    finally:
        set_caller(None)
    assert [v.field for v in raised.value.violations] == [
        "attributes.$.recipient.customer_id"]
    assert count(engine, events_table) == count(engine, instances) == 0
    assert count(engine, customers) == 0
    # the customer's own id, or none, is taken
    opened(events, "A", T0)
    events.publish([EventInput("t", "A", "first_deposit",
                               '{"account_id": "A", "amount": "1", "currency": "NOK"}',
                               attributes_json='{"recipient": {"name": "Kari"}}')])
    assert count(engine, events_table) == 2


def test_a_profile_naming_another_customer_sends_nothing_and_says_why(
        stage):  # noqa: F811
    events, journeys, clock, engine, _ = stage
    opened(events, "A", T0)
    with engine.begin() as conn:  # what a server before the intake check accepted
        conn.execute(update(customers).where(customers.c.customer_id == "A").values(
            attributes=json.dumps({"consents": ["marketing"],
                                   "recipient": {"customer_id": "B", "name": "Other"}})))
    clock.now = T0 + timedelta(days=14)
    result = journeys.journeys.run_due()
    assert (result.sends, result.suppressed) == (0, 1)
    assert planned(engine, "A") == planned(engine, "B") == []  # no row: no job record
    assert journeys.submitter.flush() == 0
    assert count(engine, contact_log) == 0  # nothing went out, nothing capped
    with engine.begin() as conn:
        [row] = conn.execute(select(suppressions)).mappings().all()
        [instance] = conn.execute(select(instances)).mappings().all()
    assert row["customer_id"] == "A" and row["source"] == "journey:follow@1:mail"
    assert row["reason"] == (
        "the document's $.customer.customer_id (from $customer.recipient) names another "
        "customer than the journey's: it would be archived, listed and delivered under that "
        "customer")
    assert instance["state"] == "completed"


PIN_LETTER = """
name = "pin-letter"
version = 1
trigger = "pin_sent"
category = "service"
[[steps]]
id = "letter"
type = "send"
layout = "welcome-letter"
[steps.data.customer]
customer_id = "$trigger.data.card_id"
name = "$customer.name"
"""


def test_a_step_taking_the_customer_id_from_elsewhere_sends_nothing(
        stage, tmp_path):  # noqa: F811
    events, journeys, _, engine, _ = stage
    write(tmp_path / "journeys", "t", "pin-letter", 1, PIN_LETTER)
    journeys.catalog = JourneyCatalog(tmp_path / "journeys")  # reload with the new file
    journeys.journeys.catalog = journeys.catalog
    for customer, card in (("A", "K1"), ("K2", "K2")):
        events.publish([EventInput("t", customer, "pin_sent",
                                   json.dumps({"card_id": card, "via": "app"}),
                                   attributes_json='{"name": "Kari"}')])
    result = journeys.journeys.run_due()
    assert (result.sends, result.suppressed) == (1, 1)
    assert planned(engine, "A") == []
    [sent] = planned(engine, "K2")  # the id that is the customer's goes as before
    assert json.loads(sent["data"])["customer"]["customer_id"] == "K2"
    with engine.begin() as conn:
        [row] = conn.execute(select(suppressions)).mappings().all()
    assert row["customer_id"] == "A" and row["reason"].startswith(
        "the document's $.customer.customer_id (from $trigger.data.card_id) names another")


def test_a_planned_send_naming_another_customer_never_becomes_a_job_record(
        stage):  # noqa: F811
    events, journeys, clock, engine, jobs = stage
    opened(events, "A", T0)
    opened(events, "C", T0)
    clock.now = T0 + timedelta(days=14)
    assert journeys.journeys.run_due().sends == 2
    [row] = planned(engine, "A")
    with engine.begin() as conn:  # planned by a server before the engine's check
        conn.execute(update(sends).where(sends.c.send_id == row["send_id"]).values(
            data=json.dumps({"customer": {"customer_id": "B"}})))
    assert count(engine, contact_log) == 2
    assert journeys.submitter.flush() == 1  # C's only
    [refused] = planned(engine, "A")
    assert (refused["state"], refused["job_id"], refused["document_id"]) == (
        "refused", None, None)
    assert planned(engine, "C")[0]["state"] == "submitted"
    with engine.begin() as conn:
        [row] = conn.execute(select(suppressions)).mappings().all()
        logged = conn.execute(select(contact_log.c.customer_id)).scalars().all()
    assert row["customer_id"] == "A" and row["source"] == "journey:follow@1:mail"
    assert "names another customer" in row["reason"]
    assert logged == ["C"]  # A's refused send caps nothing
    assert journeys.submitter.flush() == 0
