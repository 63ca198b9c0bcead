"""A payment reminder is dated after the invoice's due date, its fee and its late interest
agree with the dates (server/compose/builders/reminder.py, [reminder.law.<CC>] in the
payment-reminder manifest).

QA H3: a reminder dated 2026-01-10 for an invoice due 2026-01-26 composed, and the letter
said the invoice had fallen due on 26.01.2026, charged a 35 kr fee and 14 days' interest.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from server.compose.composer import ComposeRequest, compose
from server.compose.model import Composition
from server.errors import InvalidInput
from tests.layouts import shipped

LAYOUTS = shipped()
NOW = datetime(2026, 3, 2, 8, 0, tzinfo=UTC)
REMINDER = LAYOUTS.get("payment-reminder")


def sample(name: str = "sample.json", version: str | None = None) -> dict[str, Any]:
    layout = LAYOUTS.get("payment-reminder", version) if version else REMINDER
    return json.loads((layout.path / name).read_text(encoding="utf-8"))


def run(data: dict[str, Any], version: str | None = None, now: datetime = NOW,
        locale: str | None = None) -> Composition:
    layout = LAYOUTS.get("payment-reminder", version) if version else REMINDER
    return compose(ComposeRequest(tenant="fjordbank", layout=layout, data=json.dumps(data),
                                  document_id="01JTEST", now=now, locale=locale))


def refused(data: dict[str, Any], **kwargs: Any) -> list[tuple[str, str]]:
    with pytest.raises(InvalidInput) as info:
        run(data, **kwargs)
    return [(v.field, v.description) for v in info.value.violations]


@pytest.mark.parametrize("version", ["1.0.0", "2.0.0"])
@pytest.mark.parametrize("notice_date", ["2026-01-10", "2026-01-26"])
def test_a_reminder_dated_on_or_before_the_due_date_is_refused(version, notice_date):
    data = sample(version=version)  # invoice due 2026-01-26
    data["reminder"]["date"] = notice_date
    [(field, why)] = refused(data, version=version)
    assert field == "$.reminder.date"
    assert why.startswith(f"{notice_date} is not after the invoice's due date 2026-01-26")
    assert "2026-01-27 at the earliest" in why


def test_the_refusal_names_the_governing_law_of_each_country():
    cases = {"sample.json": "inkassoloven § 9", "sample-sv-SE.json": "lag (1981:739)",
             "samples/da-DK.json": "renteloven § 3", "samples/fi-FI.json": "korkolaki",
             "samples/de-DE.json": "BGB § 286 Abs. 1", "samples/de-AT.json": "ABGB",
             "samples/pl-PL.json": "Kodeks cywilny art. 476",
             "samples/en-GB.json": "Consumer Credit Act 1974"}
    for name, law in cases.items():
        data = sample(name)
        data["reminder"]["date"] = data["invoice"]["due_date"]
        [(field, why)] = refused(data)
        assert field == "$.reminder.date" and law in why, (name, why)


def test_without_a_date_the_composition_date_must_be_after_the_due_date():
    data = sample()
    del data["reminder"]["date"]
    data["reminder"]["new_due_date"] = "2026-02-10"
    [(field, why)] = refused(data, now=datetime(2026, 1, 20, 9, tzinfo=UTC))
    assert field == "$.reminder.date" and "(no date given: the composition date)" in why


def test_the_day_after_the_due_date_is_the_first_day_a_reminder_without_fee_may_have():
    data = sample()
    data["reminder"].update(date="2026-01-27", fee="0", interest={"rate_percent": "12.50",
                                                                  "days": 1})
    composition = run(data)
    assert composition.context["notice"]["date"] == "27.01.2026"
    assert composition.context["claim"]["fee"] is None


@pytest.mark.parametrize(("name", "law"), [("sample.json", "Inkassoforskriften"),
                                           ("samples/fi-FI.json", "513/1999")])
def test_a_fee_needs_fourteen_days_after_the_due_date_in_norway_and_finland(name, law):
    data = sample(name)  # due 2026-01-26, dated 2026-02-09: 14 days, the fee is allowed
    assert run(data).amount_due is not None
    data["reminder"].update(date="2026-02-08", interest={"rate_percent": "9.50", "days": 13})
    [(field, why)] = refused(data)
    assert field == "$.reminder.fee" and "not before 2026-02-09" in why and law in why


def test_a_fee_soon_after_the_due_date_is_allowed_where_no_waiting_time_is_set():
    data = sample("samples/da-DK.json")
    data["reminder"].update(date="2026-01-28", interest={"rate_percent": "10.10", "days": 2})
    assert run(data).context["claim"]["fee"] is not None


def test_interest_for_more_days_than_the_invoice_is_overdue_is_refused():
    data = sample()  # due 2026-01-26, dated 2026-02-09: 14 days overdue
    data["reminder"]["interest"]["days"] = 15
    [(field, why)] = refused(data)
    assert field == "$.reminder.interest.days"
    assert "15 days of interest" in why and "is 14 days overdue" in why
    data["reminder"]["interest"]["days"] = 14
    assert run(data).context["claim"]["interest"] is not None


@pytest.mark.parametrize("version", ["1.0.0", "2.0.0"])
@pytest.mark.parametrize("issue_date, due_date, field, why", [
    ("2026-12-02", "2026-01-26", "$.invoice.issue_date",
     "2026-12-02 is after the due date 2026-01-26 ($.invoice.due_date), and after the "
     "reminder's date 2026-02-09: an invoice is issued on or before its due date, and before "
     "it is reminded of"),
    ("2026-01-02", "2025-12-26", "$.invoice.due_date",
     "2025-12-26 is before the issue date 2026-01-02 ($.invoice.issue_date): a due date is on "
     "or after the day the invoice is issued"),
], ids=["issue date mistyped", "due date mistyped"])
def test_an_invoice_issued_after_its_due_date_is_refused_at_the_date_mistyped(
        version, issue_date, due_date, field, why):
    """QA T7: a reminder for an invoice dated 2026-12-02 (typed for 2026-01-02), due
    2026-01-26, was refused at the due date, "must not be before issue_date"."""
    data = sample(version=version)  # reminder dated 2026-02-09
    data["invoice"].update(issue_date=issue_date, due_date=due_date)
    assert refused(data, version=version) == [(field, why)]


@pytest.mark.parametrize("version", ["1.0.0", "2.0.0", None])
@pytest.mark.parametrize("name", ["sample.json", "sample-sv-SE.json"])
def test_a_new_due_date_on_the_reminders_own_day_is_refused(version, name):
    # was accepted: "pay by 09.02.2026" on a reminder dated 09.02.2026 gives no time to pay
    data = sample(name, version=version)
    data["reminder"]["new_due_date"] = data["reminder"]["date"]
    day = data["reminder"]["date"]
    [(field, why)] = refused(data, version=version)
    assert field == "$.reminder.new_due_date"
    assert why.startswith(f"{day} is not after the reminder's date {day}: "), why
    assert "at the earliest" in why
    data["reminder"]["new_due_date"] = (datetime.fromisoformat(day)
                                        + timedelta(days=1)).date().isoformat()
    assert run(data, version=version).due_date.isoformat() == data["reminder"]["new_due_date"]


def test_without_a_date_the_new_due_date_must_be_after_the_composition_date():
    data = sample()
    del data["reminder"]["date"]
    data["reminder"]["new_due_date"] = "2026-03-02"  # NOW's day
    [(field, why)] = refused(data)
    assert field == "$.reminder.new_due_date"
    assert "2026-03-02 (no date given: the composition date)" in why, why


def test_a_swedish_collection_notice_due_on_its_own_day_is_refused():
    # Sweden's [reminder.law.SE] sets no least time for a collection notice; the day after
    # the notice is still the earliest due date
    data = sample("sample-sv-SE.json")
    data["reminder"].update(stage="collection_notice", new_due_date=data["reminder"]["date"])
    [(field, why)] = refused(data)
    assert field == "$.reminder.new_due_date" and "is not after the reminder's date" in why
