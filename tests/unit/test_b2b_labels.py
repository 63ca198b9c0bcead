"""The facts box of the b2b-invoice print (layouts/b2b-invoice/2.5.0), with both engines, in
every locale (QA on the b2b invoice print; 2.0.0 and its based 2.1.0 show both faults):

- the payment reference is labelled with its label form (labels.toml `reference_<scheme>`,
  builders/base.py payment_labels: "Betalings-id (FIK)"), not the running-text name the
  payment sentence uses ("betalings-id"), which printed lowercase among capitalised labels;
- a credit note (type code 381) labels its issue date `credit_note_date` ("Kreditnotadato"),
  as it labels its number `credit_note_number`, not "Fakturadato".

Read from the rendered PDF's first page (tests/pdf_inspect.py), where the facts box lists
its rows in order: number, date, due date, reference, customer number.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from functools import cache

import pytest

from server.channels.pdf import render_print
from server.compose.composer import ComposeRequest, compose
from server.compose.model import Channel
from tests.layouts import shipped
from tests.pdf_inspect import find_text, normalise, pages_text
from tests.print_engines import print_engines

LAYOUTS = shipped()
VERSION = "2.5.0"
NOW = datetime(2026, 3, 2, 9, tzinfo=UTC)
ENGINES = ("typst", "weasyprint")
CREDIT_NOTE_NUMBER = "K-2026-00031"

# locale: (the reference's label in the facts box, its name in running text, the words before
# the reference in the payment sentence: payment_intro, which names it by reference_name but
# in fi-FI, where the case ending goes on the word: "viitteellä")
REFERENCE = {
    "nb-NO": ("Kundeidentifikasjon (KID)", "KID", "med KID"),
    "sv-SE": ("OCR-nummer", "OCR", "med OCR"),
    "da-DK": ("Betalings-id (FIK)", "betalings-id", "med betalings-id"),
    "fi-FI": ("Viitenumero", "viitenumero", "viitteellä"),
    "sv-FI": ("Referensnummer", "referensnummer", "med referensnummer"),
    "de-DE": ("Gläubigerreferenz (RF)", "RF-Referenz", "mit RF-Referenz"),
    "de-AT": ("Gläubigerreferenz (RF)", "RF-Referenz", "mit RF-Referenz"),
    # the Polish transfer form's field "Tytułem" (_shared/fjordbank-2/slip-labels.toml)
    "pl-PL": ("Tytułem", "tytuł przelewu", "podając tytuł przelewu:"),
    "en-GB": ("Reference", "reference", "quoting reference"),
}
# locale: (the credit note's number label, its date label, the invoice's date label)
CREDIT_NOTE = {
    "nb-NO": ("Kreditnotanummer", "Kreditnotadato", "Fakturadato"),
    "sv-SE": ("Kreditnotanummer", "Kreditnotadatum", "Fakturadatum"),
    "da-DK": ("Kreditnotanummer", "Kreditnotadato", "Fakturadato"),
    "fi-FI": ("Hyvityslaskun numero", "Hyvityslaskun päiväys", "Laskun päiväys"),
    "sv-FI": ("Kreditnotanummer", "Kreditnotadatum", "Fakturadatum"),
    "de-DE": ("Gutschriftsnummer", "Gutschriftsdatum", "Rechnungsdatum"),
    "de-AT": ("Gutschriftsnummer", "Gutschriftsdatum", "Rechnungsdatum"),
    "pl-PL": ("Numer faktury korygującej", "Data wystawienia korekty", "Data wystawienia"),
    "en-GB": ("Credit note number", "Credit note date", "Invoice date"),
}
CASES = [(locale, engine) for locale in REFERENCE for engine in ENGINES]


def test_every_locale_of_the_layout_is_checked():
    assert tuple(LAYOUTS.get("b2b-invoice", VERSION).locales) == tuple(REFERENCE)
    assert tuple(CREDIT_NOTE) == tuple(REFERENCE)


def test_the_default_is_made_from_the_version_with_the_fixes():
    # 2.8.0, the default: 2.7.0 (2.6.0, 2.5.0 with a credit note that asks for no payment: no
    # due date, no payment reference, tests/unit/test_b2b_credit_note.py, whose payment
    # identifiers never break, tests/unit/test_b2b_identifiers.py) whose return line fits
    # its box (tests/unit/test_b2b_return_line.py); its labels are 2.5.0's
    default = LAYOUTS.get("b2b-invoice")
    assert default.version == "2.8.0"
    assert (default.path / "labels.toml").read_bytes() == \
        (LAYOUTS.get("b2b-invoice", VERSION).path / "labels.toml").read_bytes()


@cache
def printed(locale: str, engine: str, credit_note: bool) -> tuple[dict, str]:
    """The composition's context and the first page's text of the locale's sample, as an
    invoice or made a credit note of it (type 381, crediting the sample's invoice)."""
    layout = LAYOUTS.get("b2b-invoice", VERSION)
    data = json.loads(layout.sample_data(locale))
    if credit_note:
        data.update(type="credit_note", number=CREDIT_NOTE_NUMBER,
                    preceding_invoice=data["number"], payment_terms="Krediteres.")
        data.pop("due_date", None)
    composition = compose(ComposeRequest(
        tenant="t", layout=layout, data=json.dumps(data), document_id="01JB2BLABELS", now=NOW,
        locale=locale, channels=(Channel.PRINT,)))
    pdf = render_print(composition, layout, print_engines(engine, layout)).content
    return composition.context, pages_text(pdf)[0]


@pytest.mark.parametrize(("locale", "engine"), CASES)
def test_the_facts_box_labels_the_reference_with_its_capitalised_label(locale, engine):
    context, text = printed(locale, engine, credit_note=False)
    label, name, sentence = REFERENCE[locale]
    payment, invoice = context["payment"], context["invoice"]
    assert (payment["reference_label"], payment["reference_name"]) == (label, name)
    assert label[0].isupper()
    # the row after the due date: label, then the reference (its start: a long one wraps)
    row = f"{invoice['due_date']} {label} {normalise(payment['reference'])[:4]}"
    assert row in text, (row, text[:700])
    # the invoice keeps its number and date labels, each before its whole value
    number_label, _, date_label = CREDIT_NOTE[locale]
    assert f"{date_label} {invoice['date']} " in text
    assert f" {invoice['number']} {date_label} " in text, text[:700]
    # the payment sentence keeps the running-text name
    assert f"{sentence} {normalise(payment['reference'])[:4]}" in text, text


@pytest.mark.parametrize(("locale", "engine"), CASES)
def test_a_credit_note_labels_its_date_as_the_credit_notes(locale, engine):
    context, text = printed(locale, engine, credit_note=True)
    number_label, date_label, invoice_date_label = CREDIT_NOTE[locale]
    assert context["is_credit_note"]
    row = f"{number_label} {CREDIT_NOTE_NUMBER} {date_label} {context['invoice']['date']} "
    assert row in text, (row, text[:700])
    assert f"{invoice_date_label} {context['invoice']['date']}" not in text


@pytest.mark.parametrize("engine", ENGINES)
def test_a_polish_credit_note_labels_its_transfer_title(engine):
    # A Polish payment is referenced by its transfer title (scheme "text"); its label came
    # only from the giro slip's labels, and a credit note has no slip: its facts box showed
    # the reference under an empty label. 2.2.0's labels name it (reference_text).
    context, text = printed("pl-PL", engine, credit_note=True)
    payment = context["payment"]
    assert (payment["reference_label"], payment["reference_name"]) == (
        "Tytułem", "tytuł przelewu")
    assert f"Tytułem {normalise(payment['reference'])[:4]}" in text, text[:700]


@pytest.mark.parametrize("engine", ENGINES)
def test_a_note_keeps_its_line_breaks_in_both_engines(engine):
    # QA: a note with line breaks (BT-22, BT-127) kept them with Typst, but WeasyPrint ran
    # its lines together ("Linje en Linje to" on one line): 2.2.0's print.css keeps them.
    layout = LAYOUTS.get("b2b-invoice", VERSION)
    data = json.loads(layout.sample_data("nb-NO"))
    data["note"] = "Notat linje en\nNotat linje to"
    data["lines"][0]["note"] = "Linjenotat en\r\nLinjenotat to"
    composition = compose(ComposeRequest(
        tenant="t", layout=layout, data=json.dumps(data), document_id="01JB2BNOTES", now=NOW,
        locale="nb-NO", channels=(Channel.PRINT,)))
    pdf = render_print(composition, layout, print_engines(engine, layout)).content
    for first, second in (("Notat linje en", "Notat linje to"),
                          ("Linjenotat en", "Linjenotat to")):
        [above], [below] = find_text(pdf, first), find_text(pdf, second)
        assert below.top > above.bottom - 0.5, (engine, first, above, below)
        assert abs(below.left - above.left) < 0.5, (engine, first, above, below)
