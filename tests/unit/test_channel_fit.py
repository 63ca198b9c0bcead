"""One channel's own limits never block the document a customer is owed (issue 11, item 3).

The channel plan asks each channel whether it can carry the document (server/compose/plan.py,
`server.channels.channel_unfit`): an SMS gets the layout's ways to fit (transliteration of
the names it allows, a shorter variant, a cut field), and a channel that still cannot carry
it is skipped with its reason, the document going by the others. Siblings of the issue's
example: every script of name, the reminder's creditor, email size, e-invoice routing and
rules; the owed channels (the rule's primary, a requested channel) stay the caller's error.
"""

from __future__ import annotations

import json
from dataclasses import replace
from datetime import UTC, datetime

import pytest

from server.channels import email as email_channel
from server.channels.sms_channel import render_sms
from server.compose.composer import ComposeRequest, compose
from server.compose.layouts import Layout
from server.compose.model import Channel, Composition
from server.errors import InvalidInput
from tests.layouts import shipped

LAYOUTS = shipped()
NOW = datetime(2026, 3, 2, 9, tzinfo=UTC)
P, E, S, EI = Channel.PRINT, Channel.EMAIL, Channel.SMS, Channel.EINVOICE
FI_ADDRESS = {"lines": ["Kotikatu 3 B 12"], "postal_code": "33100", "city": "TAMPERE",
              "country": "FI"}


def compose_with(layout: Layout | str, change=None, sample: str = "sample.json",
                 locale: str | None = None, channels=()) -> tuple[Composition, Layout]:
    layout = LAYOUTS.get(layout) if isinstance(layout, str) else layout
    data = json.loads((layout.path / sample).read_text(encoding="utf-8"))
    if change:
        change(data)
    return compose(ComposeRequest(tenant="t", layout=layout, data=json.dumps(data),
                                  document_id="d", now=NOW, locale=locale,
                                  channels=channels)), layout


def customer(**fields):
    def change(data):
        data["customer"].update(fields)
        data["customer"] = {k: v for k, v in data["customer"].items() if v is not None}
    return change


def with_sms(layout: Layout, **sms) -> Layout:
    """The layout as a version that allows nothing to fit an SMS (like 1.0.0)."""
    return replace(layout, manifest={**layout.manifest, "sms": {**layout.section("sms"), **sms}})


def skipped(composition: Composition) -> dict[Channel, tuple[str, str]]:
    return {s.channel: (s.reason, s.field) for s in composition.channel_plan.skipped}


# --- the example and its siblings: names in any script ---------------------------------


@pytest.mark.parametrize(("name", "sms_starts"), [
    ("Łucja Wałęsa-Żółkiewska", "Hei Lucja Walesa-Zolkiewska! Fakturaen din fra Fjordbank"),
    ("Siobhán", "Hei Siobhan! Fakturaen din"),
    ("Šárka Nováková-Lindqvist", "Hei Sarka Novakova-Lindqvist!"),
    ("Þórunn Guðmundsdóttir", "Hei Thorunn Gudmundsdottir!"),
    ("Çağlar Şahin", "Hei Çaglar Sahin!"),  # Ç is GSM-7, ğ and ş are not
    ("Zoë O’Brien", "Hei Zoe O'Brien!"),
    # no faithful GSM-7 spelling: the shorter variant without the greeting
    ("Анна Иванова-Петрова", "Fjordbank ASA: Kortfaktura 34 708,17 kr"),
    ("Ελένη Παπαδοπούλου", "Fjordbank ASA: Kortfaktura"),
    ("Kari Nordmann-" + "Lindqvist" * 6, "Fjordbank ASA: Kortfaktura"),  # 70 characters
])
def test_card_invoice_default_plan_never_fails_for_a_name(name: str, sms_starts: str) -> None:
    # The sample's plan: paper preference and SMS consent -> print, and the SMS besides.
    composition, layout = compose_with("card-invoice", customer(name=name))
    assert composition.channel_plan.channels == (P, S)
    assert composition.channel_plan.skipped == ()
    output = render_sms(composition, layout)
    assert output.content.decode().startswith(sms_starts)
    assert (output.facts["segments"], output.facts["encoding"]) == (1, "GSM-7")
    assert "20 18445 51238" in output.content.decode()  # the KID is never touched


