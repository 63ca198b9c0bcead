"""A journey's document is always its own customer's (QA, medium: data protection).

A journey runs for the event's customer A, and its send's data takes the document's customer
from the profile (`customer = "$customer.recipient"`) or the trigger's data. The document's
`customer.customer_id` is its archive folder, portal listing and mailbox: a profile whose
recipient named customer B filed A's communication under B. Now:

* when the journey sends, a document whose `customer.customer_id` is not the instance's
  customer (a profile stored before that check, a step taking the id from elsewhere) is not
  planned: no `journey_sends` row (so no job record), not counted against the caps, and
  recorded as a suppression with its reason, as the contact policy's are.

Journeys on SQLite with the injected clock (test_journeys' stage).
"""

from __future__ import annotations

import json
from datetime import timedelta

from sqlalchemy import func, select, update

from server.events.publish import EventInput
from server.journeys.definition import JourneyCatalog
from server.journeys.tables import contact_log, customers, instances, suppressions
from tests.unit.test_journeys import T0, opened, planned, stage, write  # noqa: F401


def count(engine, table) -> int:
    with engine.begin() as conn:
        return conn.execute(select(func.count()).select_from(table)).scalar()


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
        'not sent: the document\'s $.customer.customer_id (from $customer.recipient) names '
        "another customer than the journey's; it would be archived, listed and delivered "
        "under that customer")
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
    assert row["customer_id"] == "A" and "names another customer" in row["reason"]
