"""The mailbox channel in the plan, routing per recipient, and the payment fields a
mailbox's pay button shows."""

from __future__ import annotations

import json
from dataclasses import replace
from datetime import UTC, datetime

import pytest

from server.compose.composer import ComposeRequest, compose
from server.compose.model import Channel
from server.delivery.payment import mailbox_details, payment_fields
from server.delivery.routing import Router
from server.delivery.stage import DeliverySettings
from server.errors import InvalidInput
from tests.layouts import shipped

LAYOUTS = shipped()
MAILBOXES = {"kivra": "kivra-se", "digipost": "digipost-no"}


def composition(layout_id="card-invoice", sample="sample-sv-SE.json", channels=(), **customer):
    layout = LAYOUTS.get(layout_id)
    data = json.loads((layout.path / sample).read_text())
    data["customer"].update(customer)
    data["customer"] = {k: v for k, v in data["customer"].items() if v is not None}
    return compose(ComposeRequest(tenant="nordkort", layout=layout, data=json.dumps(data),
                                  document_id="01M8N1XH1T0X6MVPG205JXFR00",
                                  now=datetime(2026, 3, 2, 9, tzinfo=UTC),
                                  channels=channels)), layout


def test_a_customer_who_prefers_the_mailbox_gets_it_and_print_after_it():
    c, _ = composition()
    assert c.channel_plan.channels == (Channel.MAILBOX,)
    assert c.channel_plan.fallbacks == (Channel.PRINT,)
    assert c.channel_plan.reason == "digital-mailbox"
    # Without a mailbox id or a national id the rule does not apply.
    c, _ = composition(mailbox_ids={})
    assert Channel.MAILBOX not in c.channel_plan.channels


def test_the_mailbox_can_be_requested_wherever_there_is_a_print_pdf():
    c, _ = composition(sample="sample.json", channels=(Channel.MAILBOX,), mailbox_ids={},
                       national_id="15076500565")
    assert c.channel_plan.channels == (Channel.MAILBOX,)
    with pytest.raises(InvalidInput) as refused:
        composition(sample="sample.json", channels=(Channel.MAILBOX,), mailbox_ids={},
                    national_id=None)
    assert refused.value.violations[0].field == "$.customer.mailbox_ids"


def test_routing_takes_the_first_mailbox_a_provider_serves():
    router = Router({"mailbox": MAILBOXES}, {})
    c, _ = composition(mailbox_ids={"minpostbox": "x1", "kivra": "198503042387"})
    route = router.route(c, "mailbox")
    assert (route.provider, route.address) == ("kivra-se", "kivra:198503042387")
    # A national id alone goes to the mailbox service of the recipient's country.
    c, _ = composition(sample="sample.json", mailbox_ids={}, national_id="15076500565")
    assert router.route(c, "mailbox").address == "digipost:15076500565"
    assert router.provider_for("nordkort", "mailbox", "digipost:15076500565") == "digipost-no"


STOCKHOLM = {"lines": ["Drottninggatan 1"], "postal_code": "11151", "city": "Stockholm",
             "country": "SE"}


def test_a_national_id_goes_to_the_mailbox_of_its_scheme_not_of_the_address_country():
    # A Norwegian bank's customer living in Sweden, known by her fødselsnummer: Digipost
    # finds people by it, Kivra by personnummer (was: kivra:15076500565, which Kivra's
    # adapter refuses, and the letter went by post).
    router = Router({"mailbox": MAILBOXES}, {})
    c, _ = composition(sample="sample.json", mailbox_ids={}, national_id="15076500565",
                       address=STOCKHOLM)
    assert c.recipient.national_id_country == "NO"
    route = router.route(c, "mailbox")
    assert (route.provider, route.address) == ("digipost-no", "digipost:15076500565")
    # a personnummer of hers goes to Kivra, by the Swedish scheme that took it
    c, _ = composition(sample="sample.json", mailbox_ids={}, national_id="700101-1233",
                       address=STOCKHOLM)
    assert c.recipient.national_id_country == "SE"
    assert router.route(c, "mailbox").address == "kivra:197001011233"
    # an id of no scheme Kanal checks (taken as given): the address's country decides
    unchecked = replace(c, recipient=replace(c.recipient, national_id_country=None))
    assert router.route(unchecked, "mailbox").address == "kivra:197001011233"
    c, _ = composition(sample="sample.json", mailbox_ids={}, national_id="12345678",
                       address={**STOCKHOLM, "country": "DE", "postal_code": "10115",
                                "city": "Berlin"})
    assert c.recipient.national_id_country is None and c.recipient.national_id == "12345678"


