"""Journeys and the delivery stage together, end to end: a real Kanal (in-process, on a
PostgreSQL database of its own, embedded SeaweedFS, local bulk workers) whose journeys'
e-mails go through a private Postfix into Maildirs, and whose bounces come back as Postfix's
real DSNs. The journeys' clock is injected (moved by the tests, timers fired by hand); the
delivery stage runs on real time.

* the consents (and opt-outs) of the customer's profile, which the journey's contact policy
  checked, reach the delivery stage's contact rules for the journey's document: a marketing
  e-mail to a customer who consented in the profile is sent (QA: "no consent to marketing
  by email", then a letter), and an e-mail opt-out in the profile still stops it;
* a journey step whose branch reacts to a bounce owns that reaction: its bounced e-mail
  gets no print fallback of the delivery stage's, so the customer gets one letter, the
  journey's (QA: two).
* what the customer tells after the send was planned counts when it is sent: an e-mail held
  by quiet hours (Danish customers' e-mail is held here, for about three hours around the
  test's real time) is not sent once the profile opts out of e-mail or withdraws the
  marketing consent (it was: the document carried the profile as it was when planned).
"""

from __future__ import annotations

import json
import uuid
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import select

from kanal.v1 import events_pb2, events_pb2_grpc
from server.app import KanalServer
from server.compose.layouts import DEFAULT_LAYOUTS_DIR
from server.config import Settings
from server.delivery.model import State
from server.delivery.rules import HELD
from server.journeys.tables import sends
from tests.client import Keys, channel
from tests.integration.delivery_fixtures import (
    DkimKey,
    address,
    delivery_settings,
    fresh_database,
    mailbox_user,
    start_postfix,
    wait_for,
)
from tests.integration.events_api_fixtures import Clock

pytestmark = pytest.mark.integration

TENANT = "demo"
KEYS = Keys((TENANT, "producer"),)
T0 = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)  # 10:00 in Oslo: outside quiet hours
SENDER = json.loads((DEFAULT_LAYOUTS_DIR / "welcome-letter/2.0.0/sample.json").read_text()
                    )["sender"]
SEND = """
type = "send"
layout = "welcome-letter"
layout_version = "2.0.0"
channels = ["{channel}"]
[steps.data]
sender = "$customer.sender"
customer = "$customer.recipient"
[steps.data.letter]
date = "$trigger.occurred_date"
subject = "Kom i gang"
paragraphs = ["Kontoen din er klar."]
highlights = []
signatures = [{{ name = "Marte Lindahl", title = "Kundeservice" }}]
"""
HEAD = """
name = "{name}"
version = 1
trigger = "account_opened"
priority = 5
category = "marketing"
[[conditions]]
attribute = "segment"
in = ["{segment}"]
"""
# the shipped demo journey's e-mail step, sent at once (no wait, no branch)
WELCOME = HEAD.format(name="welcome", segment="retail") + """
[[steps]]
id = "mail"
""" + SEND.format(channel="email")
# the shipped demo journey with its bounce branch (QA's welcome-quick), without the wait
BRANCHED = HEAD.format(name="welcome-branched", segment="branched") + """
[[steps]]
id = "follow-up"
""" + SEND.format(channel="email") + """
[[steps]]
id = "outcome"
type = "branch"
on = "follow-up"
days = 1
bounced = "letter"
otherwise = "exit"
[[steps]]
id = "letter"
""" + SEND.format(channel="print")


# the delivery stage's quiet hours, on real time: Danish customers' e-mail is held from
# 90 minutes before the module starts to 90 minutes after (everyone else's goes at once)
_COPENHAGEN = datetime.now(ZoneInfo("Europe/Copenhagen"))
DANISH_EMAIL_HELD = {"quiet_hours": {"email": {"countries": {"DK": {
    "start": f"{_COPENHAGEN - timedelta(minutes=90):%H:%M}",
    "end": f"{_COPENHAGEN + timedelta(minutes=90):%H:%M}"}}}}}
