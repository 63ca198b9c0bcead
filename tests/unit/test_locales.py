"""The locale follows the data when the request names none, a locale that would print the wrong
payment slip is refused naming both sides, and the payment fields are named after the
payment's scheme in every channel (server/compose/locales.py, builders/base.py
payment_labels). Pure and fast: e-mail with a stand-in PDF, print as its HTML."""

from __future__ import annotations

import email
import html
import json
from datetime import UTC, datetime
from decimal import Decimal
from email import policy
from typing import Any

import pytest

from server.channels.email import render_email
from server.channels.pdf import template_variables
from server.channels.sms import is_gsm7
from server.channels.sms_channel import render_sms
from server.compose import formatting
from server.compose.composer import ComposeRequest, compose
from server.compose.layouts import Layout, LayoutError, load_layout
from server.compose.model import Channel, Composition, Output
from server.errors import InvalidInput
from tests.layouts import shipped

LAYOUTS = shipped()
NOW = datetime(2026, 3, 2, 8, 0, tzinfo=UTC)
FAKE_PDF = Output(channel=Channel.PRINT, media_type="application/pdf", content=b"%PDF-1.7\n",
                  sha256="0" * 64, facts={"pages": 1})
PAYMENT_LAYOUTS = ("card-invoice", "payment-reminder", "b2b-invoice")
ACCOUNT_PATH = {"card-invoice": "$.issuer.payment_account",
                "payment-reminder": "$.creditor.payment_account",
                "b2b-invoice": "$.seller.payment_account"}
SWEDISH_SAMPLES = [(layout.id, layout.version) for version in ("1.0.0", "2.0.0")
                   for layout in (LAYOUTS.get(lid, version) for lid in
                                  ("card-invoice", "payment-reminder", "welcome-letter"))]


def sample(layout: Layout, name: str = "sample.json") -> dict[str, Any]:
    return json.loads((layout.path / name).read_text(encoding="utf-8"))


def run(layout: Layout, data: dict[str, Any], locale: str | None = None,
        channels: tuple[Channel, ...] = ()) -> Composition:
    return compose(ComposeRequest(tenant="fjordbank", layout=layout, data=json.dumps(data),
                                  document_id="01JTEST", now=NOW, locale=locale,
                                  channels=channels))


def refused(layout: Layout, data: dict[str, Any], locale: str | None = None) -> dict[str, str]:
    with pytest.raises(InvalidInput) as info:
        run(layout, data, locale)
    return {v.field: v.description for v in info.value.violations}


def channels_text(layout: Layout, comp: Composition) -> dict[str, str]:
    """What the customer reads in each channel the layout has: print (its HTML), the e-mail's
    text and HTML parts, the SMS."""
    out = {"print": layout.templates.get_template("print.html").render(
        **template_variables(comp))}
    if Channel.EMAIL in layout.channels:
        message = email.message_from_bytes(render_email(comp, layout, pdf=lambda: FAKE_PDF)
                                           .content, policy=policy.default)
        out["email.txt"] = message.get_body(("plain",)).get_content()
        out["email.html"] = html.unescape(message.get_body(("html",)).get_content())
        out["subject"] = str(message["Subject"])
    if Channel.SMS in layout.channels:
        out["sms"] = render_sms(comp, layout).content.decode()
    return out


# --- the locale follows the data -------------------------------------------------------------


@pytest.mark.parametrize(("layout_id", "version"), SWEDISH_SAMPLES)
def test_swedish_sample_without_locale_is_a_swedish_document(layout_id, version):
    layout = LAYOUTS.get(layout_id, version)
    comp = run(layout, sample(layout, "sample-sv-SE.json"))
    assert comp.locale == "sv-SE"
    assert comp.locale_decision.source == "rule"
    assert comp.locale_decision.field in ("$.currency", "$.customer.address.country")
    text = channels_text(layout, comp)
    assert 'lang="sv"' in text["print"]
    if layout.kind.has_invoice or layout_id == "payment-reminder":
        for channel, words in text.items():
            assert "KID" not in words and "Kundeidentifikasjon" not in words, channel
        assert "OCR-nummer" in text["print"] and "Till bankgironummer" in text["print"]
        assert "OCR" in text["sms"] and ("Hej" in text["sms"] or "obetald" in text["sms"])
        assert "OCR-nummer" in text["email.txt"] and "Att betala" in text["email.txt"]
    else:
        assert "Hej Anna" in text["print"] or "Välkommen" in text["print"]


def test_norwegian_samples_stay_norwegian_and_say_why():
    for layout in LAYOUTS.latest():
        comp = run(layout, sample(layout))
        assert comp.locale == "nb-NO"
        assert str(comp.locale_decision) in (
            "rule: $.currency = NOK -> NO", "rule: $.customer.address.country = NO -> NO")


