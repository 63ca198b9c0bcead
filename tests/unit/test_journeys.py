"""Journeys on SQLite with an injected clock: journey files checked on load, the contact
policy's decisions (consent, caps, priorities, quiet hours, never-capped service), the engine's
waits, exits and at-most-once sends, and event data checked against its type's schema."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import create_engine, select

from server.delivery.tables import metadata as delivery_metadata
from server.errors import Conflict, InvalidInput
from server.events.publish import EventInput, EventService, json_text, publish_event
from server.events.types import EventTypes
from server.jobs.store import JobStore
from server.journeys.definition import JourneyCatalog, JourneyError, load_journey
from server.journeys.engine import resolve
from server.journeys.policy import ContactPolicy, ContactRequest, PolicySettings
from server.journeys.stage import JourneyStage
from server.journeys.tables import instances, sends, suppressions
from tests.layouts import shipped

T0 = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)  # 10:00 in Oslo
TYPES = EventTypes()

GOOD = """
name = "follow"
version = 1
trigger = "account_opened"
category = "marketing"
[[steps]]
id = "wait"
type = "wait"
days = 14
unless = ["first_deposit"]
[[steps]]
id = "mail"
type = "send"
layout = "welcome-letter"
[steps.data]
customer = "$customer.recipient"
"""


class Clock:
    def __init__(self) -> None:
        self.now = T0

    def __call__(self) -> datetime:
        return self.now


def write(root: Path, tenant: str, name: str, version: int, text: str) -> Path:
    path = root / tenant / name / f"{version}.toml"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    return path


@pytest.fixture
def stage(tmp_path):
    write(tmp_path / "journeys", "t", "follow", 1, GOOD)
    engine = create_engine(f"sqlite:///{tmp_path / 'index.db'}")
    with engine.begin() as conn:
        delivery_metadata.create_all(conn)
    clock = Clock()
    events = EventService(engine, TYPES, clock=clock)
    events.create_schema()
    jobs = JobStore(f"sqlite:///{tmp_path / 'index.db'}")
    jobs.create_schema()
    journeys = JourneyStage({"dir": str(tmp_path / "journeys")}, engine, events,
                            shipped(), jobs, clock=clock)
    journeys.create_schema()
    return events, journeys, clock, engine, jobs


# --- journey files -----------------------------------------------------------------------------

def test_a_bad_journey_file_names_the_file_and_every_problem(tmp_path):
    path = write(tmp_path, "t", "broken", 1, """
