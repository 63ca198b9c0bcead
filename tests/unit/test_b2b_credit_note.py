"""The printed b2b-invoice credit note asks for no payment (QA; fixed in 2.6.0, kept in 2.7.0
and 2.8.0, the default), with both engines, in every locale of the layout.

QA printed a credit note (type 381) whose data had a due date and a payment reference, as an
invoice's data has: its facts box read "Forfallsdato 30.03.2026" and "Kundeidentifikasjon
(KID) ...", so a customer could pay a credit note. 2.6.0's facts box shows neither, whatever
the data has; the page names what it credits (the preceding invoice, EN 16931 BG-3: its
number BT-25 in the facts box, with its date BT-26 in the line under the note, VAT
Directive 2006/112/EC art. 219) and says that the amount is credited (labels.toml
`credit_intro`, every locale). 2.5.0 is released and prints as it did. Checked on the
default, 2.8.0 (2.6.0 whose payment identifiers never break, tests/unit/test_b2b_identifiers.py,
and whose return line fits its box, tests/unit/test_b2b_return_line.py).

Read from the rendered PDF's first page (tests/pdf_inspect.py).
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from functools import cache

import pytest

from server.channels.pdf import PrintEngines, render_print
from server.compose.composer import ComposeRequest, compose
from server.compose.layouts import LayoutRegistry
from server.compose.model import Channel
from tests.pdf_inspect import normalise, pages_text

LAYOUTS = LayoutRegistry()
VERSION = "2.8.0"
NOW = datetime(2026, 3, 2, 9, tzinfo=UTC)
ENGINES = ("typst", "weasyprint")
LOCALES = LAYOUTS.get("b2b-invoice", VERSION).locales
CASES = [(locale, engine) for locale in LOCALES for engine in ENGINES]


def test_the_default_is_the_version_with_the_fix():
    assert LAYOUTS.get("b2b-invoice").version == VERSION
    assert tuple(LOCALES) == ("nb-NO", "sv-SE", "da-DK", "fi-FI", "sv-FI", "de-DE", "de-AT",
                              "pl-PL", "en-GB")


@cache
def printed(locale: str, engine: str, credit_note: bool = True) -> tuple[dict, str]:
    """The context and the first page's text of the locale's sample made a credit note of
    the sample's invoice, the invoice's due date and payment reference left in its data."""
    layout = LAYOUTS.get("b2b-invoice", VERSION)
    data = json.loads(layout.sample_data(locale))
    assert data["due_date"] and data["payment"]
    if credit_note:
        data.update(type="credit_note", number="K-2026-00031", issue_date="2026-03-09",
                    preceding_invoices=[{"number": data["number"],
                                         "issue_date": data["issue_date"]}])
    composition = compose(ComposeRequest(
        tenant="t", layout=layout, data=json.dumps(data), document_id="01JB2BCREDIT", now=NOW,
        locale=locale, channels=(Channel.PRINT,)))
    pdf = render_print(composition, layout, PrintEngines(engine)).content
    return composition.context, pages_text(pdf)[0]


@pytest.mark.parametrize(("locale", "engine"), CASES)
def test_a_credit_note_shows_no_due_date_or_payment_reference(locale, engine):
    context, text = printed(locale, engine)
    labels, payment, invoice = context["labels"], context["payment"], context["invoice"]
    assert context["is_credit_note"] and invoice["due_date"] and payment["reference"]
    assert labels["due_date"] not in text, text[:800]
    assert invoice["due_date"] not in text, text[:800]
    assert payment["reference_label"] not in text, text[:800]
    assert normalise(payment["reference"]) not in text, text[:800]
    # the invoice the same data makes shows both (the labels are the layout's)
    _, invoice_text = printed(locale, engine, credit_note=False)
    assert f"{labels['due_date']} {invoice['due_date']}" in invoice_text
    assert payment["reference_label"] in invoice_text


@pytest.mark.parametrize(("locale", "engine"), CASES)
def test_a_credit_note_names_the_invoice_it_credits_and_says_it_is_credited(locale, engine):
    context, text = printed(locale, engine)
    labels, invoice = context["labels"], context["invoice"]
    [credited] = invoice["preceding_invoices"]
    assert credited["date"]
    # the facts box: the label, then the number
    assert f"{labels['preceding_invoice']} {credited['number']}" in text, text[:800]
    # the line under the note: the number with its date
    line = f"{labels['preceding_invoice']}: {credited['number']} ({credited['date']})"
    assert line in text, text[:1200]
    assert f"({credited['date']}) ·" not in text  # nothing follows it
    assert normalise(labels["credit_intro"]) in text, text
    assert f"{labels['credited']} {normalise(context['totals']['payable'])}" in text


@pytest.mark.parametrize("engine", ENGINES)
def test_the_sample_credit_note(engine):
    # the layout's own credit note sample, with a due date added as QA had it
    layout = LAYOUTS.get("b2b-invoice", VERSION)
    data = json.loads((layout.path / "sample-credit-note.json").read_text(encoding="utf-8"))
    data["due_date"] = "2026-03-30"
    composition = compose(ComposeRequest(
        tenant="t", layout=layout, data=json.dumps(data), document_id="01JB2BCREDIT", now=NOW,
        channels=(Channel.PRINT,)))
    text = pages_text(render_print(composition, layout, PrintEngines(engine)).content)[0]
    for absent in ("Forfallsdato", "30.03.2026", "Kundeidentifikasjon (KID)", "KID"):
        assert absent not in text, (absent, text[:800])
    assert "Krediterer faktura F-2026-01442" in text
    assert "Krediterer faktura: F-2026-01442 (27.02.2026)" in text
    assert "Beløpet krediteres og trekkes fra neste faktura eller betales tilbake." in text
