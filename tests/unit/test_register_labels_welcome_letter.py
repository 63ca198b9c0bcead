"""welcome-letter 2.3.0 (the default) labels the sender's register number with the register
of the sender's country in the document's language, in the print's footer and the e-mail's
(labels.toml `register_<country>`, builders/invoice.py `register_label`, as b2b-invoice
2.3.0 does). QA: the label followed the document's locale, so a Norwegian bank's letter in
de-DE read "Handelsregister 987 654 309" (Germany's register, a Norwegian number). 2.2.0 is
released and reads `org_number` as before.
"""

from __future__ import annotations

import email
import json
import tomllib
from datetime import UTC, datetime
from email import policy

import pytest

from server.channels.email import render_email
from server.channels.pdf import render_print
from server.compose.composer import ComposeRequest, compose
from server.compose.model import Channel, Output
from tests.layouts import shipped
from tests.pdf_inspect import normalise, pages_text
from tests.print_engines import print_engines

LAYOUTS = shipped()
VERSION, OLD = "2.3.0", "2.2.0"
NOW = datetime(2026, 3, 2, 9, tzinfo=UTC)
COUNTRIES = ("NO", "SE", "DK", "FI", "DE", "AT", "PL", "GB")
# a sender's postal address in each country (the letter's return line and masthead)
ADDRESSES = {
    "NO": ("Postboks 1490 Vika", "0116", "Oslo"), "SE": ("Box 7", "111 51", "Stockholm"),
    "DK": ("Vesterbrogade 1", "1620", "København V"), "FI": ("PL 1", "00101", "Helsinki"),
    "DE": ("Postfach 11 02 40", "10832", "Berlin"), "AT": ("Kärntner Straße 12", "1010", "Wien"),
    "PL": ("ul. Zachodnia 45", "90-402", "Łódź"), "GB": ("1 King Street", "EC2V 8AU", "London"),
}


def letter(locale: str, sender_country: str = "NO", version: str = VERSION,
           channels: tuple[Channel, ...] = (Channel.PRINT,)):
    """The nb-NO sample (Fjordbank ASA, Org.nr. 987 654 309) in `locale`, its sender moved
    to `sender_country`."""
    layout = LAYOUTS.get("welcome-letter", version)
    data = json.loads(layout.sample_data("nb-NO"))
    line, postal_code, city = ADDRESSES[sender_country]
    data["sender"]["address"] = {"lines": [line], "postal_code": postal_code, "city": city,
                                 "country": sender_country}
    composition = compose(ComposeRequest(
        tenant="t", layout=layout, data=json.dumps(data), document_id="01JLETTERREG", now=NOW,
        channels=channels, locale=locale))
    return composition, layout


def footer(composition, layout) -> str:
    pdf = render_print(composition, layout, print_engines("weasyprint", layout)).content
    return normalise(pages_text(pdf)[0])[-120:]


def email_parts(composition, layout) -> tuple[str, str]:
    pdf = Output(channel=Channel.PRINT, media_type="application/pdf", content=b"%PDF-1.7\n",
                 sha256="0" * 64, facts={"pages": 1})
    eml = render_email(composition, layout, pdf=lambda: pdf).content
    message = email.message_from_bytes(eml, policy=policy.default)
    return (message.get_body(("html",)).get_content(),
            message.get_body(("plain",)).get_content())


def test_a_norwegian_banks_letter_in_german_names_the_norwegian_register():
    composition, layout = letter("de-DE")
    assert composition.context["sender"]["register_label"] == "Registernr. (Foretaksregisteret)"
    text = footer(composition, layout)
    assert "Fjordbank ASA · Registernr. (Foretaksregisteret) 987 654 309" in text, text
    assert "Handelsregister" not in text


def test_the_letters_email_names_the_same_register():
    composition, layout = letter("de-DE", channels=(Channel.EMAIL,))
    html, plain = email_parts(composition, layout)
    assert "Registernr. (Foretaksregisteret) 987 654 309" in html
    assert "Fjordbank ASA · Registernr. (Foretaksregisteret) 987 654 309" in plain
    assert "Handelsregister" not in html + plain


def test_a_german_sender_in_de_at_keeps_the_handelsregister():
    composition, layout = letter("de-AT", "DE")
    assert "Fjordbank ASA · Handelsregister 987 654 309" in footer(composition, layout)


@pytest.mark.parametrize("locale", LAYOUTS.get("welcome-letter", VERSION).locales)
def test_every_senders_register_is_named_in_every_locale(locale):
    words = tomllib.loads((LAYOUTS.get("welcome-letter", VERSION).path / "labels.toml")
                          .read_text(encoding="utf-8"))[locale]
    for country in COUNTRIES:
        composition, _ = letter(locale, country)
        assert composition.context["sender"]["register_label"] == words[f"register_{country}"]
    # the locale's own country keeps the label 2.2.0 printed for it
    assert words[f"register_{locale.split('-')[1]}"] == words["org_number"]


def test_2_2_0_followed_the_documents_locale():
    composition, layout = letter("de-DE", version=OLD)
    assert "Fjordbank ASA · Handelsregister 987 654 309" in footer(composition, layout)
    html, plain = email_parts(*letter("de-DE", version=OLD, channels=(Channel.EMAIL,)))
    assert "Handelsregister 987 654 309" in plain