def test_the_data_can_name_its_locale():
    card = LAYOUTS.get("card-invoice")
    data = sample(card, "sample-sv-SE.json")
    comp = run(card, {**data, "locale": "sv-SE"})
    assert (comp.locale, comp.locale_decision.source, comp.locale_decision.field) == (
        "sv-SE", "data", "$.locale")
    # the request's locale wins over the data's
    assert run(card, {**data, "locale": "nb-NO", "currency": "SEK", "payment": {
        "reference_scheme": "rf", "reference_base": "4602771102"},
        "issuer": {**data["issuer"], "payment_account": {
            "type": "iban", "number": "SE4550000000058398257466"}}}, "sv-SE").locale == "sv-SE"
    letter = LAYOUTS.get("welcome-letter")
    comp = run(letter, {**sample(letter), "locale": "sv-SE"})
    assert comp.locale == "sv-SE" and comp.context["labels"]["closing"].startswith("Med vänlig")


def test_a_locale_field_the_layout_does_not_have_is_refused_by_path():
    card = LAYOUTS.get("card-invoice")
    assert "$.locale" in refused(card, {**sample(card), "locale": "fr-FR"})


def test_the_layout_default_comes_last():
    letter = LAYOUTS.get("welcome-letter")
    data = sample(letter)
    data["customer"]["address"].update(country="FR", postal_code="75002", city="PARIS")
    data["sender"]["address"]["country"] = "FR"
    comp = run(letter, data)
    assert (comp.locale, comp.locale_decision.source) == ("nb-NO", "default")


# --- a locale that would print a wrong payment slip ---------------------------------------------


@pytest.mark.parametrize("layout_id", ("card-invoice", "payment-reminder"))  # giro slips
def test_sek_and_ocr_on_a_norwegian_slip_are_refused_naming_both_sides(layout_id):
    layout = LAYOUTS.get(layout_id)
    data = sample(layout, "sample-sv-SE.json")
    fields = refused(layout, data, "nb-NO")
    assert set(fields) == {"locale", "$.currency", f"{ACCOUNT_PATH[layout_id]}.type"}
    assert "sv-SE" in fields["locale"]  # says which locale fits
    assert "ocr" in fields["$.currency"] and "SE" in fields["$.currency"]


def test_an_explicit_reference_scheme_is_named_and_the_data_locale_too():
    card = LAYOUTS.get("card-invoice")
    data = sample(card)  # NOK, KID, Norwegian account
    data["payment"]["reference_scheme"] = "kid_mod11"
    fields = refused(card, {**data, "locale": "sv-SE"})
    assert set(fields) == {"$.locale", "$.payment.reference_scheme",
                           "$.issuer.payment_account.type"}


def test_a_payment_region_the_layout_has_no_locale_for_is_refused():
    """A Finnish reference on a payment reminder, whose layout has no FI locale: whatever
    locale the rules find would print the wrong slip."""
    reminder = LAYOUTS.get("payment-reminder")
    data = sample(reminder)
    data["payment"] = {"reference_scheme": "fi", "reference_base": "1234561"}
    fields = refused(reminder, data)
    assert "$.payment.reference_scheme" in fields
    assert "FI" in fields["$.payment.reference_scheme"]


def test_a_layout_without_a_giro_slip_may_carry_another_regions_payment():
    """The b2b invoice prints no national slip ([print] payment_slip = false): a Norwegian
    invoice names a Danish FIK in its payment sentence, under the scheme's own label."""
    b2b = LAYOUTS.get("b2b-invoice")
    data = sample(b2b)
    data["payment"] = {"reference_scheme": "fik", "reference_base": "12345",
                       "creditor_number": "86135567"}
    composition = compose(ComposeRequest(tenant="t", layout=b2b, data=json.dumps(data),
                                         document_id="d", now=NOW))
    assert composition.locale == "nb-NO" and composition.payment_reference.scheme == "fik"
    assert composition.context["payment"]["reference_name"] == "FIK"


def test_international_schemes_fit_every_region():
    """RF and IBAN belong to no clearing: a Norwegian-language document may carry them."""
    card = LAYOUTS.get("card-invoice")
    data = sample(card, "sample-sv-SE.json")
    data["payment"] = {"reference_scheme": "rf", "reference_base": "4602771102"}
    data["issuer"]["payment_account"] = {"type": "iban", "number": "SE4550000000058398257466"}
    comp = run(card, data, "nb-NO")
    assert comp.locale == "nb-NO" and comp.payment_reference.scheme == "rf"


# --- payment labels follow the scheme in every channel -----------------------------------------


