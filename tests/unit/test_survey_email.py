"""The nps-survey layout rendered as a customer gets it: the e-mail's HTML and text, and the
SMS, in every locale."""

from __future__ import annotations

import email
import email.policy
import json
from datetime import UTC, datetime

import pytest

from server.channels import Renderers
from server.compose.composer import ComposeRequest, compose
from server.compose.model import Channel
from tests.a11y import parse, problems
from tests.layouts import shipped

LAYOUTS = shipped()
LAYOUT = LAYOUTS.get("nps-survey")
URL = "https://svar.fjordbank.no/r/eyJhbGciOiJIUzI1NiJ9.eyJqdGkiOiIwMUsifQ.c2ln"


def _render(locale: str, channel: Channel, **response):
    data = json.loads((LAYOUT.path / "sample.json").read_text())
    data["locale"] = locale
    data["response"].update({"url": URL, **response})
    composition = compose(ComposeRequest(
        tenant="nordkort", layout=LAYOUT, data=json.dumps(data), document_id="01TESTSURVEY",
        now=datetime(2026, 11, 30, tzinfo=UTC), channels=(channel,)))
    [output] = Renderers().render(composition, LAYOUT)
    return output


@pytest.mark.parametrize(("locale", "subject", "expires"), [
    ("nb-NO", "Hva syntes du om Fjordbank?", "14. desember 2026"),
    ("sv-SE", "Vad tyckte du om Fjordbank?", "14 december 2026"),
    ("da-DK", "Hvad syntes du om Fjordbank?", "14. december 2026"),
    ("fi-FI", "Mitä pidit palvelustamme? (Fjordbank)", "14. joulukuuta 2026"),
    ("en-GB", "How did Fjordbank do?", "14 December 2026"),
])
def test_email_html_and_text(locale, subject, expires):
    output = _render(locale, Channel.EMAIL)
    message = email.message_from_bytes(output.content, policy=email.policy.default)
    assert message["Subject"] == subject
    assert "List-Unsubscribe" not in message  # a service message, not marketing
    html = message.get_body(("html",)).get_content()
    text = message.get_body(("plain",)).get_content()
    assert problems(html, lang=locale[:2]) == []
    tree = parse(html)
    links = [e.attrs["href"] for e in tree.all if e.tag == "a"]
    # the 0-10 row (each opens the page with its score) and the answer button
    assert [link for link in links if "score=" in link] == [
        f"{URL}?score={n}" for n in range(11)]
    assert URL in links
    scale = [e.text.strip() for e in tree.all if e.tag == "a" and "score=" in e.attrs["href"]]
    assert scale == [str(n) for n in range(11)]
    assert expires in html and expires in text
    assert URL in text and "NPS" in text and "2222" in text
    assert "<script" not in html.lower()
    assert output.facts["html_bytes"] < 102 * 1024


def test_email_escapes_the_data():
    data = json.loads((LAYOUT.path / "sample.json").read_text())
    data["survey"]["about"] = "<b>pakken</b> & brevet"
    composition = compose(ComposeRequest(
        tenant="nordkort", layout=LAYOUT, data=json.dumps(data), document_id="01TESTSURVEY",
        now=datetime(2026, 11, 30, tzinfo=UTC), channels=(Channel.EMAIL,)))
    [output] = Renderers().render(composition, LAYOUT)
    message = email.message_from_bytes(output.content, policy=email.policy.default)
    html = message.get_body(("html",)).get_content()
    assert "&lt;b&gt;pakken&lt;/b&gt; &amp; brevet" in html and "<b>pakken" not in html


@pytest.mark.parametrize("locale", ["nb-NO", "sv-SE", "da-DK", "fi-FI", "en-GB"])
def test_sms_carries_the_reply_code_within_two_segments(locale):
    output = _render(locale, Channel.SMS)
    text = output.content.decode()
    assert output.facts["segments"] <= 2
    assert "NPS" in text and "2222" in text
    short = _render(locale, Channel.SMS, url="https://s.fj.no/r/x")
    assert short.facts["template"] == "sms.txt" and "https://s.fj.no/r/x" in \
        short.content.decode()


def test_a_link_that_expires_before_the_surveys_date_is_refused():
    # was composed: the e-mail of a survey dated 28 November 2026 said the link works
    # "til og med 1. januar 2020"
    from server.errors import InvalidInput

    with pytest.raises(InvalidInput) as refused:
        _render("nb-NO", Channel.EMAIL, expires="2020-01-01")
    assert [(v.field, v.description) for v in refused.value.violations] == [(
        "$.response.expires", "2020-01-01 is before the survey's date 2026-11-28 "
        "($.survey.date): the link cannot expire before the survey's date")]
    assert _render("nb-NO", Channel.EMAIL, expires="2026-11-28").content  # the same day: fine
