"""The channel plan as a table: one row per rule (layout rules, tenant overrides, contact data,
consents, preferences, requested channels), plus the shipped manifests' rules."""

from __future__ import annotations

from pathlib import Path

import pytest

from server.compose.layouts import Layout, LayoutRegistry
from server.compose.model import Channel, DocumentKind, PostalAddress, Recipient
from server.compose.plan import plan_channels, tenant_table
from server.errors import InvalidInput

E, S, P, EI = Channel.EMAIL, Channel.SMS, Channel.PRINT, Channel.EINVOICE
ADDRESS = PostalAddress(("Storgata 1",), "0155", "OSLO", "NO")

COLLECTIONS = {
    "consent_required": ["sms"],
    "rules": [
        {"name": "long-running-case", "when": {"days_overdue": {"min": 45}}, "primary": ["print"]},
        {"name": "collection-notice", "when": {"stage": "collection_notice"},
         "primary": ["print"], "also": ["email"]},
        {"name": "first-missed-payment", "when": {"stage": "reminder"},
         "primary": ["sms", "email"], "fallbacks": ["email"]},
    ],
}
INVOICE = {
    "rules": [
        {"name": "peppol-receiver", "when": {"has_peppol_id": True}, "primary": ["einvoice"],
         "fallbacks": ["email"]},
        {"name": "paper-preference", "when": {"preference": ["paper", "paper_invoice"]},
         "primary": ["print"], "also": ["sms"]},
        {"name": "digital", "primary": ["email", "print"], "also": ["sms"]},
    ],
}


def layout(kind: DocumentKind, plan: dict, channels=(P, E, S, EI), **sections) -> Layout:
    return Layout(id="x", version="1.0.0", kind=kind, builder="b", title="t", locales=("nb-NO",),
                  default_locale="nb-NO", channels=tuple(channels), path=Path("."), schema={},
                  manifest={"plan": plan, **sections})


def who(**kw) -> Recipient:
    base = dict(customer_id="1", name="Kari", address=ADDRESS, email="k@example.no",
                mobile="+4791234567", consents=("sms", "email"))
    return Recipient(**{**base, **kw})


REMINDER = layout(DocumentKind.REMINDER, COLLECTIONS, channels=(P, E, S))
B2B = layout(DocumentKind.INVOICE, INVOICE)
CASES = [
    # id, layout, recipient, requested, facts, tenant rules, channels, fallbacks, reason
    ("first missed payment -> sms", REMINDER, who(), (), {"stage": "reminder", "days_overdue": 7},
     None, (S,), (E, P), "first-missed-payment"),
    ("no phone -> email", REMINDER, who(mobile=None), (), {"stage": "reminder", "days_overdue": 7},
     None, (E,), (P,), "first-missed-payment (sms unreachable)"),
    ("no sms consent -> email", REMINDER, who(consents=()), (), {"stage": "reminder"},
     None, (E,), (P,), "first-missed-payment (sms unreachable)"),
    ("long-running case -> letter", REMINDER, who(), (), {"stage": "reminder", "days_overdue": 60},
     None, (P,), (), "long-running-case"),
    ("collection notice -> letter + email", REMINDER, who(), (),
     {"stage": "collection_notice", "days_overdue": 20}, None, (P, E), (), "collection-notice"),
    ("tenant override first", REMINDER, who(), (), {"stage": "reminder", "days_overdue": 7},
     {"rules": [{"name": "tenant-email-first", "when": {"stage": "reminder"},
                 "primary": ["email"]}]}, (E,), (P,), "tenant-email-first"),
    ("tenant drops consent requirement", REMINDER, who(consents=()), (), {"stage": "reminder"},
     {"consent_required": []}, (S,), (E, P), "first-missed-payment"),
    ("peppol id -> e-invoice", B2B, who(peppol_id="0192:923609016"), (), {}, None,
     (EI,), (E, P), "peppol-receiver"),
    ("paper preference -> print + sms", B2B, who(preferences=("paper",)), (), {}, None,
     (P, S), (), "paper-preference"),
    ("default digital -> email + sms, print fallback", B2B, who(), (), {}, None,
     (E, S), (P,), "digital"),
    ("no email -> print", B2B, who(email=None), (), {}, None, (P, S), (), "digital (email "
     "unreachable)"),
    ("digital only: no paper fallback", B2B, who(preferences=("digital_only",)), (), {}, None,
     (E, S), (), "digital"),
    ("digital only, nothing digital -> print", B2B,
     who(preferences=("digital_only",), email=None, mobile=None), (), {}, None, (P,), (),
     "digital only, but unreachable"),
    ("requested wins", B2B, who(), (S, P), {}, None, (S, P), (), "requested"),
    ("requested gets print fallback", B2B, who(), (E,), {}, None, (E,), (P,), "requested"),
    ("no rule: layout order", layout(DocumentKind.LETTER, {}, channels=(E, P)), who(), (), {},
     None, (E,), (P,), "layout default"),
]