DANISH_ADDRESS = {"lines": ["Nørregade 7"], "postal_code": "1165", "city": "København K",
                  "country": "DK"}


@pytest.fixture(scope="module")
def postfix():
    postfix = start_postfix()
    yield postfix
    postfix.remove()


@pytest.fixture(scope="module")
def kanal(tmp_path_factory, pg_url, postfix):
    tmp = tmp_path_factory.mktemp("journey-deliveries")
    for name, text in (("welcome", WELCOME), ("welcome-branched", BRANCHED)):
        folder = tmp / "journeys" / TENANT / name
        folder.mkdir(parents=True)
        (folder / "1.toml").write_text(text)
    clock = Clock(T0)
    for database in fresh_database(pg_url):
        settings = Settings(
            listen="127.0.0.1:0", state_dir=tmp / "state", api_keys=KEYS.api_keys,
            index_url=database, render_workers=0,
            journeys={"dir": str(tmp / "journeys"), "poll_seconds": 3600,
                      "policy": {"daily_max": 3}},
            delivery=delivery_settings(postfix, DkimKey(tmp), rules=DANISH_EMAIL_HELD))
        with KanalServer(settings, clock=clock) as server:
            yield server, clock


def account_opened(server: KanalServer, customer: str, email: str, segment: str,
                   recipient: dict | None = None, **attributes) -> None:
    profile = {"segment": segment, "country": "NO", "sender": SENDER, "recipient": {
        "customer_id": customer, "name": "Kari Nordmann", "email": email,
        "address": {"lines": ["Kjøpmannsgata 22"], "postal_code": "7013",
                    "city": "TRONDHEIM", "country": "NO"}, **(recipient or {})},
        **attributes}
    with channel(server.address, KEYS[TENANT, "producer"]) as ch:
        started = events_pb2_grpc.EventsStub(ch).PublishEvent(events_pb2.PublishEventRequest(
            customer_id=customer, event_type="account_opened",
            data_json=json.dumps({"account_id": f"A-{customer}", "product": "ASK"}),
            attributes_json=json.dumps(profile)))
    assert started.journeys_started == 1


def document_of(server: KanalServer, customer: str, step: str) -> str:
    """The document the journey's `step` made for `customer`, once it is indexed."""
    def indexed() -> str | None:
        with server.index.engine.begin() as conn:
            document = conn.execute(select(sends.c.document_id).where(
                sends.c.tenant == TENANT, sends.c.customer_id == customer,
                sends.c.step == step)).scalar()
        return document if document and server.index.get(TENANT, document) else None
    return wait_for(indexed, f"the document of step {step}")


def settled(server: KanalServer, document: str, channel_: str, states: set[State]):
    return wait_for(lambda: next((d for d in server.delivery.for_document(TENANT, document)
                                  if d.channel == channel_ and d.state in states), None),
                    f"the {channel_} delivery of {document} in {sorted(states)}")


def test_the_profiles_consents_reach_the_delivery_stage_and_its_opt_outs_still_stop(
        kanal, postfix):
    server, _ = kanal
    run = uuid.uuid4().hex[:6]
    consented, opted_out = f"jr-{run}", f"jo-{run}"
    user = mailbox_user()
    # consents in the profile only: the data's recipient (`$customer.recipient`) has none
    account_opened(server, consented, address(user), "retail",
                   consents=["marketing", "email"])
    account_opened(server, opted_out, address(mailbox_user()), "retail",
                   consents=["marketing", "email"], opt_outs=["email"])
    server.journeys.tick()
    mail = document_of(server, consented, "mail")
    sent = settled(server, mail, "email", {State.SENT, State.DELIVERED, State.SUPPRESSED})
    assert sent.state in (State.SENT, State.DELIVERED), sent.reason
    assert wait_for(lambda: postfix.messages(user), "the e-mail in the Maildir")
    assert [d.channel for d in server.delivery.for_document(TENANT, mail)] == ["email"]
    # the profile's e-mail opt-out travels with the document too: suppressed, and the
    # plan's print fallback (this step has no bounce branch) takes over
    stopped = document_of(server, opted_out, "mail")
    suppressed = settled(server, stopped, "email", {State.SUPPRESSED, State.FELL_BACK,
                                                     State.SENT, State.DELIVERED})
    assert suppressed.state in (State.SUPPRESSED, State.FELL_BACK)
    assert suppressed.reason.startswith("customer opted out of email"), suppressed.reason
    settled(server, stopped, "print", set(State))


