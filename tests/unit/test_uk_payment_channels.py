"""A customer can pay from every channel that asks for payment: the e-mail (HTML and text) and
the SMS carry every number the print slip gives the payer to key in (QA M1).

A UK payment (Faster Payments, Bacs) needs the payee's sort code and account number: the
en-GB slip printed both, but the e-mail and the SMS gave only "Account no. 31926819", and the
card-invoice SMS no account at all (with a lower-case "reference" after a full stop). The fix
is UK-only: layout versions are immutable once used, so every other locale's e-mail and SMS
stay byte for byte what they were (`test_other_locales_are_byte_identical`).
"""

from __future__ import annotations

import hashlib
import html
import json
import re
import tomllib
from datetime import UTC, datetime

import pypdfium2 as pdfium
import pytest
from lxml import etree

from server.channels import Renderers
from server.channels.email import message_parts
from server.channels.sms_channel import fit_sms, sms_settings
from server.compose.composer import ComposeRequest, compose
from server.compose.layouts import Layout
from server.compose.model import Channel, Composition
from server.compose.payments.accounts import payment_account
from tests.layouts import shipped

LAYOUTS = shipped()
NOW = datetime(2026, 3, 2, 9, tzinfo=UTC)
RENDERERS = Renderers()
CHANNEL_LAYOUTS = ("payment-reminder", "card-invoice")  # the payment layouts with e-mail, SMS


def samples(layout: Layout) -> dict[str, str]:
    return tomllib.loads((layout.path / "manifest.toml").read_text("utf-8"))["samples"]


def composed(layout_id: str, locale: str, channel: Channel, change=None) -> tuple[
        Composition, Layout]:
    layout = LAYOUTS.get(layout_id)
    data = json.loads((layout.path / samples(layout)[locale]).read_text("utf-8"))
    if change:
        change(data)
    return compose(ComposeRequest(tenant="t", layout=layout, data=json.dumps(data),
                                  document_id="d", now=NOW, locale=locale,
                                  channels=(channel,))), layout


def email_text(layout_id: str, locale: str, change=None) -> tuple[str, str]:
    """(text/plain part, HTML part) of the sample's e-mail."""
    parts = message_parts(*composed(layout_id, locale, Channel.EMAIL, change))
    return parts.text, parts.html.html


def sms(layout_id: str, locale: str, change=None):
    return fit_sms(*composed(layout_id, locale, Channel.SMS, change))


def html_rows(page: str) -> list[tuple[str, str]]:
    """The e-mail's table rows in order: (header text, cell text)."""
    tree = etree.fromstring(page.encode("utf-8"), etree.HTMLParser())
    return [("".join(tr.find("th").itertext()).strip(), "".join(tr.find("td").itertext()).strip())
            for tr in tree.iter("tr") if tr.find("th") is not None and tr.find("td") is not None]


# --- the finding: UK e-mail and SMS ----------------------------------------------------------

@pytest.mark.parametrize("layout_id", CHANNEL_LAYOUTS)
def test_uk_email_gives_sort_code_and_account_number(layout_id: str) -> None:
    text, page = email_text(layout_id, "en-GB")
    lines = text.splitlines()
    at = lines.index("Sort code: 60-16-13")
    assert lines[at + 1] == "Account no.: 31926819"  # beside each other, as on the slip
    assert "Reference: FJB 61033874" in lines
    rows = html_rows(page)
    at = rows.index(("Sort code", "60-16-13"))
    assert rows[at + 1] == ("Account no.", "31926819")
    assert ("Reference", "FJB 61033874") in rows
    # the note names the reference (it read "Please quote your  when you pay")
    assert "Please quote your reference when you pay" in text
    assert "Please quote your reference when you pay" in html.unescape(page)


@pytest.mark.parametrize(("layout_id", "expected", "segments"), [
    ("payment-reminder",
     "Fjordbank UK Ltd: Payment reminder. Invoice 2026016103387 is unpaid. Please pay £374.75 "
     "by 23/02/2026 to sort code 60-16-13, account no. 31926819, reference FJB 61033874.", 2),
    ("card-invoice",
     "Hi Oliver Bennett, your Fjordbank UK Ltd card statement: £971.40 due by 25/03/2026. "
     "Pay to sort code 60-16-13, account no. 31926819, reference FJB 61033874.", 1),
])
def test_uk_sms_gives_sort_code_account_and_reference(layout_id: str, expected: str,
                                                      segments: int) -> None:
    fit = sms(layout_id, "en-GB")
    assert fit.message.text == expected
    assert fit.message.encoding == "GSM-7"
    assert fit.message.segments == segments
    assert fit.template == "sms.txt" and fit.adapted == ()  # the full text, as written