def _with_scheme(layout_id: str, scheme: str, account: dict[str, str], locale_sample: str
                 ) -> tuple[Layout, Composition]:
    layout = LAYOUTS.get(layout_id)
    data = sample(layout, locale_sample)
    data["payment"] = {"reference_scheme": scheme, "reference_base": "2018445512"}
    data[ACCOUNT_PATH[layout_id].split(".")[1]]["payment_account"] = account
    channels = tuple(c for c in layout.channels if c != Channel.EINVOICE)
    return layout, run(layout, data, channels=channels)


IBAN_NO = {"type": "iban", "number": "NO9386011117947"}
IBAN_SE = {"type": "iban", "number": "SE4550000000058398257466"}


@pytest.mark.parametrize("layout_id", PAYMENT_LAYOUTS)
def test_an_rf_reference_is_never_called_kid_in_any_channel(layout_id):
    """Issue 11 item 10: an RF reference was labelled KID in the Norwegian SMS."""
    layout, comp = _with_scheme(layout_id, "rf", IBAN_NO, "sample.json")
    assert comp.locale == "nb-NO" and comp.payment_reference.value.startswith("RF")
    for channel, words in channels_text(layout, comp).items():
        assert "KID" not in words and "Til konto" not in words, channel
    texts = channels_text(layout, comp)
    assert "Til IBAN" in texts["print"] or "til IBAN" in texts["print"]
    assert "RF-referanse" in texts["print"]
    if "sms" in texts:
        assert f"RF-referanse {comp.context['payment']['reference']}" in texts["sms"]
        assert is_gsm7(texts["sms"])
    if "email.txt" in texts:
        assert f"Strukturert referanse (RF): {comp.context['payment']['reference']}" in \
            texts["email.txt"]
        assert "Til IBAN: NO93 8601 1117 947" in texts["email.txt"]
        assert "Strukturert referanse (RF)" in texts["email.html"]


@pytest.mark.parametrize(("scheme", "account", "reference", "account_label"), [
    ("ocr", {"type": "bankgiro", "number": "5678-4127"}, "OCR-nummer", "Till bankgironummer"),
    ("ocr", {"type": "plusgiro", "number": "4100523-2"}, "OCR-nummer", "Till plusgironummer"),
    ("rf", IBAN_SE, "Strukturerad referens (RF)", "Till IBAN"),
])
@pytest.mark.parametrize("layout_id", ["card-invoice", "payment-reminder"])
def test_swedish_slips_name_the_reference_and_the_account_type(
        layout_id, scheme, account, reference, account_label):
    layout, comp = _with_scheme(layout_id, scheme, account, "sample-sv-SE.json")
    texts = channels_text(layout, comp)
    for channel in ("print", "email.txt", "email.html"):
        assert reference in texts[channel] and account_label in texts[channel], channel
        assert "KID" not in texts[channel]
    assert comp.context["payment"]["reference_name"] in texts["sms"]


def test_norwegian_kid_labels_are_unchanged():
    layout, comp = _with_scheme("card-invoice", "kid_mod10",
                                {"type": "no_account", "number": "1503.12.34562"}, "sample.json")
    texts = channels_text(layout, comp)
    assert "Kundeidentifikasjon (KID)" in texts["print"] and "Til konto" in texts["print"]
    assert f"KID {comp.context['payment']['reference']}" in texts["sms"]
    assert "Bruk KID ved betaling" in texts["print"]


# --- one minus sign per locale ----------------------------------------------------------------


@pytest.mark.parametrize(("locale", "sign"), [
    ("nb-NO", "\u2212"), ("sv-SE", "\u2212"), ("sv-FI", "\u2212"), ("fi-FI", "\u2212"),
    ("da-DK", "-"), ("de-DE", "-"), ("de-AT", "-"), ("pl-PL", "-"), ("en-GB", "-"),
])
def test_one_minus_sign_per_locale_in_every_formatting(locale, sign):
    other = "-" if sign == "\u2212" else "\u2212"
    for text in (formatting.money(Decimal("-1299.5"), "EUR", locale),
                 formatting.number(Decimal("-1299.5"), locale),
                 formatting.number(Decimal("-3"), locale, 0)):
        assert text.count(sign) == 1 and other not in text, text
    assert formatting.number(Decimal("-0.001"), locale) == formatting.number(Decimal(0), locale)


@pytest.mark.parametrize("sample_name", ["sample.json", "sample-sv-SE.json"])
def test_negative_amounts_carry_the_same_minus_in_every_channel(sample_name):
    card = LAYOUTS.get("card-invoice")
    data = sample(card, sample_name)
    data["customer"]["consents"] = ["email", "sms"]
    comp = run(card, data, channels=(Channel.PRINT, Channel.EMAIL))
    payments = comp.context["summary"]["payments"]
    assert payments.startswith("\u2212")  # "−6 215,40 kr": payments received subtract
    texts = channels_text(card, comp)
    for channel in ("print", "email.txt", "email.html"):
        assert payments in texts[channel], channel
    refund = next(tx["amount"] for tx in comp.context["transactions"] if tx["is_credit"])
    assert refund.startswith("\u2212") and refund in texts["print"]


