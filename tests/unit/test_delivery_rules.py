"""Contact rules at send time: consent, opt-out, frequency caps, quiet hours."""

from __future__ import annotations

from datetime import UTC, datetime, time
from zoneinfo import ZoneInfo

from server.delivery.rules import ContactRules, CurrentContacts, Window, country_of

RULES = ContactRules.from_dict({
    "caps": {"marketing": {"max": 1, "days": 14}, "letter": {"max": 2, "days": 30},
             "invoice": {"max": 0, "days": 30}},
    "quiet_hours": {"sms": {"start": "21:00", "end": "08:00",
                            "countries": {"DE": {"start": "20:00", "end": "09:00"}}}},
})


def decide(channel="email", kind="letter", marketing=False, legally_required=False,
           consents=("email", "sms"), opted_out=frozenset(), country="NO",
           now=datetime(2026, 11, 30, 12, 0, tzinfo=UTC), sent=0):
    seen = []

    def contacts_since(since, is_marketing):
        seen.append((since, is_marketing))
        return sent
    decision = RULES.decide(channel=channel, kind=kind, marketing=marketing,
                            legally_required=legally_required, consents=consents,
                            opted_out=set(opted_out), country=country, now=now,
                            contacts_since=contacts_since)
    return decision, seen


def test_a_channel_opt_out_suppresses_and_hands_over_to_the_next_channel() -> None:
    decision, _ = decide(opted_out={"email"}, kind="invoice")
    assert decision.action == "suppress" and decision.fallback
    assert "opted out of email" in decision.reason


def test_marketing_needs_consent_and_no_marketing_opt_out() -> None:
    assert decide(marketing=True, consents=("email",))[0].action == "suppress"
    assert decide(marketing=True, consents=("email", "marketing"),
                  opted_out={"marketing"})[0].action == "suppress"
    assert not decide(marketing=True, consents=("email", "marketing"),
                      opted_out={"marketing"})[0].fallback


def test_a_marketing_letter_on_paper_needs_no_consent_but_respects_an_opt_out() -> None:
    """Post is opt-out, electronic mail opt-in (ePrivacy art. 13): a welcome letter with a
    campaign is printed without a marketing consent; by e-mail, SMS or mailbox it is not,
    and the plan's next channel takes over."""
    assert decide(channel="print", marketing=True, consents=())[0].action == "send"
    assert decide(channel="print", marketing=True, consents=(),
                  opted_out={"marketing"})[0].action == "suppress"
    for channel in ("email", "sms", "mailbox"):
        refused = decide(channel=channel, marketing=True, consents=(channel,))[0]
        assert refused.action == "suppress" and refused.fallback, channel
    assert decide(marketing=True, consents=("email", "marketing"))[0].action == "send"


def test_frequency_caps_per_kind_and_for_marketing() -> None:
    decision, seen = decide(kind="letter", sent=2)
    assert decision.action == "suppress" and "frequency cap letter: 2 of 2 in 30 days" in (
        decision.reason)
    assert seen[0][0] == datetime(2026, 10, 31, 12, 0, tzinfo=UTC)
    assert decide(kind="letter", sent=1)[0].action == "send"
    capped, seen = decide(kind="letter", marketing=True, consents=("marketing",), sent=1)
    assert capped.action == "suppress" and "marketing" in capped.reason and seen[0][1] is True


def test_a_cap_never_suppresses_an_invoice_or_a_legally_required_notice() -> None:
    for kind in ("invoice", "credit_note", "reminder", "statement"):
        assert decide(kind=kind, sent=99)[0].action == "send", kind
    assert decide(kind="letter", legally_required=True, sent=99)[0].action == "send"


def test_sms_quiet_hours_hold_until_the_window_opens_in_the_customers_zone() -> None:
    # 22:30 in Oslo (21:30 UTC in winter): held until 08:00 Oslo time.
    decision, _ = decide(channel="sms", kind="invoice",
                         now=datetime(2026, 11, 30, 21, 30, tzinfo=UTC))
    assert decision.action == "hold"
    assert decision.until == datetime(2026, 12, 1, 8, 0, tzinfo=ZoneInfo("Europe/Oslo"))
    # 01:00 UTC = 02:00 Oslo: the same morning
    decision, _ = decide(channel="sms", kind="invoice",
                         now=datetime(2026, 12, 1, 1, 0, tzinfo=UTC))
    assert decision.until == datetime(2026, 12, 1, 8, 0, tzinfo=ZoneInfo("Europe/Oslo"))
    # Germany has its own window; Finland is an hour ahead of Oslo.
    decision, _ = decide(channel="sms", kind="invoice", country="DE",
                         now=datetime(2026, 11, 30, 7, 30, tzinfo=UTC))
    assert decision.until == datetime(2026, 11, 30, 9, 0, tzinfo=ZoneInfo("Europe/Berlin"))
    assert decide(channel="sms", kind="invoice", country="FI",
                  now=datetime(2026, 11, 30, 6, 30, tzinfo=UTC))[0].action == "send"
    # Daytime SMS and e-mail at night are sent.
    assert decide(channel="sms", now=datetime(2026, 11, 30, 12, 0, tzinfo=UTC))[0].action == (
        "send")
    assert decide(channel="email", now=datetime(2026, 11, 30, 23, 0, tzinfo=UTC))[0].action == (
        "send")


def test_the_opening_keeps_its_wall_clock_time_across_a_dst_change() -> None:
    window = Window(time(21, 0), time(8, 0))
    # The night Norway leaves summer time (2026-10-25 03:00 -> 02:00)
    local = datetime(2026, 10, 24, 23, 0, tzinfo=ZoneInfo("Europe/Oslo"))
    opening = window.opens_after(local)
    assert (opening.hour, opening.minute, opening.utcoffset().total_seconds()) == (8, 0, 3600)


def test_the_customers_country_comes_from_the_address_else_the_mobile_number() -> None:
    assert country_of("se", "+4791234567") == "SE"
    assert country_of("", "+358401234567") == "FI"
    assert country_of("", "+4791234567") == "NO"
    assert country_of("", "") == ""


def test_what_the_customer_told_since_narrows_the_documents_consents_and_adds_opt_outs():
    told = CurrentContacts(consents=frozenset({"email"}), opt_outs=frozenset({"sms"}))
    consents, opted_out = told.judge(["marketing", "email"], {"mailbox"})
    assert list(consents) == ["email"]  # marketing withdrawn since
    assert opted_out == {"mailbox", "sms"}
    assert decide(marketing=True, consents=consents, opted_out=opted_out)[0].reason == (
        "no consent to marketing by email")
    # a profile that never listed consents leaves the document's as they were
    silent = CurrentContacts(consents=None, opt_outs=frozenset())
    assert silent.judge(["marketing", "email"], set()) == (["marketing", "email"], set())