def test_uk_card_sms_short_variant_keeps_the_payment_fields() -> None:
    """A name too long for the greeting: the shorter variant still says where to pay."""
    def long_name(data):
        data["customer"]["name"] = "Alexandra Montgomery-Fitzwilliam"
    fit = sms("card-invoice", "en-GB", long_name)
    assert fit.template == "sms-short.txt" and fit.message.segments == 1
    assert fit.message.text == (
        "Fjordbank UK Ltd: card statement £971.40, due 25/03/2026. Pay to sort code 60-16-13, "
        "account no. 31926819, reference FJB 61033874.")


@pytest.mark.parametrize("layout_id", CHANNEL_LAYOUTS)
@pytest.mark.parametrize("template", ["sms.txt", "sms-short.txt"])
def test_no_sentence_starts_in_lower_case_in_an_en_gb_sms(layout_id: str, template: str) -> None:
    """QA: "... due by 25/03/2026. reference FJB 10042 4711." (a label reused mid-sentence)."""
    composition, layout = composed(layout_id, "en-GB", Channel.SMS)
    text = layout.templates.get_template(template).render(
        **composition.context, locale=composition.locale)
    assert not re.search(r"[.!?]\s+[a-z]", text), text


def b2b_pdf_text(locale: str, change=None) -> str:
    layout = LAYOUTS.get("b2b-invoice")
    data = json.loads((layout.path / samples(layout)[locale]).read_text("utf-8"))
    if change:
        change(data)
    composition = compose(ComposeRequest(tenant="t", layout=layout, data=json.dumps(data),
                                         document_id="d", now=NOW, locale=locale,
                                         channels=(Channel.PRINT,)))
    [output] = RENDERERS.render(composition, layout)
    return "\n".join(page.get_textpage().get_text_range()
                     for page in pdfium.PdfDocument(output.content))


def test_uk_b2b_invoice_payment_sentence_gives_the_sort_code() -> None:
    """The business invoice has no slip: its one payment sentence names every number."""
    assert ("Please pay to sort code 60-16-13, account no. 31926819, quoting reference "
            "FJB B-800442, by 30/03/2026.") in b2b_pdf_text("en-GB")


def test_b2b_invoice_in_another_language_to_a_uk_account_gives_the_sort_code() -> None:
    """No slip, so no locale is bound to the payment's region: a Norwegian invoice may ask
    for payment to a UK account, and names it in Norwegian ("Account no."/"reference" from
    the English slip labels before)."""
    def uk_account(data):
        data["currency"] = "GBP"
        data["seller"]["payment_account"] = {"type": "gb_account", "number": "31926819",
                                             "sort_code": "60-16-13"}
        data["payment"] = {"reference_scheme": "gb", "reference": "FJB 10042 4711"}
    assert ("Betal til sort code 60-16-13, kontonummer 31926819 med referanse FJB 10042 4711 "
            "innen") in b2b_pdf_text("nb-NO", uk_account)


@pytest.mark.parametrize("account", [
    {"type": "no_account", "number": "1503.12.34562"},
    {"type": "bankgiro", "number": "5050-1055"},
    {"type": "iban", "number": "DE89 3704 0044 0532 0130 00"},
    {"type": "pl_nrb", "number": "61 1090 1014 0000 0712 1981 2874"},
])
def test_payee_account_is_the_account_as_before_for_every_other_kind(account) -> None:
    """Why every non-UK text stays byte for byte: `{payee_account}` replaced
    `{account_name} {account}` and is exactly that for any account without a sort code."""
    from server.compose.payments.slips import payee_account  # new with the UK fix
    checked = payment_account(account, "$.a")
    names = {"account_name": "konto", "sort_code_name": ""}
    assert payee_account(names, checked, checked.display) == {
        "sort_code": None, "payee_account": f"konto {checked.display}"}


# --- the class of gap: every locale ----------------------------------------------------------

