"""What a journey's send hands to the compose request beyond its data, and what that does:

* the customer profile's consents and opt-outs (the ones the contact policy read) travel
  with the send's bulk-job record, are added to the Composition's recipient, and reach the
  delivery stage's contact rules in the delivery's details (QA: the rules read consents
  only from the data, whose `$customer.recipient` has none, so a consented marketing
  e-mail was suppressed and printed);
* a send that a branch of its journey reacts to when it bounces gets no plan fallbacks
  (QA: the delivery stage printed the bounced e-mail and the journey's letter step printed
  another), and the branch's `bounced` covers every end the fallback would have taken over.

Journeys on SQLite (test_journeys' stage), the composer and the outbox as plain functions.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime

from sqlalchemy import select

from archive.records import OutputRecord
from server.compose.composer import ComposeRequest, compose
from server.compose.model import Channel
from server.delivery.outbox import details_for
from server.delivery.rules import ContactRules
from server.events.publish import EventInput
from server.jobs.model import NO_OPTIONS, RecordOptions
from server.journeys.definition import JourneyCatalog
from server.journeys.engine import DID_NOT_REACH
from server.journeys.tables import sends
from tests.layouts import shipped
from tests.unit.test_journeys import BRANCHY, stage, write  # noqa: F401  (the fixture)

LAYOUT = shipped().get("welcome-letter", "2.0.0")
NOW = datetime(2026, 3, 2, 9, tzinfo=UTC)


def test_a_sends_job_record_carries_the_profiles_consents_and_its_bounce_ownership(
        stage, tmp_path):  # noqa: F811
    events, journeys, _, engine, jobs = stage
    write(tmp_path / "journeys", "t", "card", 1, BRANCHY)
    journeys.catalog = JourneyCatalog(tmp_path / "journeys")
    journeys.journeys.catalog = journeys.catalog
    events.publish([EventInput("t", "c1", "card_issued", json.dumps(
        {"card_id": "K1", "product": "Gull"}), attributes_json=json.dumps(
        {"consents": ["marketing", "email"], "opt_outs": ["sms"], "segment": "retail"}))])
    journeys.tick()
    with engine.begin() as conn:
        [row] = conn.execute(select(sends).where(sends.c.customer_id == "c1")).mappings()
    [record] = jobs.chunk_records(row["job_id"], 0, 50)
    assert record.record_key == row["send_id"]
    # the branch `outcome` reacts to step pin-info bouncing: no fallbacks for its document
    assert record.options == RecordOptions(consents=("email", "marketing"),
                                           opt_outs=("sms",), fallbacks=False)
    journey = journeys.catalog.get("t", "card", 1)
    assert journey.reacts_to_bounce(journey.step("pin-info"))
    assert not journey.reacts_to_bounce(journey.step("letter"))


def test_a_record_without_options_stores_none_and_options_read_back():
    assert RecordOptions.from_json(None) == NO_OPTIONS and NO_OPTIONS.to_json() is None
    options = RecordOptions(("marketing",), ("email",), False)
    assert RecordOptions.from_json(options.to_json()) == options


def test_the_senders_consents_and_opt_outs_reach_the_plan_and_the_contact_rules():
    data = json.loads((LAYOUT.path / "sample.json").read_text(encoding="utf-8"))
    data["customer"].pop("consents", None)

    def composed(**extra):
        return compose(ComposeRequest(tenant="t", layout=LAYOUT, data=json.dumps(data),
                                      document_id="01JTEST", now=NOW,
                                      channels=(Channel.EMAIL,), **extra))

    plain = composed()
    assert plain.recipient.consents == () and plain.channel_plan.fallbacks == (Channel.PRINT,)
    journeyed = composed(consents=("marketing", "email"), opt_outs=("sms",), fallbacks=False)
    assert journeyed.recipient.consents == ("marketing", "email")
    assert journeyed.recipient.opt_outs == ("sms",)
    assert journeyed.channel_plan.fallbacks == ()
    assert journeyed.input_sha256 == plain.input_sha256  # the same data, the same document

    record = OutputRecord("email", "k", "message/rfc822", "0" * 64, 1, None)
    rules = ContactRules.from_dict({})
    for composition, expected in ((plain, "no consent to marketing by email"), (journeyed, "")):
        details = details_for(composition, LAYOUT, record)
        decision = rules.decide(
            channel="email", kind="letter", marketing=True, legally_required=False,
            consents=details["consents"], opted_out=set(details.get("opt_outs", ())),
            country="NO", now=NOW, contacts_since=lambda since, marketing: 0)
        assert decision.reason == expected
    # an opt-out the sender knew is honoured by the rules like a recorded one
    details = details_for(composed(consents=("marketing",), opt_outs=("email",)), LAYOUT,
                          record)
    assert details["opt_outs"] == ["email"]
    decision = rules.decide(channel="email", kind="letter", marketing=True,
                            legally_required=False, consents=details["consents"],
                            opted_out=set(details["opt_outs"]), country="NO", now=NOW,
                            contacts_since=lambda since, marketing: 0)
    assert (decision.action, decision.reason) == ("suppress", "customer opted out of email")


def test_bounced_covers_every_end_a_fallback_would_have_taken_over():
    from server.delivery.model import HANDS_OVER, State

    assert {s.value for s in HANDS_OVER} | {State.FELL_BACK.value} == DID_NOT_REACH