@pytest.mark.parametrize(("name", "char"), [("李小龍", "U+674E"), ("Kari 💳 Nordmann", "U+1F4B3")])
def test_a_name_the_print_fonts_cannot_draw_refuses_the_letter_not_the_sms(name, char) -> None:
    # The print fonts (Inter, Noto Sans) have no CJK and no emoji: the letter the paper
    # preference owes would print boxes, so it is refused naming the field and the
    # character (issue 11 item 2), while an SMS alone carries the name (UCS-2 or the
    # shorter variant).
    with pytest.raises(InvalidInput) as refused:
        compose_with("card-invoice", customer(name=name))
    assert [v.field for v in refused.value.violations][0] == "$.customer.name"
    assert char in refused.value.violations[0].description
    composition, layout = compose_with("card-invoice", customer(name=name), channels=(S,))
    assert composition.channel_plan.channels == (S,)
    assert P not in composition.channel_plan.fallbacks  # no letter of boxes as a fallback
    output = render_sms(composition, layout)
    assert output.content.decode().startswith("Fjordbank ASA: Kortfaktura")
    assert (output.facts["segments"], output.facts["encoding"]) == (1, "GSM-7")


def test_swedish_card_invoice_fits_too() -> None:
    composition, layout = compose_with(
        "card-invoice", customer(name="Siobhán Ní Bhriain", preferences=["paper"],
                                 consents=["sms"]), "sample-sv-SE.json", "sv-SE")
    text = render_sms(composition, layout).content.decode()
    assert text.startswith("Hej Siobhan Ni Bhriain! Din kortfaktura från")
    assert "OCR 46 02771 10223" in text


def test_frozen_layout_without_ways_to_fit_skips_the_sms_and_prints() -> None:
    # card-invoice 1.0.0 declares nothing to fit with: the example exactly, where
    # Compose used to fail with INVALID_ARGUMENT sms.max_segments and nothing was printed.
    layout = LAYOUTS.get("card-invoice", "1.0.0")
    composition, _ = compose_with(layout, customer(name="Łucja Wałęsa-Żółkiewska"))
    plan = composition.channel_plan
    assert (plan.channels, plan.reason) == ((P,), "paper-preference")
    reason, field = skipped(composition)[S]
    assert field == "sms.max_segments"
    assert "2 segments" in reason and "allows 1" in reason


def test_reminder_creditor_names_fit_their_two_segments() -> None:
    def creditor(name):
        return lambda data: data["creditor"].update(name=name)

    composition, layout = compose_with("payment-reminder", creditor("Łódź Windykacja Sp. z o.o."))
    text = render_sms(composition, layout).content.decode()
    assert text.startswith("Lodz Windykacja Sp. z o.o.: Betalingspåminnelse. Faktura")
    composition, layout = compose_with("payment-reminder", creditor("Вологодский банк"))
    output = render_sms(composition, layout)
    # the creditor's name kept in full (UCS-2) in the variant without the invoice number
    assert output.content.decode().startswith("Вологодский банк: Betalingspåminnelse. Betal")
    assert (output.facts["segments"], output.facts["template"]) == (2, "sms-short.txt")


STRICT_REMINDER = with_sms(LAYOUTS.get("payment-reminder"), templates=["sms.txt"],
                          shortenable="", transliterate=[])


def polish_creditor(data) -> None:
    data["creditor"]["name"] = "Łódź Windykacja Sp. z o.o."  # UCS-2: 3 segments


def test_reminder_sms_that_cannot_fit_gives_way_to_the_next_primary() -> None:
    # first-missed-payment: primary = ["sms", "email"], fallbacks = ["email"].
    composition, _ = compose_with(STRICT_REMINDER, polish_creditor)
    plan = composition.channel_plan
    assert plan.channels == (E,) and plan.fallbacks == (P,)
    assert plan.reason == "first-missed-payment (sms skipped)"
    assert skipped(composition)[S][1] == "sms.max_segments"