def test_b2b_allowances_use_the_formatting_minus_not_a_template_one():
    b2b = LAYOUTS.get("b2b-invoice")
    comp = run(b2b, sample(b2b))
    html = channels_text(b2b, comp)["print"]
    deducted = comp.context["totals"]["allowances_deducted"]
    assert deducted == formatting.money(Decimal("-1000"), "NOK", "nb-NO") and deducted in html
    assert html.count("\u2212") == sum(1 for ac in comp.context["allowances_charges"]
                                       if not ac["is_charge"]) + 1


# --- rules are data, checked when the layout loads ---------------------------------------------


def copy_of_welcome_letter(tmp_path):
    source = LAYOUTS.get("welcome-letter").path
    target = tmp_path / "welcome-letter" / source.name  # the folder its manifest names
    target.mkdir(parents=True)
    for path in source.iterdir():
        if path.is_file():
            (target / path.name).write_bytes(path.read_bytes())
    (tmp_path / "_shared").symlink_to(source.parents[1] / "_shared")  # the email's base
    return target


@pytest.mark.parametrize(("rules", "says"), [
    ('[[locale.rules]]\nlocale = "fr-FR"\n', "not one of the layout's locales"),
    ('[[locale.rules]]\nregion = "customer.country"\n', "not a JSON path"),
    ('[[locale.rules]]\nregion = "$.currency"\nlocale = "sv-SE"\n', "either `locale` or `region`"),
    ('[[locale.rules]]\nwhen = { "$.x" = "y" }\n', "either `locale` or `region`"),
])
def test_malformed_locale_rules_fail_at_load(tmp_path, rules, says):
    target = copy_of_welcome_letter(tmp_path)
    manifest = (target / "manifest.toml").read_text(encoding="utf-8")
    head, _, tail = manifest.partition("\n[print]")
    head = head.split("[[locale.rules]]")[0]
    (target / "manifest.toml").write_text(f"{head}{rules}\n[print]{tail}", encoding="utf-8")
    with pytest.raises(LayoutError) as info:
        load_layout(target)
    assert says in str(info.value)


def test_a_when_rule_names_a_locale_for_a_language_within_a_region(tmp_path):
    """Issue 15's shape: a rule on a data field picks the language; the region still has to
    fit the payment."""
    target = copy_of_welcome_letter(tmp_path)
    manifest = (target / "manifest.toml").read_text(encoding="utf-8")
    rule = ('[[locale.rules]]\nwhen = { "$.letter.subject" = ["Välkommen", "Hej"] }\n'
            'locale = "sv-SE"\n\n')
    manifest = manifest.replace("[[locale.rules]]", rule + "[[locale.rules]]", 1)
    (target / "manifest.toml").write_text(manifest, encoding="utf-8")
    layout = load_layout(target)
    data = sample(layout)
    data["letter"]["subject"] = "Välkommen"
    comp = run(layout, data)
    assert str(comp.locale_decision) == "rule: $.letter.subject = Välkommen -> sv-SE"
    assert comp.locale == "sv-SE"


def test_a_fixed_locale_rule_names_the_locale_it_chose():
    # QA: a region rule's reason ends "$.currency = SEK -> SE"; the sv-FI rule's (a fixed
    # locale) named only its conditions, so support could not read off what it decided
    layout = LAYOUTS.get("b2b-invoice")
    comp = run(layout, json.loads(layout.sample_data("sv-FI")))
    decision = comp.locale_decision
    assert (comp.locale, decision.source) == ("sv-FI", "rule")
    assert decision.reason.endswith(" -> sv-FI"), decision.reason


@pytest.mark.parametrize("given", ["en-gb", "EN-GB", "En-Gb"])
def test_a_locale_in_another_case_is_the_layouts_locale(given):
    # was refused: 'layout card-invoice@2.1.0 supports nb-NO, ..., en-GB, not "en-gb"',
    # though BCP 47 tags are case-insensitive (RFC 5646 2.1.1)
    layout = LAYOUTS.get("card-invoice")
    data = sample(LAYOUTS.get("card-invoice", "2.0.0"), "samples/en-GB.json")  # 2.1.0's too
    assert run(layout, data, given).locale == "en-GB"
    assert run(LAYOUTS.get("card-invoice", "2.0.0"), data, given).locale == "en-GB"
    assert "locale" in refused(layout, data, "en-US")  # another locale is still refused