def test_no_provider_for_this_recipient_falls_back_but_a_missing_channel_does_not():
    c, _ = composition(mailbox_ids={"minpostbox": "x1"})
    unserved = Router({"mailbox": MAILBOXES}, {}).route(c, "mailbox")
    assert unserved.provider is None and unserved.falls_back
    assert "minpostbox" in unserved.reason
    unconfigured = Router({}, {}).route(c, "mailbox")
    assert unconfigured.provider is None and not unconfigured.falls_back
    assert "no mailbox provider configured" in unconfigured.reason
    # A tenant's own routing wins.
    own = Router({"mailbox": MAILBOXES}, {"nordkort": {"channels": {"mailbox": {
        "minpostbox": "mpb"}}}}).route(c, "mailbox")
    assert own.provider == "mpb"


def test_settings_name_only_existing_providers():
    with pytest.raises(ValueError, match=r"delivery.channels.mailbox.kivra: no provider"):
        DeliverySettings.from_dict({"channels": {"mailbox": {"kivra": "nope"}}})
    with pytest.raises(ValueError, match=r"delivery.channels.sms: only the mailbox"):
        DeliverySettings.from_dict({"channels": {"sms": {"x": "print"}}})
    settings = DeliverySettings.from_dict({
        "channels": {"mailbox": {"kivra": "k"}},
        "providers": {"k": {"type": "kivra"}}})
    assert settings.provider_for("t", "mailbox", "kivra:1") == "k"


def test_payment_fields_are_decimal_strings_from_the_composition():
    c, layout = composition()
    assert payment_fields(c) == {
        "amount": "12691.81", "currency": "SEK", "due_date": "2026-03-31",
        "reference": "460277110223", "reference_scheme": "ocr", "account": "56784127",
        "account_kind": "bankgiro", "invoice_number": "2026020045229"}
    details = mailbox_details(c, layout, 2)
    assert details["subject"] == "Kontoutdrag kreditkort" and details["pages"] == 2
    assert details["generated_at"] == "2026-03-02"
    assert payment_fields(replace(c, amount_due=c.amount_due * 0)) is None  # nothing to pay


def test_an_einvoice_goes_only_to_a_provider_that_carries_its_syntax():
    # QA: Factur-X and Finvoice were routed to the Peppol AP, which refused them for good.
    router = Router({"einvoice": "ap"}, {}, {"ap": {"type": "peppol-ap"}})
    consumer, _ = composition(sample="sample.json", preferences=[])
    for syntax in ("factur-x-en16931", "finvoice-3.0"):
        route = router.route(consumer, "einvoice", {"syntax": syntax})
        assert route.archived_only and route.provider is None
        assert f"{syntax} e-invoice archived, not sent" in route.reason
    business, _ = composition("b2b-invoice", sample="sample.json")
    assert business.recipient.peppol_id
    route = router.route(business, "einvoice", {"syntax": "peppol-bis-3-ubl"})
    assert (route.provider, route.address, route.archived_only) == (
        "ap", business.recipient.peppol_id, False)
    # UBL without a Peppol id reaches no one; no provider at all stays a configuration gap
    assert router.route(consumer, "einvoice", {"syntax": "peppol-bis-3-ubl"}).archived_only
    gap = Router({}, {}).route(business, "einvoice", {"syntax": "peppol-bis-3-ubl"})
    assert not gap.archived_only and "no einvoice provider configured" in gap.reason