@pytest.mark.parametrize(
    ("layout_", "recipient", "requested", "facts", "tenant", "channels", "fallbacks", "reason"),
    [case[1:] for case in CASES], ids=[case[0] for case in CASES],
)
def test_plan_rules(layout_, recipient, requested, facts, tenant, channels, fallbacks, reason):
    plan = plan_channels(layout_, recipient, requested, facts, tenant)
    assert (plan.channels, plan.fallbacks, plan.reason) == (channels, fallbacks, reason)


@pytest.mark.parametrize(("requested", "recipient", "field"), [
    ((S,), who(mobile=None), "$.customer.mobile"),
    ((E,), who(email=None), "$.customer.email"),
    ((P,), who(address=None), "$.customer.address"),
    ((EI,), who(), "$.customer.peppol_id"),
])
def test_requested_channel_without_contact_data_is_refused(requested, recipient, field):
    with pytest.raises(InvalidInput) as info:
        plan_channels(B2B, recipient, requested, {})
    assert [v.field for v in info.value.violations] == [field]


def test_nobody_reachable_is_refused():
    with pytest.raises(InvalidInput) as info:
        plan_channels(B2B, who(address=None, email=None, mobile=None), (), {})
    assert info.value.violations[0].field == "$.customer"


@pytest.mark.parametrize(("recipient", "syntax_channel"), [
    (who(address=PostalAddress(("Mannerheimintie 1",), "00100", "HELSINKI", "FI")), (EI,)),
    (who(), ()),
])
def test_finnish_consumer_gets_finvoice_channel(recipient, syntax_channel):
    plan = plan_channels(layout(DocumentKind.INVOICE, {"rules": [
        {"name": "e", "primary": ["einvoice", "print"]}]}), recipient, (), {})
    assert (plan.channels[:1] == (EI,)) == bool(syntax_channel)


def test_tenant_table_reads_config_shape():
    config = {"nordkort": {"payment-reminder": {"rules": []}}}
    assert tenant_table(config, "nordkort", "payment-reminder") == {"rules": []}
    assert tenant_table(config, "other", "payment-reminder") == {}


@pytest.mark.parametrize(("layout_id", "facts", "recipient", "channels"), [
    ("payment-reminder", {"stage": "reminder", "days_overdue": 14}, who(), (S,)),
    ("payment-reminder", {"stage": "reminder", "days_overdue": 14}, who(mobile=None), (E,)),
    ("payment-reminder", {"stage": "reminder", "days_overdue": 90}, who(), (P,)),
    ("b2b-invoice", {}, who(peppol_id="0192:923609016"), (EI,)),
])
def test_shipped_manifest_rules(layout_id, facts, recipient, channels):
    shipped = LayoutRegistry().get(layout_id)
    assert plan_channels(shipped, recipient, (), facts).channels[: len(channels)] == channels


def test_tenant_rules_load_from_the_config_file(tmp_path):
    from server.config import load_settings

    config = tmp_path / "kanal.toml"
    config.write_text('[[plan.nordkort.payment-reminder.rules]]\nname = "email-first"\n'
                      'primary = ["email"]\n', encoding="utf-8")
    settings = load_settings(config, environ={})
    table = tenant_table(settings.plan, "nordkort", "payment-reminder")
    shipped = LayoutRegistry().get("payment-reminder")
    plan = plan_channels(shipped, who(), (), {"stage": "reminder", "days_overdue": 3}, table)
    assert (plan.channels, plan.reason) == ((E,), "email-first")