def payer_keys(composition: Composition) -> list[str]:
    """What a payer keys in, as the print slip gives it: its fields but the amount (the
    Norwegian and Swedish giro places the account and reference itself), a FIK's payment id
    and creditor number being parts of its code line. A BIC is not asked: within SEPA a
    payer's bank needs the IBAN only (Regulation (EU) No 260/2012, Art. 5(7))."""
    payment = composition.context["payment"]
    slip = [field["value"] for field in payment["slip"]["fields"]
            if field["key"] not in ("amount", "bic")]
    return [payment["account"], payment["reference"], *slip]


@pytest.mark.parametrize(("layout_id", "locale"), [
    (lid, loc) for lid in CHANNEL_LAYOUTS for loc in samples(LAYOUTS.get(lid))])
def test_every_email_gives_what_the_payer_keys_in(layout_id: str, locale: str) -> None:
    composition, _ = composed(layout_id, locale, Channel.EMAIL)
    text, page = email_text(layout_id, locale)
    cells = " | ".join(cell for _, cell in html_rows(page))
    for value in payer_keys(composition):
        assert any(": " in line and value in line for line in text.splitlines()), (locale, value)
        assert value in cells, (locale, value)


@pytest.mark.parametrize("locale", sorted(samples(LAYOUTS.get("payment-reminder"))))
def test_every_reminder_sms_gives_what_the_payer_keys_in(locale: str) -> None:
    composition, layout = composed("payment-reminder", locale, Channel.SMS)
    fit = fit_sms(composition, layout)
    assert fit.message.segments <= sms_settings(layout).max_segments
    for value in payer_keys(composition):
        assert value in fit.message.text, (locale, value)


# --- everything but en-GB unchanged: golden digests of main's output -------------------------

def digests(layout_id: str, locale: str) -> tuple[str, str, str]:
    text, page = email_text(layout_id, locale)
    return tuple(hashlib.sha256(value.encode("utf-8")).hexdigest()[:16]
                 for value in (text, page, sms(layout_id, locale).message.text))


# (text/plain, HTML, SMS) sha256 prefixes of main 6cf7108's output (before the UK fix)
GOLDEN = {
    ('payment-reminder', 'nb-NO'): ('a1d99b24ba1f5d92', '059e2c5516b692a3', '1318a5ae75c84f82'),
    ('payment-reminder', 'sv-SE'): ('174d6475b0f9b05c', '0a6d2e53e59ae376', '1a4ca28d109f7942'),
    ('payment-reminder', 'da-DK'): ('0a8ef0cde83bb247', 'a8971d79ae2b4a78', '3eead26cc4c5e810'),
    # fi-FI, sv-FI: the sample's Finnish reference is its own customer's, base 5201883009 /
    # 5201911409 (test_sample_references.py; with base 2026004711 put back the outputs hash as
    # before: '5f80484b1c93af47', 'd8715909e1e6d3ea', '8f81e8588706b838' and
    # '596eeda070e87a85', 'e7111b4f7d48edf8', 'c089751183288d60')
    ('payment-reminder', 'fi-FI'): ('c93f3362873993b1', '6af5b69c02553245', 'ac628bda498837d4'),
    ('payment-reminder', 'sv-FI'): ('dbdb7a793e959743', '0aa24015ce0f98cc', '3afa306160b76f60'),
    ('payment-reminder', 'de-DE'): ('0b5c38e60d628f1d', '38b8d11c692e6c1b', 'b900e19aa98bf3c4'),
    ('payment-reminder', 'de-AT'): ('4b45968ee8b01235', 'e6298a06469ba9f3', '7f76089b96ad5da3'),
    # pl-PL e-mails: the transfer-title note of test_slip_notes.py (was 'Podaj  w tytule');
    # its SMS: 'na rachunek nr 61 ...' (test_polish_payment_sentence.py; was 'c144969969232bf2',
    # 'na Nr rachunku odbiorcy 61 ...'); all three: the sample's transfer title names its own
    # invoice, 'FV 2026019105563' (test_sample_transfer_titles.py; with 'FV 2026/03/4711' put
    # back the outputs hash as before: 'a656410cf42ca5b1', 'f4d9bfa2b84e7aaa', 'c551eca38b2a444b')
    ('payment-reminder', 'pl-PL'): ('4ac173cf96006f70', '30aaeb9bd4cba78c', '4d08ad83b5c5bc4d'),
    ('card-invoice', 'nb-NO'): ('f2beb7a245b06942', '961b9adce06e9a0e', '51ddd1f20ad3d248'),
    ('card-invoice', 'sv-SE'): ('8c5310db0d070ce2', '0d9c67f2de5c2c02', 'b17b42fec569ab11'),
    ('card-invoice', 'da-DK'): ('79acb07f56c13ac9', '1b7ba36ac26c4904', '975de6908e11201f'),
    # fi-FI, sv-FI: the sample's own customer's Finnish reference, base 5201883005 / 5201911406
    # (with base 2026004711 put back: '251c6483e6f7136e', '2ad55d4eee139738', '11f5b3bed27108a8'
    # and 'd1f82f1a3ae7b496', '1eb5b3f541b443db', '6cd9db8aa34b6e65')
    ('card-invoice', 'fi-FI'): ('5666ea99150c88c5', 'dc0b98c0ab58a843', '49e8c8ba55362e73'),
    ('card-invoice', 'sv-FI'): ('7e5c6bacd6b85d9e', '941fa036df66e97d', '1ac305fd9ecf6015'),
    ('card-invoice', 'de-DE'): ('d62e45ee9a72b1b3', '80f040aeb7c3cea7', 'abed19124d88ee5f'),
    ('card-invoice', 'de-AT'): ('37f2c460f37e25c4', 'e0334d55bec19743', 'baa1923d7d9a7abc'),
    # pl-PL: the sample's transfer title 'Faktura 2026029105563, klient 91055630' (was 'Faktura
    # 2026/03/4711, klient 10042': '8f75d5d6578639cb', '487d3f3ca396c530', 'd8bde776c17cd93f',
    # which the outputs hash to again with the old title put back)
    ('card-invoice', 'pl-PL'): ('7699fb621c4cb5a4', '2aeec91265bd0b0d', '0a7c192d7a60135c'),
}