name = "broken"
version = 2
trigger = "account_openned"
[[steps]]
id = "mail"
type = "send"
layout = "no-such-layout"
[[steps]]
id = "check"
type = "branch"
on = "nowhere"
delivered = "gone"
""")
    with pytest.raises(JourneyError) as raised:
        load_journey(path, tenant="t", event_known=lambda t: t in TYPES,
                     layout_known=lambda i, v: None if i == "welcome-letter" else "unknown")
    message = str(raised.value)
    assert message.startswith(str(path))
    for part in ("version: must be 1 (the file's name), not 2",
                 "trigger: unknown event type 'account_openned'",
                 "steps[0].layout: unknown", "steps[1].delivered: no step 'gone'",
                 "steps[1].on: must name a send step, not 'nowhere'"):
        assert part in message


def test_bad_toml_and_a_bad_file_name_are_load_errors(tmp_path):
    path = write(tmp_path, "t", "x", 1, "name = [")
    with pytest.raises(JourneyError, match="not valid TOML"):
        load_journey(path, tenant="t")
    path = write(tmp_path, "t", "x", 1, "").with_name("v1.toml")
    path.write_text(GOOD)
    with pytest.raises(JourneyError, match="must be the version"):
        load_journey(path, tenant="t")


def test_a_server_does_not_start_with_a_bad_journey(tmp_path):
    write(tmp_path / "journeys", "t", "follow", 1, GOOD.replace('"wait"\ndays', '"sleep"\ndays'))
    engine = create_engine("sqlite://")
    events = EventService(engine, TYPES)
    with pytest.raises(JourneyError, match=r"steps\[0\].type: one of wait, send, branch, exit"):
        JourneyStage({"dir": str(tmp_path / "journeys")}, engine, events, shipped(),
                     JobStore(f"sqlite:///{tmp_path / 'jobs.db'}"))


def test_the_newest_version_takes_new_customers(tmp_path):
    root = tmp_path / "j"
    write(root, "t", "follow", 1, GOOD)
    write(root, "t", "follow", 2, GOOD.replace("version = 1", "version = 2"))
    catalog = JourneyCatalog(root)
    assert [j.version for j in catalog.triggered_by("t", "account_opened")] == [2]
    assert catalog.get("t", "follow", 1) is not None  # running instances finish on theirs


def test_step_data_takes_values_from_the_trigger_and_the_profile():
    data = resolve({"a": "$trigger.data.amount", "b": ["$customer.name", "$$5"], "c": 1,
                    "d": "$customer.missing.deep"},
                   {"trigger": {"data": {"amount": "10.00"}}, "customer": {"name": "Kari"}})
    assert data == {"a": "10.00", "b": ["Kari", "$5"], "c": 1, "d": None}


# --- events --------------------------------------------------------------------------------------

def test_event_data_errors_name_their_json_path():
    with pytest.raises(InvalidInput) as raised:
        TYPES.parse("payment_missed", json.dumps(
            {"invoice_id": "1", "amount": "12,50", "currency": "nok", "due_date": "2026-01-01"}))
    assert sorted(v.field for v in raised.value.violations) == ["data.$.amount",
                                                                "data.$.currency"]
    with pytest.raises(InvalidInput) as raised:
        TYPES.parse("pin_sent", '{"card_id": "1", "via": "app", "via": "sms"}')
    assert raised.value.violations[0].field == "data"


def test_an_idempotency_key_is_one_event(stage):
    events, *_ = stage
    item = EventInput("t", "c1", "pin_sent", '{"card_id": "K", "via": "app"}',
                      idempotency_key="k1")
    [first] = events.publish([item])
    [again] = events.publish([item])
    assert again.replayed and again.event.event_id == first.event.event_id
    with pytest.raises(Conflict):
        events.publish([EventInput("t", "c1", "pin_sent", '{"card_id": "X", "via": "app"}',
                                   idempotency_key="k1")])
    # without a key, the content is the key
    [a] = events.publish([EventInput("t", "c1", "pin_sent", '{"card_id": "Z", "via": "app"}',
                                     occurred_at=T0)])
    [b] = events.publish([EventInput("t", "c1", "pin_sent", '{"via": "app", "card_id": "Z"}',
                                     occurred_at=T0)])
    assert b.replayed and a.event.event_id == b.event.event_id


def test_an_event_stored_under_older_limits_is_still_read(stage):
    # accepted before U+200B was refused at intake (an older server): a replay, and a journey
    # reading the trigger's data, read it as stored instead of failing on it
    from sqlalchemy import update

    from server.events.tables import events as events_table

    events, _, _, engine, _ = stage
    item = EventInput("t", "c1", "pin_sent", '{"card_id": "K", "via": "app"}',
                      idempotency_key="old")
    [first] = events.publish([item])
    with engine.begin() as conn:
        conn.execute(update(events_table).where(events_table.c.event_id == first.event.event_id)
                     .values(data='{"card_id": "K\u200b", "via": "app"}'))
    [again] = events.publish([item])
    assert again.replayed and again.event.data == {"card_id": "K\u200b", "via": "app"}


def test_publish_event_for_other_stages_keeps_decimals_exact(stage):
    from decimal import Decimal

    events, *_ = stage
    assert json_text({"x": Decimal("0.10")}) == '{"x":0.10}'
    published = publish_event(events, tenant="t", customer_id="c", event_type="first_deposit",
                              data={"account_id": "A", "amount": "0.10", "currency": "NOK"})
    assert published.event.data["amount"] == "0.10"


# --- the engine --------------------------------------------------------------------------------

def opened(events, customer: str, at: datetime, **attributes):
    return events.publish([EventInput(
        "t", customer, "account_opened", '{"account_id": "A", "product": "ASK"}',
        occurred_at=at, attributes_json=json.dumps(
            {"consents": ["marketing"], "recipient": {"customer_id": customer},
             **attributes}))])[0]


def planned(engine, customer: str) -> list:
    with engine.begin() as conn:
        return list(conn.execute(select(sends).where(sends.c.customer_id == customer)).mappings())


def test_the_wait_ends_when_the_unless_event_comes_even_when_it_is_replayed_late(stage):
    events, journeys, clock, engine, _ = stage
    opened(events, "late", T0)
    # first_deposit stored without passing through the instance (as a late replay would)
    events.listeners.clear()
    clock.now = T0 + timedelta(days=2)
    events.publish([EventInput("t", "late", "first_deposit",
                               '{"account_id": "A", "amount": "1", "currency": "NOK"}',
                               occurred_at=T0 + timedelta(days=1))])
    clock.now = T0 + timedelta(days=15)
    result = journeys.journeys.run_due()
    assert result.exited == 1 and planned(engine, "late") == []


def test_a_step_communicates_once_and_becomes_a_bulk_job_record(stage):
    events, journeys, clock, engine, jobs = stage
    opened(events, "c1", T0)
    clock.now = T0 + timedelta(days=14)
    journeys.journeys.run_due()
    journeys.journeys.run_due()
    [row] = planned(engine, "c1")
    assert row["state"] == "planned" and json.loads(row["data"]) == {
        "customer": {"customer_id": "c1"}}
    assert journeys.submitter.flush() == 1
    assert journeys.submitter.flush() == 0
    [row] = planned(engine, "c1")
    job = jobs.get(row["job_id"])
    assert (job.header.layout_id, job.total, row["state"]) == ("welcome-letter", 1, "submitted")
    # replaying the trigger starts nothing
    assert events.replay() == (1, 0)


def test_an_interrupted_hand_over_is_finished_with_the_promised_document_id(stage):
    events, journeys, clock, engine, jobs = stage
    opened(events, "c2", T0)
    clock.now = T0 + timedelta(days=14)
    journeys.journeys.run_due()
    submitter = journeys.submitter
    [row] = planned(engine, "c2")
    job_id = submitter._reserve([row["send_id"]], "2.0.0")  # crash after step 1
    [reserved] = planned(engine, "c2")
    assert submitter.flush() == 0  # perhaps another server's, still at work
    clock.now += timedelta(minutes=6)
    assert submitter.flush() == 1
    [done] = planned(engine, "c2")
    assert (done["job_id"], done["document_id"]) == (job_id, reserved["document_id"])
    assert jobs.get(job_id).total == 1


def test_quiet_hours_hold_a_marketing_send_until_morning_in_the_customers_zone(stage):
    events, journeys, clock, engine, _ = stage
    opened(events, "night", T0 - timedelta(days=14) + timedelta(hours=12))  # due 22:00 Oslo
    clock.now = T0 + timedelta(hours=12)
    result = journeys.journeys.run_due()
    assert result.held == 1 and planned(engine, "night") == []
    clock.now = T0 + timedelta(hours=22, minutes=1)  # 08:01 Oslo the next morning
    assert journeys.journeys.run_due().sends == 1


def test_marketing_without_consent_is_suppressed_with_its_reason(stage):
    events, journeys, clock, engine, _ = stage
    opened(events, "nc", T0, consents=[])
    clock.now = T0 + timedelta(days=14)
    assert journeys.journeys.run_due().suppressed == 1
    with engine.begin() as conn:
        [row] = conn.execute(select(suppressions)).mappings().all()
        [instance] = conn.execute(select(instances)).mappings().all()
    assert row["reason"] == "no consent to marketing" and row["customer_id"] == "nc"
    assert instance["state"] == "completed"


def policy_check(engine, request, attributes, now=T0, **settings):
    policy = ContactPolicy(PolicySettings.from_dict(settings), engine)
    with engine.begin() as conn:
        return policy.check(conn, request, now, attributes)


def test_service_and_legal_messages_are_never_capped(stage):
    *_, engine, _ = stage
    policy = ContactPolicy(PolicySettings(), engine)
    for n in range(5):
        decision = policy.check_and_record(ContactRequest("t", "svc", "service", f"s{n}"),
                                           T0.replace(hour=23), {"opt_outs": ["marketing"]})
        assert decision.action == "send"
    survey = policy.check_and_record(ContactRequest("t", "svc", "survey", "nps"), T0, {})
    assert survey.action == "send"  # service messages do not count against a survey
    again = policy.check_and_record(ContactRequest("t", "svc", "survey", "nps"),
                                    T0 + timedelta(days=89), {})
    assert again.action == "suppress" and "frequency cap survey" in again.reason


def test_policy_settings_are_checked():
    with pytest.raises(ValueError, match="only marketing and survey can be capped"):
        PolicySettings.from_dict({"caps": {"service": {"max": 1, "days": 1}}})
    with pytest.raises(ValueError, match="default_zone"):
        PolicySettings.from_dict({"default_zone": "Mars/Olympus"})


def test_kanal_journeys_check_names_every_problem_and_fails(tmp_path, capsys):
    from server.cli import main

    write(tmp_path / "bad", "t", "x", 1, 'name = "x"\nversion = 1\ntrigger = "nope"\n')
    assert main(["journeys", "check", "--dir", str(tmp_path / "bad"),
                 "--state-dir", str(tmp_path / "state")]) == 1
    err = capsys.readouterr().err
    assert "trigger: unknown event type 'nope'" in err and "steps: at least one" in err
    assert main(["events", "replay", "--state-dir", str(tmp_path / "state")]) == 0
    assert "replayed 0 events" in capsys.readouterr().err


BRANCHY = """
name = "card"
version = 1
trigger = "card_issued"
category = "service"
reentry = "every"
[[steps]]
id = "pin-info"
type = "send"
layout = "welcome-letter"
[[steps]]
id = "outcome"
type = "branch"
on = "pin-info"
days = 3
clicked = "thanks"
bounced = "letter"
otherwise = "exit"
[[steps]]
id = "letter"
type = "send"
layout = "welcome-letter"
channels = ["print"]
next = "exit"
[[steps]]
id = "thanks"
type = "exit"
"""


def card_issued(events, customer: str, card: str):
    return events.publish([EventInput("t", customer, "card_issued",
                                      json.dumps({"card_id": card, "product": "Gull"}))])[0]


def test_a_branch_follows_what_happened_to_an_earlier_send(stage, tmp_path):
    events, journeys, clock, engine, _ = stage
    write(tmp_path / "journeys", "t", "card", 1, BRANCHY)
    journeys.catalog = JourneyCatalog(tmp_path / "journeys")  # reload with the new file
    journeys.journeys.catalog = journeys.catalog
    card_issued(events, "clicker", "K1")
    card_issued(events, "bouncer", "K2")
    card_issued(events, "silent", "K3")
    journeys.tick()
    documents = {r["customer_id"]: r["document_id"] for r in
                 planned(engine, "clicker") + planned(engine, "bouncer") + planned(engine,
                                                                                   "silent")}
    assert all(documents.values()) and len(documents) == 3
    events.publish([EventInput("t", "clicker", "link_clicked",
                               json.dumps({"document_id": documents["clicker"]}))])
    from server.delivery.tables import deliveries

    with engine.begin() as conn:  # the delivery stage's row for the bounced e-mail
        conn.execute(deliveries.insert().values(
            delivery_id="01" + "0" * 24, tenant="t", document_id=documents["bouncer"],
            customer_id="bouncer", kind="letter", channel="email", provider="relay",
            recipient="x@example.no", archive_key="k", sha256="0" * 64,
            media_type="message/rfc822", message_id="m", state="bounced", state_at=clock.now,
            created_at=clock.now, expires_at=clock.now))
    clock.now += timedelta(days=3)
    journeys.tick()
    steps = {c: [r["step"] for r in planned(engine, c)] for c in documents}
    assert steps == {"clicker": ["pin-info"], "bouncer": ["pin-info", "letter"],
                     "silent": ["pin-info"]}
    with engine.begin() as conn:
        ended = {r["customer_id"]: (r["state"], r["reason"]) for r in conn.execute(
            select(instances).where(instances.c.journey == "card")).mappings()}
    assert ended["clicker"] == ("completed", "finished at step thanks")
    assert ended["bouncer"] == ("completed", "finished at step letter")
    assert ended["silent"] == ("completed", "finished at step outcome")


def test_campaigns_sent_outside_the_journeys_count_against_the_marketing_cap(stage):
    from server.delivery.tables import deliveries

    *_, engine, _ = stage
    policy = ContactPolicy(PolicySettings(daily_max=9), engine)
    with engine.begin() as conn:
        for n in range(2):  # two campaign e-mails sent by a bulk job last week
            conn.execute(deliveries.insert().values(
                delivery_id=f"01{n:024d}", tenant="t", document_id=f"campaign-{n}",
                customer_id="m", kind="letter", channel="email", provider="relay",
                recipient="x@example.no", archive_key="k", sha256="0" * 64,
                media_type="message/rfc822", message_id="m", state="delivered",
                state_at=T0 - timedelta(days=7), created_at=T0, expires_at=T0,
                details=json.dumps({"marketing": n == 0})))
    request = ContactRequest("t", "m", "marketing", "journey:x@1:y")
    first = policy.check_and_record(request, T0, {"consents": ["marketing"]})
    second = policy.check_and_record(request, T0, {"consents": ["marketing"]})
    assert first.action == "send"  # one marketing campaign + this one = 2 in 14 days
    assert second.action == "suppress" and "2 of 2 in 14 days" in second.reason


def test_an_event_from_the_future_is_refused(stage):
    events, *_ = stage
    with pytest.raises(InvalidInput) as raised:
        events.publish([EventInput("t", "c", "pin_sent", '{"card_id": "K", "via": "app"}',
                                   occurred_at=T0 + timedelta(days=2))])
    assert raised.value.violations[0].field == "occurred_at"


def test_the_shipped_example_journeys_load():
    from server.journeys.stage import DEFAULT_JOURNEYS_DIR, layout_check

    catalog = JourneyCatalog(DEFAULT_JOURNEYS_DIR, event_known=lambda t: t in TYPES,
                             layout_known=layout_check(shipped()))
    assert [j.ref for j in catalog.triggered_by("demo", "account_opened")] == [
        "broker-follow-up@1"]
