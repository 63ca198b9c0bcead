"""Email channel: the `.eml` parsed back with the standard library's `email` package.

The print PDF is a stand-in here (a fake engine), so these tests stay fast; the real PDF
attachment is covered by the gRPC test in tests/integration/test_email_render.py.
"""

from __future__ import annotations

import email
import html
import json
import re
import shutil
from dataclasses import replace
from datetime import UTC, datetime
from email import policy
from email.message import EmailMessage
from email.utils import parsedate_to_datetime

import pytest

from server.channels import Renderers
from server.channels import email as email_channel
from server.channels.email import render_email
from server.channels.email_headers import headers_read_back
from server.channels.pdf import RenderedPdf
from server.compose.composer import ComposeRequest, compose
from server.compose.layouts import LayoutError, load_layout
from server.compose.model import Channel, Output
from server.errors import InvalidInput, TooLarge
from tests.layouts import shipped
from tests.pdf_inspect import BLANK_PDF

LAYOUTS = shipped()
NOW = datetime(2026, 3, 2, 7, 30, tzinfo=UTC)
FAKE_PDF = BLANK_PDF  # a real blank page: the print channel reads back every PDF


class CountingEngine:
    """A PDF engine that counts its renders."""

    def __init__(self):
        self.calls = 0

    def render(self, layout, composition) -> RenderedPdf:
        self.calls += 1
        return RenderedPdf(content=FAKE_PDF, pages=1)


def fake_pdf() -> Output:
    return Output(channel=Channel.PRINT, media_type="application/pdf", content=FAKE_PDF,
                  sha256="0" * 64, facts={"pages": 1})


def composition(layout_id: str, change=None, sample: str = "sample.json",
                locale: str | None = None, channels=(Channel.EMAIL,)):
    layout = LAYOUTS.get(layout_id)
    data = json.loads((layout.path / sample).read_text(encoding="utf-8"))
    if change:
        change(data)
    return compose(ComposeRequest(
        tenant="nordkort", layout=layout, data=json.dumps(data), document_id="01JN4Q7W2E",
        now=NOW, locale=locale, channels=list(channels))), layout


def rendered(layout_id: str, change=None, **kwargs) -> tuple[Output, EmailMessage]:
    comp, layout = composition(layout_id, change, **kwargs)
    output = render_email(comp, layout, pdf=fake_pdf)
    return output, email.message_from_bytes(output.content, policy=policy.default)


def html_of(message: EmailMessage) -> str:
    return message.get_body(("html",)).get_content()


def html_text(message: EmailMessage) -> str:
    """The HTML with entities resolved (the inliner writes no-break spaces as &nbsp;)."""
    return html.unescape(html_of(message))


def text_of(message: EmailMessage) -> str:
    return message.get_body(("plain",)).get_content()


# --- structure and headers -----------------------------------------------------------------


def test_invoice_email_is_mixed_alternative_with_pdf():
    output, message = rendered("card-invoice")
    assert output.channel == Channel.EMAIL and output.media_type == "message/rfc822"
    assert [part.get_content_type() for part in message.walk()] == [
        "multipart/mixed", "multipart/alternative", "text/plain", "text/html", "application/pdf"]
    [attachment] = list(message.iter_attachments())
    assert attachment.get_content() == FAKE_PDF
    assert attachment.get_filename().endswith(".pdf")
    assert output.facts["pdf_attached"] is True
    assert output.facts["html_bytes"] == len(html_of(message).encode("utf-8"))
    assert b"\r\n" in output.content and b"\n" not in output.content.replace(b"\r\n", b"")


def test_headers_come_from_layout_recipient_and_composition():
    output, message = rendered("card-invoice")
    comp, _ = composition("card-invoice")
    assert message["From"] == "Fjordbank <faktura@fjordbank.no>"
    assert message["Reply-To"] == "Fjordbank kundeservice <kort@fjordbank.no>"
    assert message["To"].addresses[0].addr_spec == "kari.nordmann@example.no"
    assert message["To"].addresses[0].display_name == "Kari Nordmann"
    assert message["Subject"] == output.facts["subject"]
    assert comp.context["summary"]["amount_due"] in message["Subject"]
    assert comp.context["invoice"]["due_date"] in message["Subject"]
    assert message["Message-ID"] == "<01JN4Q7W2E@fjordbank.no>"
    assert parsedate_to_datetime(message["Date"]) == NOW  # the composition's time, not now
    assert message["Content-Language"] == "nb-NO"
    assert message["List-Unsubscribe"] is None and message["List-Unsubscribe-Post"] is None


def test_a_subject_from_data_is_plain_text_not_html():
    # The subject is a header: quotes, angle brackets and ampersands stay as they are
    # (they came out as &#34; and &amp;), and the HTML escapes them once in its <title>.
    subject = 'Velkommen "Kari" \u2013 \'Fjordbank\' <kunde> & co'
    output, message = rendered("welcome-letter",
                               lambda data: data["letter"].update(subject=subject))
    assert message["Subject"] == output.facts["subject"] == subject
    [title] = re.findall(r"<title>(.*?)</title>", html_of(message), re.S)
    assert "<" not in title and html.unescape(title) == subject  # escaped once, exactly