@pytest.mark.parametrize(("layout_id", "locale"), sorted(GOLDEN))
def test_other_locales_are_byte_identical(layout_id: str, locale: str) -> None:
    assert digests(layout_id, locale) == GOLDEN[layout_id, locale]


def test_golden_digests_cover_every_other_sample_locale() -> None:
    assert set(GOLDEN) == {(lid, loc) for lid in CHANNEL_LAYOUTS
                           for loc in samples(LAYOUTS.get(lid)) if loc != "en-GB"}


def test_the_en_gb_reminder_calls_only_the_payment_reference_a_reference():
    # QA: "Reference: R-2026-033874" (the notice's case number) stood beside the payment
    # reference a payer must quote
    text, page = email_text("payment-reminder", "en-GB")
    lines = [line for line in text.splitlines() if line.startswith("Reference")]
    assert len(lines) == 1 and "FJB 61033874" in lines[0], lines
    assert "Case number: R-" in text and ">Case number</th>" in page


@pytest.mark.parametrize("layout", [LAYOUTS.get(lid, version)
                                    for lid in (*CHANNEL_LAYOUTS, "b2b-invoice")
                                    for version in LAYOUTS.versions(lid)
                                    if "en-GB" in LAYOUTS.get(lid, version).sample_locales],
                         ids=lambda layout: layout.ref)
def test_each_en_gb_sample_pays_with_its_own_customers_reference(layout: Layout) -> None:
    """QA: the en-GB samples asked Oliver Bennett (customer 61033874) to quote "FJB 10042
    4711", the country tests' customer 10042 and invoice 4711, and the business invoice's
    Pennine Joinery (customer B-800442) the same. A UK payer reference has no check digits
    (references.py: "gb", the reference as given, upper case) and names the payer's account
    with the bank, so the card invoice, the reminder of its statement and the business
    invoice quote "FJB" and the sample's own customer number. The samples are fixed in every
    version (a sample is test data, not a layout's output)."""
    data = json.loads(layout.sample_data("en-GB"))
    reference = data["payment"]["reference"]
    assert reference == "FJB " + data["customer"]["customer_id"], reference
    # and the composed document asks for exactly that reference
    composition = compose(ComposeRequest(tenant="t", layout=layout, data=json.dumps(data),
                                         document_id="d", now=NOW, locale="en-GB"))
    assert composition.payment_reference.display == reference