def test_a_bounced_journey_email_becomes_one_letter_the_journeys(kanal):
    server, clock = kanal
    customer = f"jb-{uuid.uuid4().hex[:6]}"
    gone = f"gone-{uuid.uuid4().hex[:10]}@example.no"  # Postfix accepts it, then bounces
    # consents in the data's recipient as well: this test is about the bounce alone
    account_opened(server, customer, gone, "branched", consents=["marketing", "email"],
                   recipient={"consents": ["marketing", "email"]})
    server.journeys.tick()
    mail = document_of(server, customer, "follow-up")
    settled(server, mail, "email", {State.BOUNCED, State.FELL_BACK})
    clock.now = T0 + timedelta(days=1, minutes=1)
    server.journeys.tick()  # the branch: bounced -> the journey's letter
    letter = document_of(server, customer, "letter")
    settled(server, letter, "print", set(State))
    prints = [d for document in (mail, letter)
              for d in server.delivery.for_document(TENANT, document) if d.channel == "print"]
    assert [d.document_id for d in prints] == [letter]
    # the step's branch owns the reaction: its document has no fallback of its own
    [email] = server.delivery.for_document(TENANT, mail)
    assert email.state == State.BOUNCED and "5.1.1" in email.reason, email.reason
    assert server.index.get(TENANT, mail).channel_plan == "email"


def test_an_opt_out_or_a_withdrawn_consent_told_after_the_send_stops_the_waiting_email(
        kanal, postfix):
    server, _ = kanal
    run = uuid.uuid4().hex[:6]
    opts_out, withdraws = f"jq-{run}", f"jw-{run}"
    users = {opts_out: mailbox_user(), withdraws: mailbox_user()}
    for customer, user in users.items():
        account_opened(server, customer, address(user), "retail", country="DK",
                       consents=["marketing", "email"], recipient={"address": DANISH_ADDRESS})
    server.journeys.tick()
    held = {}
    for customer in users:
        document = document_of(server, customer, "mail")
        held[customer] = wait_for(lambda document=document: next((
            d for d in server.delivery.for_document(TENANT, document)
            if d.channel == "email" and d.reason.startswith(HELD)), None),
            f"{customer}'s e-mail held by the quiet hours")
        assert held[customer].state == State.QUEUED
    # after the send was planned, the customer tells the bank (an event's attributes)
    told = {opts_out: {"opt_outs": ["email"]}, withdraws: {"consents": ["email"]}}
    with channel(server.address, KEYS[TENANT, "producer"]) as ch:
        for customer, attributes in told.items():
            events_pb2_grpc.EventsStub(ch).PublishEvent(events_pb2.PublishEventRequest(
                customer_id=customer, event_type="complaint_registered",
                data_json=json.dumps({"case_id": f"K-{customer}", "topic": "marketing"}),
                attributes_json=json.dumps(attributes)))
    # the waiting e-mails are due again: the rules decide at send time, on what is told now
    server.delivery.store.due_now([d.delivery_id for d in held.values()], datetime.now(UTC))
    server.delivery.notify()
    reasons = {opts_out: "customer opted out of email",
               withdraws: "no consent to marketing by email"}
    for customer, delivery in held.items():
        stopped = settled(server, delivery.document_id, "email",
                          {State.SUPPRESSED, State.FELL_BACK, State.SENT, State.DELIVERED})
        assert stopped.state in (State.SUPPRESSED, State.FELL_BACK), stopped.reason
        assert stopped.reason.startswith(reasons[customer]), stopped.reason
        assert not postfix.messages(users[customer])