INJECTION = "=?utf-8?q?=0D=0AReply-To:_p@evil.example=0D=0AX-I:_1?="


@pytest.mark.parametrize(("layout_id", "change", "field"), [
    ("card-invoice", lambda d: d["customer"].update(name=f"K {INJECTION}"), "$.customer.name"),
    ("welcome-letter", lambda d: d["letter"].update(subject=f"Hei {INJECTION}"),
     "$.letter.subject"),
])
def test_an_encoded_word_in_a_name_or_subject_is_refused_not_decoded_into_headers(
        layout_id, change, field):
    # Python before 3.11.10 (CVE-2024-6923) decodes the encoded word and writes its CR LF
    # raw: the e-mail got a Reply-To and an X-I header from the customer's name.
    comp, layout = composition(layout_id, change)
    with pytest.raises(InvalidInput) as info:
        render_email(comp, layout, pdf=fake_pdf)
    [violation] = info.value.violations
    assert violation.field == field and "encoded word" in violation.description


@pytest.mark.parametrize("brk", ["\r\n", "\n", "\r", "\u0085", "\u2028"])
def test_a_line_break_in_data_the_subject_carries_is_refused_naming_the_field(brk):
    # It went out as "Subject: Velkommen X-Evil: 1" while the PDF printed two lines.
    comp, layout = composition(
        "welcome-letter", lambda d: d["letter"].update(subject=f"Velkommen{brk}X-Evil: 1"))
    with pytest.raises(InvalidInput) as info:
        render_email(comp, layout, pdf=fake_pdf)
    assert [v.field for v in info.value.violations] == ["$.letter.subject"]
    assert "line break" in info.value.violations[0].description


def test_headers_that_do_not_read_back_as_written_are_refused():
    message = EmailMessage()
    message["To"] = "kari@example.no"
    message["Subject"] = "Faktura"
    written = b"To: kari@example.no\r\nSubject: Faktura\r\nBcc: p@evil.example\r\n\r\nx"
    with pytest.raises(InvalidInput) as info:
        headers_read_back(written, message)
    assert "bcc" in info.value.violations[0].description
    fine = b"To: kari@example.no\r\nSubject:\r\n Faktura\r\n\r\nx"  # folded: one header
    assert headers_read_back(fine, message) == fine


def test_same_composition_gives_identical_bytes():
    first, _ = rendered("card-invoice")
    second, _ = rendered("card-invoice")
    assert first.content == second.content and first.sha256 == second.sha256


def test_tenant_sender_overrides_layout_default():
    comp, layout = composition("card-invoice")
    manifest = {**layout.manifest, "email": {
        **layout.section("email"),
        "senders": {"nordkort": {"from": "Nordkort <faktura@nordkort.no>"}}}}
    settings = email_channel.email_settings(replace(layout, manifest=manifest), "nordkort")
    assert settings.sender == "Nordkort <faktura@nordkort.no>"
    assert settings.reply_to == layout.section("email")["reply_to"]


# --- content ---------------------------------------------------------------------------------


def test_html_has_key_facts_inlined_styles_and_kept_media_queries():
    comp, _ = composition("card-invoice")
    _, message = rendered("card-invoice")
    page = html_of(message)
    ctx = comp.context
    for fact in (ctx["summary"]["amount_due"], ctx["invoice"]["due_date"],
                 ctx["payment"]["reference"], ctx["payment"]["account"]):
        assert fact in html_text(message)
    assert '<table class="container"' in page and 'width="600"' in page
    assert 'style="' in page and "background-color: #0b3a5b" in page  # inlined
    head = page[:page.index("</head>")]
    assert "@media only screen and (max-width: 620px)" in head
    assert "@media (prefers-color-scheme: dark)" in head
    assert "background-color: #0b3a5b; padding: 20px 32px" not in head  # rules inlined, gone
    assert 'class="preheader"' in page and "display: none" in page
    assert "<img" not in page  # text logo: nothing for a client to block


def test_data_is_escaped_in_html_and_plain_in_text():
    def evil(data):
        data["customer"]["name"] = "<b>x</b> & Co"
    _, message = rendered("card-invoice", evil)
    page = html_of(message)
    assert "&lt;b&gt;x&lt;/b&gt; &amp; Co" in page
    assert "<b>x</b>" not in page
    assert "<b>x</b> & Co" in text_of(message)  # text/plain is not HTML: shown as typed


def test_text_alternative_is_written_not_stripped():
    comp, _ = composition("payment-reminder")
    _, message = rendered("payment-reminder")
    text = text_of(message)
    ctx = comp.context
    assert "<" not in text and "style" not in text
    for line in (f"{ctx['labels']['total_to_pay']}: {ctx['claim']['total']}",
                 f"{ctx['payment']['reference_label']}: {ctx['payment']['reference']}",
                 f"{ctx['labels']['new_due_date']}: {ctx['payment']['due_date']}"):
        assert line in text
    assert ctx["legal_text"] in text


