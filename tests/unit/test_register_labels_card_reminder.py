"""The issuer's company register on the card invoice (2.2.0) and the creditor's on the payment
reminder (2.3.0) is named for the company's country, in the document's language, as
b2b-invoice 2.3.0 names the seller's (QA): a Norwegian issuer's footer on a de-DE document
read "Fjordbank ASA · Handelsregister 987 654 309" (Germany's register, a Norwegian number).
labels.toml `register_<country>` (b2b-invoice 2.3.0's labels), builders/invoice.py
`register_label`, in the print footer of both engines and the e-mail's footer. Older
versions keep printing the locale's `org_number` (they must re-render exactly).
"""

from __future__ import annotations

import json
from datetime import UTC, datetime

import pytest

from server.channels.email import message_parts
from server.channels.pdf import PrintEngines
from server.compose.composer import ComposeRequest, compose
from server.compose.model import Channel
from tests.layouts import shipped
from tests.pdf_inspect import pages_text

LAYOUTS = shipped()
ENGINES = PrintEngines()
NOW = datetime(2026, 11, 22, tzinfo=UTC)
# (layout, the version with the fix, the party that issues it)
FIXED = [("card-invoice", "2.2.0", "issuer"), ("payment-reminder", "2.3.0", "creditor")]
NORWEGIAN = {"name": "Fjordbank ASA", "org_number": "987 654 309",
             "address": {"lines": ["Postboks 1234 Sentrum"], "postal_code": "0107",
                         "city": "Oslo", "country": "NO"}}


def norwegian_issuer(layout_id: str, version: str, party: str, locale: str = "de-DE",
                     channel: Channel = Channel.PRINT):
    """The locale's sample issued by Fjordbank ASA of Norway (the payment stays the
    locale's: a Norwegian bank collecting in euros into a German account)."""
    layout = LAYOUTS.get(layout_id, version)
    data = json.loads(layout.sample_data(locale))
    data[party].update(NORWEGIAN)
    return layout, compose(ComposeRequest(
        tenant="t", layout=layout, data=json.dumps(data), document_id="01REGISTER", now=NOW,
        channels=(channel,), locale=locale))


@pytest.mark.parametrize("engine", ["typst", "weasyprint"])
@pytest.mark.parametrize(("layout_id", "version", "party"), FIXED)
def test_a_norwegian_issuers_footer_on_a_german_document_names_the_norwegian_register(
        layout_id, version, party, engine):
    layout, composition = norwegian_issuer(layout_id, version, party)
    assert composition.context[party]["register_label"] == "Registernr. (Foretaksregisteret)"
    pdf = ENGINES.engine(engine).render(layout, composition).content
    text = " ".join(pages_text(pdf))
    assert "Fjordbank ASA · Registernr. (Foretaksregisteret) 987 654 309" in text, text[-300:]
    assert "Handelsregister" not in text


@pytest.mark.parametrize(("layout_id", "version", "party"), FIXED)
def test_the_email_footer_names_the_issuers_register_too(layout_id, version, party):
    parts = message_parts(*reversed(norwegian_issuer(layout_id, version, party,
                                                     channel=Channel.EMAIL)))
    for body in (parts.text, parts.html.html):
        assert "Registernr. (Foretaksregisteret) 987 654 309" in body
        assert "Handelsregister" not in body


@pytest.mark.parametrize(("layout_id", "version", "party"), FIXED)
@pytest.mark.parametrize("locale", ["nb-NO", "de-DE", "de-AT", "en-GB"])
def test_an_issuer_in_the_documents_own_country_keeps_its_label(layout_id, version, party,
                                                                 locale):
    """The samples' issuers are of the locale's country: their label is the one the
    earlier versions printed (org_number), so their footers read as before."""
    layout = LAYOUTS.get(layout_id, version)
    composition = compose(ComposeRequest(
        tenant="t", layout=layout, data=layout.sample_data(locale), document_id="01REGISTER",
        now=NOW, channels=(Channel.PRINT,), locale=locale))
    assert composition.context[party]["register_label"] == layout.labels_for(locale)[
        "org_number"]
    assert not any(key.startswith("register_") for key in composition.context["labels"])
