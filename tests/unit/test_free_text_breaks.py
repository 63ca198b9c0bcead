"""Free text keeps its line breaks wherever the customer reads it: payment-reminder 2.2.0 and
2.3.0 (the notice's message and legal text, which a creditor's lawyers write in paragraphs)
and welcome-letter 2.2.0 and 2.3.0 (a letter paragraph, the campaign's text), in the print
PDF of every engine the layout has and in the HTML e-mail. Their 2.0.0 templates ran the
lines together in WeasyPrint's print and in the e-mail ("Første avsnitt. Andre avsnitt." on
one line), while the Typst print kept them.

The print is read back from the PDF (tests/pdf_inspect.py: the second line stands under the
first, at the same left edge); the e-mail is the .eml's HTML part (`<br>` between the lines:
Outlook's Word engine ignores CSS `white-space`, every mail client shows `<br>`) and its text
part (the lines as lines).
"""

from __future__ import annotations

import email
import json
from datetime import UTC, datetime
from email import policy

import pytest
from markupsafe import Markup

from server.channels.email import render_email
from server.channels.pdf import render_print
from server.compose.composer import ComposeRequest, compose
from server.compose.layouts import line_breaks
from server.compose.model import Channel, Output
from tests.layouts import shipped
from tests.pdf_inspect import find_text
from tests.print_engines import print_engines

LAYOUTS = shipped()
NOW = datetime(2026, 3, 2, 9, tzinfo=UTC)
# the reminder's date lies after its sample's due date, as the law of its country asks
REMINDER_NOW = datetime(2026, 2, 9, 9, tzinfo=UTC)


def _reminder(data: dict) -> list[tuple[str, str]]:
    data["notice"] = {"message": "Hei Kari,\nvi minner om fakturaen.",
                      "legal_text": "Første avsnitt av varselet.\r\nAndre avsnitt av varselet."}
    return [("Hei Kari,", "vi minner om fakturaen."),
            ("Første avsnitt av varselet.", "Andre avsnitt av varselet.")]


def _welcome(data: dict) -> list[tuple[str, str]]:
    data["letter"]["paragraphs"][0] = "Kortet ditt er sendt.\nPIN-koden kommer i eget brev."
    data["campaign"]["body"] = "Spar med oss.\nFørste måned uten gebyr."
    return [("Kortet ditt er sendt.", "PIN-koden kommer i eget brev."),
            ("Spar med oss.", "Første måned uten gebyr.")]


# layout -> (how the test's free text goes into its sample, the engines its print has)
CASES = {"payment-reminder": (_reminder, ("typst", "weasyprint")),
         "welcome-letter": (_welcome, ("weasyprint",))}
# the versions with the fix: 2.2.0 and the default made from it
VERSIONS = {"payment-reminder": ("2.2.0", "2.3.0"), "welcome-letter": ("2.2.0", "2.3.0")}
PRINTS = [(layout, engine, version) for layout, (_, engines) in CASES.items()
          for engine in engines for version in VERSIONS[layout]]
EMAILS = [(layout, version) for layout in CASES for version in VERSIONS[layout]]


def _composed(layout_id: str, channels: tuple[Channel, ...], version: str = "2.2.0"):
    layout = LAYOUTS.get(layout_id, version)
    data = json.loads(layout.sample_data("nb-NO"))
    lines = CASES[layout_id][0](data)
    composition = compose(ComposeRequest(
        tenant="t", layout=layout, data=json.dumps(data), document_id="01JLINEBREAKS",
        now=REMINDER_NOW if layout_id == "payment-reminder" else NOW, locale="nb-NO",
        channels=channels))
    return composition, layout, lines


def test_line_breaks_escapes_each_line_and_joins_them_with_br():
    assert line_breaks("a <b> & c\r\nd\ne\rf\u2028g") == Markup(
        "a &lt;b&gt; &amp; c<br>\nd<br>\ne<br>\nf<br>\ng")
    assert line_breaks("one line") == Markup("one line")


def test_2_2_0_or_a_version_made_from_it_is_the_default_of_both_layouts():
    # payment-reminder 2.3.0 and welcome-letter 2.3.0 (the defaults): 2.2.0 with the tagged
    # PDF's and the register label's fixes, their free text as 2.2.0's (tested here too)
    assert [LAYOUTS.get(layout_id).version for layout_id in CASES] == ["2.3.0", "2.3.0"]


@pytest.mark.parametrize(("layout_id", "engine", "version"), PRINTS)
def test_the_print_puts_each_line_under_the_one_before(layout_id, engine, version):
    composition, layout, lines = _composed(layout_id, (Channel.PRINT,), version)
    pdf = render_print(composition, layout, print_engines(engine, layout)).content
    for first, second in lines:
        [above], [below] = find_text(pdf, first), find_text(pdf, second)
        assert below.top > above.bottom - 0.5, (engine, first, above, below)
        assert abs(below.left - above.left) < 0.5, (engine, first, above, below)


@pytest.mark.parametrize(("layout_id", "version"), EMAILS)
def test_the_email_keeps_the_line_breaks_in_html_and_text(layout_id, version):
    composition, layout, lines = _composed(layout_id, (Channel.EMAIL,), version)
    pdf = Output(channel=Channel.PRINT, media_type="application/pdf", content=b"%PDF-1.7\n",
                 sha256="0" * 64, facts={"pages": 1})
    eml = render_email(composition, layout, pdf=lambda: pdf).content
    message = email.message_from_bytes(eml, policy=policy.default)
    html = message.get_body(("html",)).get_content().replace("\r\n", "\n")  # MIME's CRLF
    text = message.get_body(("plain",)).get_content().splitlines()
    for first, second in lines:
        assert f"{first}<br>\n{second}" in html, (first, html)
        # (the campaign's link follows its text on the same line)
        assert text[text.index(first) + 1].startswith(second), (first, text)
