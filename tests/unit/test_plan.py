"""The channel plan as a table: one row per rule (layout rules, tenant overrides, contact data,
consents, preferences, requested channels), plus the shipped manifests' rules."""

from __future__ import annotations

from pathlib import Path

import pytest

from server.compose.layouts import Layout
from server.compose.model import Channel, DocumentKind, PostalAddress, Recipient
from server.compose.plan import Unfit, plan_channels, tenant_table
from server.errors import FieldViolation, InvalidInput
from tests.layouts import shipped as shipped_layouts

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
    shipped = shipped_layouts().get(layout_id)
    assert plan_channels(shipped, recipient, (), facts).channels[: len(channels)] == channels


def test_tenant_rules_load_from_the_config_file(tmp_path):
    from server.config import load_settings

    config = tmp_path / "kanal.toml"
    config.write_text('[[plan.nordkort.payment-reminder.rules]]\nname = "email-first"\n'
                      'primary = ["email"]\n', encoding="utf-8")
    settings = load_settings(config, environ={})
    table = tenant_table(settings.plan, "nordkort", "payment-reminder")
    shipped = shipped_layouts().get("payment-reminder")
    plan = plan_channels(shipped, who(), (), {"stage": "reminder", "days_overdue": 3}, table)
    assert (plan.channels, plan.reason) == ((E,), "email-first")


# --- channels that cannot carry the document (server/compose/plan.py `check`) ---------------

TOO_LONG = Unfit("too long", (FieldViolation("sms.max_segments", "too long"),))
TOO_BIG = Unfit("too big", (FieldViolation("email.html", "too big"),))
NO_ROUTE = Unfit("no route", (FieldViolation("$.customer.peppol_id", "no route"),),
                 unreachable=True)
PEPPOL_B2B = layout(DocumentKind.INVOICE, {"rules": [
    {"name": "peppol-receiver", "when": {"has_peppol_id": True}, "primary": ["einvoice"],
     "also": ["sms"], "fallbacks": ["email"]},
    *INVOICE["rules"][1:],
]})
UNFIT_CASES = [
    # id, layout, recipient, unfit channels, channels, fallbacks, reason, skipped
    ("optional sms skipped", B2B, who(preferences=("paper",)), {S: TOO_LONG}, (P,), (),
     "paper-preference", (S,)),
    ("primary email passed over for print", B2B, who(), {E: TOO_BIG}, (P, S), (),
     "digital (email skipped)", (E,)),
    ("sms primary passed over for email", REMINDER, who(), {S: TOO_LONG}, (E,), (P,),
     "first-missed-payment (sms skipped)", (S,)),
    ("fallback that cannot carry is dropped", REMINDER, who(), {E: TOO_BIG}, (S,), (P,),
     "first-missed-payment", (E,)),
    ("unroutable e-invoice: planned as without a Peppol id", PEPPOL_B2B,
     who(peppol_id="9999:1"), {EI: NO_ROUTE}, (E, S), (P,), "digital", (EI,)),
]


@pytest.mark.parametrize(
    ("layout_", "recipient", "unfit", "channels", "fallbacks", "reason", "skipped"),
    [case[1:] for case in UNFIT_CASES], ids=[case[0] for case in UNFIT_CASES],
)
def test_channels_that_cannot_carry_are_skipped(layout_, recipient, unfit, channels, fallbacks,
                                                reason, skipped):
    plan = plan_channels(layout_, recipient, (), {"stage": "reminder"}, check=unfit.get)
    assert (plan.channels, plan.fallbacks, plan.reason) == (channels, fallbacks, reason)
    assert tuple(s.channel for s in plan.skipped) == skipped
    assert all(s.reason == unfit[s.channel].reason for s in plan.skipped)


def test_owed_channels_that_cannot_carry_are_the_callers_error():
    with pytest.raises(InvalidInput) as info:  # the rule's primaries all over a limit
        plan_channels(REMINDER, who(email=None), (), {"stage": "reminder"},
                      check={S: TOO_LONG}.get)
    assert [v.field for v in info.value.violations] == ["sms.max_segments"]
    with pytest.raises(InvalidInput) as info:  # requested
        plan_channels(B2B, who(), (E, P), {}, check={E: TOO_BIG}.get)
    assert [v.field for v in info.value.violations] == ["email.html"]
    with pytest.raises(InvalidInput) as info:  # a requested channel that cannot be routed
        plan_channels(PEPPOL_B2B, who(peppol_id="9999:1"), (EI,), {}, check={EI: NO_ROUTE}.get)
    assert [v.field for v in info.value.violations] == ["$.customer.peppol_id"]


def test_a_plan_tables_rules_are_read_once_per_table(monkeypatch) -> None:
    """A layout's `[plan]` rules are read once per worker, not per document: the second
    document's plan reads no rule and is the first one's plan; a tenant table once too."""
    from server.compose import plan as plan_module

    b2b = layout(DocumentKind.INVOICE, INVOICE)
    first = plan_channels(b2b, who(), (), {})
    read = []
    real = plan_module._rules
    monkeypatch.setattr(plan_module, "_rules", lambda *a: read.append(a) or real(*a))
    again = plan_channels(b2b, who(), (), {})
    assert again == first and again.reason == "digital"
    assert read == []
    tenant = {"rules": [{"name": "mail only", "primary": ["email"]}]}
    with_tenant = plan_channels(b2b, who(), (), {}, tenant)
    assert with_tenant.channels == (E,)
    assert plan_channels(b2b, who(), (), {}, tenant) == with_tenant
    assert len(read) == 1  # the tenant table, once
    other = layout(DocumentKind.INVOICE, {"rules": [{"name": "paper", "primary": ["print"]}]})
    assert plan_channels(other, who(), (), {}).channels == (P,)  # another table, its rules