def test_owed_sms_that_cannot_fit_is_the_callers_error() -> None:
    def no_email(data):
        polish_creditor(data)
        customer(email=None)(data)
    # the rule's only other primary (email) cannot reach her: the SMS is what she is owed
    with pytest.raises(InvalidInput) as info:
        compose_with(STRICT_REMINDER, no_email)
    assert [v.field for v in info.value.violations] == ["sms.max_segments"]
    # and a requested SMS is owed
    with pytest.raises(InvalidInput) as info:
        compose_with(STRICT_REMINDER, polish_creditor, channels=(S,))
    assert [v.field for v in info.value.violations] == ["sms.max_segments"]


# --- email size --------------------------------------------------------------------------------


def test_email_over_the_clipping_limit_gives_way_to_print(monkeypatch) -> None:
    monkeypatch.setattr(email_channel, "MAX_HTML_BYTES", 5_000)
    # card-invoice "digital": primary = ["email", "print"], also = ["sms", "einvoice"]
    composition, _ = compose_with("card-invoice", customer(preferences=[]))
    plan = composition.channel_plan
    assert plan.channels == (P, S, EI) and plan.reason == "digital (email skipped)"
    reason, field = skipped(composition)[E]
    assert "over the 5000 byte limit" in reason and field.endswith("email.html")


def test_optional_email_over_the_limit_is_skipped(monkeypatch) -> None:
    monkeypatch.setattr(email_channel, "MAX_HTML_BYTES", 5_000)
    # payment-reminder "collection-notice": primary = ["print"], also = ["email"]
    composition, _ = compose_with("payment-reminder", sample="sample-collection-notice.json")
    assert composition.channel_plan.channels == (P,)
    assert E in skipped(composition)


# --- e-invoice routing and rules ---------------------------------------------------------------


@pytest.mark.parametrize("peppol_id", [
    "9999:923609016",  # not an Electronic Address Scheme code (PEPPOL-EN16931-CL008)
    "0192:923609017",  # a Norwegian org number that fails MOD11 (PEPPOL-COMMON-R041)
    "0184:1234567",    # a Danish CVR of 7 digits, not 8 (PEPPOL-COMMON-R042)
])
def test_peppol_id_no_einvoice_can_be_addressed_to_is_the_callers_error(peppol_id: str) -> None:
    # card-invoice "peppol-receiver" would make the e-invoice primary. An id that addresses
    # no one was planned as a holder without one (paper here), the caller told OK; it is a
    # mistyped id, refused at its path (test_peppol_id_refusals.py).
    with pytest.raises(InvalidInput) as info:
        compose_with("card-invoice", customer(peppol_id=peppol_id))
    assert [v.field for v in info.value.violations] == ["$.customer.peppol_id"]


def test_optional_einvoice_the_rules_refuse_is_skipped() -> None:
    # A Finnish consumer gets Finvoice, which takes invoice numbers of at most 20 characters.
    def change(data):
        customer(address=FI_ADDRESS, preferences=[])(data)
        data["invoice"]["number"] = "2026020018873-0001-FI-X"
    composition, _ = compose_with("card-invoice", change)
    assert composition.channel_plan.channels == (E, S)
    reason, field = skipped(composition)[EI]
    assert field == "$.invoice.number" and "20 characters" in reason


def test_owed_einvoice_the_peppol_rules_refuse_is_the_callers_error() -> None:
    # b2b-invoice "peppol-receiver": the e-invoice is the primary; PEPPOL-EN16931-R003.
    def change(data):
        data["customer"]["peppol_id"] = "0192:923609016"
        data.pop("buyer_reference", None)
        data.pop("order_reference", None)
    with pytest.raises(InvalidInput) as info:
        compose_with("b2b-invoice", change)
    assert "$.buyer_reference" in [v.field for v in info.value.violations]