def test_swedish_email_uses_swedish_labels():
    _, message = rendered("card-invoice", sample="sample-sv-SE.json", locale="sv-SE")
    assert message["Subject"].startswith("Kreditkortsfaktura")
    assert "OCR-nummer" in html_of(message) and "OCR-nummer" in text_of(message)
    assert message["Content-Language"] == "sv-SE"


# --- marketing -------------------------------------------------------------------------------


def test_list_unsubscribe_only_on_the_marketing_layout():
    output, message = rendered("welcome-letter")
    assert message["List-Unsubscribe"] == (
        "<https://fjordbank.no/avmeld?d=01JN4Q7W2E>, "
        "<mailto:avmeld@fjordbank.no?subject=unsubscribe%2001JN4Q7W2E>")
    assert message["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    assert "https://fjordbank.no/avmeld?d=01JN4Q7W2E" in html_of(message)
    assert output.facts["pdf_attached"] is False
    assert [p.get_content_type() for p in message.walk()] == [
        "multipart/alternative", "text/plain", "text/html"]
    for layout_id in ("card-invoice", "payment-reminder"):
        _, other = rendered(layout_id)
        assert "List-Unsubscribe" not in other


# --- refusals --------------------------------------------------------------------------------


def test_recipient_without_email_is_refused_naming_the_field():
    def no_email(data):
        data["customer"].pop("email", None)
    comp, layout = composition("card-invoice", no_email, channels=(Channel.PRINT,))
    with pytest.raises(InvalidInput) as info:
        render_email(comp, layout, pdf=fake_pdf)
    assert [v.field for v in info.value.violations] == ["$.customer.email"]


def test_email_layout_without_subject_is_refused_at_load(tmp_path):
    card = LAYOUTS.get("card-invoice")
    folder = tmp_path / card.id / card.path.name  # the folder of its files (2.2.0: 2.0.0's)
    shutil.copytree(card.path, folder)
    manifest = folder / "manifest.toml"
    text = manifest.read_text(encoding="utf-8")
    manifest.write_text("\n".join(line for line in text.splitlines()
                                  if not line.startswith("subject =")), encoding="utf-8")
    with pytest.raises(LayoutError, match=r"email layout needs \[email\] subject"):
        load_layout(folder)


def test_renderer_refuses_a_layout_without_subject_too():
    comp, layout = composition("card-invoice")
    section = {k: v for k, v in layout.section("email").items() if k != "subject"}
    broken = replace(layout, manifest={**layout.manifest, "email": section})
    with pytest.raises(LayoutError, match="needs a subject"):
        render_email(comp, broken, pdf=fake_pdf)


def test_html_over_the_size_limit_fails_loudly(monkeypatch):
    monkeypatch.setattr(email_channel, "MAX_HTML_BYTES", 5_000)
    # Requested, the email is owed: refused while composing, naming the template,
    with pytest.raises(InvalidInput, match="cannot carry") as info:
        composition("card-invoice")
    [violation] = info.value.violations
    assert violation.field.endswith("email.html") and "over the 5000" in violation.description
    # and the renderer refuses it on a plan that still holds it.
    comp, layout = composition("card-invoice", channels=(Channel.PRINT,))
    with pytest.raises(TooLarge, match="over the 5000 byte limit"):
        render_email(comp, layout, pdf=fake_pdf)


def test_every_sample_stays_under_the_gmail_limit():
    for layout in LAYOUTS.latest():
        if Channel.EMAIL not in layout.channels:
            continue
        for sample in sorted(layout.path.glob("sample*.json")):
            locale = sample.stem.removeprefix("sample").removeprefix("-") or None
            output, _ = rendered(layout.id, sample=sample.name,
                                 locale=locale if locale in layout.locales else None)
            assert output.facts["html_bytes"] < email_channel.MAX_HTML_BYTES


# --- Renderers: the PDF once -----------------------------------------------------------------


def test_renderers_render_the_pdf_once_for_print_and_email():
    engine = CountingEngine()
    comp, layout = composition("card-invoice", channels=(Channel.PRINT, Channel.EMAIL))
    printed, mailed = Renderers(engine, mark_zones=()).render(comp, layout)
    assert engine.calls == 1
    message = email.message_from_bytes(mailed.content, policy=policy.default)
    [attachment] = list(message.iter_attachments())
    assert attachment.get_content() == printed.content


def test_renderers_render_the_pdf_for_email_alone():
    engine = CountingEngine()
    comp, layout = composition("card-invoice", channels=(Channel.EMAIL,))
    [mailed] = Renderers(engine, mark_zones=()).render(comp, layout)
    assert engine.calls == 1 and mailed.facts["pdf_attached"] is True
    comp, layout = composition("welcome-letter", channels=(Channel.EMAIL,))
    Renderers(engine, mark_zones=()).render(comp, layout)
    assert engine.calls == 1  # no attachment, no PDF
