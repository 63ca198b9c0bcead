"""The buyer's VAT identifier and the parties' company registers on the printed b2b-invoice
(layouts/b2b-invoice/2.3.0), with both engines (QA on the printed b2b invoice):

- an EU reverse-charge invoice (VAT category AE; VAT Directive 2006/112/EC Art. 226(4)) and
  a Polish invoice (ustawa o VAT art. 106e ust. 1 pkt 5) must show the buyer's VAT id
  (EN 16931 BT-48), which was only in the UBL / CII XML: 2.3.0 prints it in the facts box,
  labelled `buyer_vat_id` in every locale, never in the envelope window. The Factur-X PDF
  is this print PDF with the CII attached (server/channels/einvoice), so it shows it too;
- the facts box, one row taller, never runs into the flow below it: the first page grows
  to 2.5 mm below the box when the box reaches lower than its 80 mm;
- the register label follows the company's country, in the document's language: a German
  seller's footer on a de-AT invoice read "Firmenbuchnummer HRB 214578 B" (Firmenbuch is
  Austria's register, HRB Germany's Handelsregister); 2.3.0's labels name each country's
  register (`register_<country>`) and builders/invoice.py picks the seller's and the buyer's;
- the return line above the window names the sender's country on mail to another country
  ("... 10832 Berlin · DEUTSCHLAND" to Vienna): builders/base.py return_line, every layout.

Read back from the rendered PDF (tests/pdf_inspect.py).
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from functools import cache

import pytest

from server.channels.einvoice_channel import render_einvoice
from server.channels.pdf import render_print
from server.compose.builders.base import return_line
from server.compose.composer import ComposeRequest, compose
from server.compose.model import Channel, PostalAddress
from tests.layouts import shipped
from tests.pdf_inspect import find_text, normalise, pages_text
from tests.print_engines import print_engines

LAYOUTS = shipped()
VERSION = "2.3.0"
NOW = datetime(2026, 3, 2, 9, tzinfo=UTC)
ENGINES = ("typst", "weasyprint")
FACTS_LEFT = 124.0  # mm from the paper's left: the facts box (70 mm wide, right margin 18 mm)
WINDOW_RIGHT = 117.0  # mm: the right edge of every address field (C5 18 + 99 mm; DIN, ISO less)

# the label of the buyer's VAT id in each locale's facts box
BUYER_VAT_LABEL = {
    "nb-NO": "Kundens MVA-nr.",
    "sv-SE": "Kundens momsreg.nr",
    "da-DK": "Deres momsnr.",  # as "Deres reference"
    "fi-FI": "Asiakkaan ALV-tunniste",
    "sv-FI": "Kundens momsnummer",
    "de-DE": "Ihre USt-IdNr.",
    "de-AT": "Ihre UID-Nr.",
    "pl-PL": "NIP nabywcy",
    "en-GB": "Customer VAT no.",
}
# a buyer VAT id (valid check digits) for each locale's sample customer's country, none the
# seller's own
BUYER_VAT = {"NO": "NO987654325MVA", "SE": "SE556677889901", "DK": "DK13585628",
             "FI": "FI20774740", "DE": "DE136695976", "AT": "ATU13585627",
             "PL": "PL7251801126", "GB": "GB434031494"}


def test_every_locale_of_the_layout_is_checked():
    assert tuple(LAYOUTS.get("b2b-invoice", VERSION).locales) == tuple(BUYER_VAT_LABEL)


def sample(locale: str) -> dict:
    return json.loads(LAYOUTS.get("b2b-invoice", VERSION).sample_data(locale))


def reverse_charge() -> dict:
    """QA's case: the de-DE sample sold to an Austrian company, every line reverse charge
    (AE, 0 %), composed in de-AT (the customer's country)."""
    data = sample("de-DE")
    data["customer"]["vat_id"] = "ATU13585627"
    data["customer"]["address"] = {"lines": ["Kärntner Straße 12"], "postal_code": "1010",
                                   "city": "Wien", "country": "AT"}
    for line in data["lines"]:
        line.update(vat_category="AE", vat_rate="0")
    data["exemption_reasons"] = {"AE": "Steuerschuldnerschaft des Leistungsempfängers"}
    return data


@cache
def printed(data_json: str, engine: str, version: str = VERSION) -> tuple[dict, bytes]:
    layout = LAYOUTS.get("b2b-invoice", version)
    composition = compose(ComposeRequest(
        tenant="t", layout=layout, data=data_json, document_id="01JB2BBUYERIDS", now=NOW,
        channels=(Channel.PRINT, Channel.EINVOICE)))
    pdf = render_print(composition, layout, print_engines(engine, layout)).content
    return composition.context, pdf


def assert_in_the_facts_box(pdf: bytes, label: str, vat_id: str) -> None:
    text = pages_text(pdf)[0]
    assert f"{label} {vat_id}" in text, text[:900]
    # in the first page's top 100 mm (the footer may name a seller's id of the same value)
    [value] = [box for box in find_text(pdf, vat_id) if box.top < 100]
    assert value.left > FACTS_LEFT, value  # right of the window, never in it
    [shown] = [box for box in find_text(pdf, label) if box.top < 100]
    assert shown.left > FACTS_LEFT and abs(shown.top - value.top) < 1.0, (shown, value)


@pytest.mark.parametrize("engine", ENGINES)
def test_a_reverse_charge_invoice_prints_the_buyers_vat_id(engine):
    context, pdf = printed(json.dumps(reverse_charge()), engine)
    assert context["labels"]["buyer_vat_id"] == "Ihre UID-Nr."  # de-AT
    assert_in_the_facts_box(pdf, "Ihre UID-Nr.", "ATU13585627")
    # the window holds the address alone: no VAT id
    window = " ".join(context["window"])
    assert "ATU" not in window and "UID" not in window


@pytest.mark.parametrize("engine", ENGINES)
def test_the_factur_x_pdf_of_a_reverse_charge_invoice_shows_the_buyers_vat_id(engine):
    layout = LAYOUTS.get("b2b-invoice", VERSION)
    composition = compose(ComposeRequest(
        tenant="t", layout=layout, data=json.dumps(reverse_charge()),
        document_id="01JB2BFACTURX", now=NOW, channels=(Channel.PRINT, Channel.EINVOICE)))
    engines = print_engines(engine, layout)
    facturx = render_einvoice(composition, layout,
                              lambda: render_print(composition, layout, engines))
    assert facturx.facts["syntax"].startswith("factur-x"), facturx.facts
    assert "Ihre UID-Nr. ATU13585627" in pages_text(facturx.content)[0]


@pytest.mark.parametrize("engine", ENGINES)
def test_a_polish_invoice_prints_the_buyers_nip(engine):
    data = sample("pl-PL")
    data["customer"]["vat_id"] = "PL7251801126"
    _, pdf = printed(json.dumps(data), engine)
    assert_in_the_facts_box(pdf, "NIP nabywcy", "PL7251801126")


@pytest.mark.parametrize("engine", ENGINES)
@pytest.mark.parametrize("locale", BUYER_VAT_LABEL)
def test_every_locale_labels_the_buyers_vat_id(locale, engine):
    data = sample(locale)
    data["locale"] = locale
    vat_id = BUYER_VAT[data["customer"]["address"]["country"]]
    data["customer"]["vat_id"] = vat_id
    _, pdf = printed(json.dumps(data), engine)
    assert_in_the_facts_box(pdf, BUYER_VAT_LABEL[locale], vat_id)


@pytest.mark.parametrize("engine", ENGINES)
def test_a_full_facts_box_pushes_the_flow_down(engine):
    # The nb-NO sample's buyer has an org number and a VAT id, and both references; with a
    # credited invoice too the box has 12 rows and reaches below the first page's 80 mm:
    # the note and the lines start below it, not under it.
    data = sample("nb-NO")
    data["preceding_invoice"] = "F-2026-01301"
    data["note"] = "Takk for oppdraget. " * 8
    _, pdf = printed(json.dumps(data), engine)
    total = min(find_text(pdf, "Å betale"), key=lambda box: box.top)  # the facts box's
    note = min(find_text(pdf, "Takk for oppdraget."), key=lambda box: box.top)
    assert note.top > total.bottom + 1.0, (total, note)


@pytest.mark.parametrize("engine", ENGINES)
def test_a_short_facts_box_leaves_the_first_page_as_it_was(engine):
    # no buyer VAT id, few rows: the flow starts where 2.2.0's does
    data = json.dumps(sample("de-DE"))
    _, new = printed(data, engine)
    _, old = printed(data, engine, "2.2.0")
    [new_note], [old_note] = (find_text(pdf, "Vielen Dank für Ihren Auftrag.")
                              for pdf in (new, old))
    assert abs(new_note.top - old_note.top) < 0.05, (new_note, old_note)
    assert normalise(pages_text(new)[0]) == normalise(pages_text(old)[0])


# --- the company register of the seller's country, in the document's language -----------

@pytest.mark.parametrize("engine", ENGINES)
def test_a_german_sellers_register_on_an_austrian_invoice_is_the_handelsregister(engine):
    context, pdf = printed(json.dumps(reverse_charge()), engine)
    assert context["seller"]["register_label"] == "Handelsregister"
    text = normalise(pages_text(pdf)[0])
    assert "Fjordbank AG · Handelsregister HRB 214578 B · " in text, text[-300:]
    assert "Firmenbuch" not in text


@pytest.mark.parametrize("engine", ENGINES)
def test_an_austrian_buyers_register_on_a_german_invoice_is_the_firmenbuch(engine):
    # the de-DE invoice of the German seller to an Austrian company with its FN, in EUR and
    # German (the data's locale): the buyer's row names the Firmenbuch, the footer the HRB
    data = reverse_charge()
    data["locale"] = "de-DE"
    # (the buyer's org_number takes capitals only, where the FN's check letter is lowercase)
    data["customer"]["org_number"] = "FN 123456 A"
    context, pdf = printed(json.dumps(data), engine)
    assert (context["customer"]["register_label"], context["seller"]["register_label"]) == (
        "Firmenbuchnummer", "Handelsregister")
    text = normalise(pages_text(pdf)[0])
    assert "Firmenbuchnummer FN 123456 A" in text, text[:900]
    assert "Fjordbank AG · Handelsregister HRB 214578 B · " in text


# locale: the label of a German company's register, of a Norwegian one's, of the locale's own
REGISTERS = {
    "nb-NO": ("Org.nr. (Handelsregister)", "Org.nr.", "Org.nr."),
    "sv-SE": ("Org.nr (Handelsregister)", "Org.nr (Foretaksregisteret)", "Org.nr"),
    "da-DK": ("Virksomhedsnr. (Handelsregister)", "Virksomhedsnr. (Foretaksregisteret)",
              "CVR-nr."),
    "fi-FI": ("Rekisterinumero (Handelsregister)", "Rekisterinumero (Foretaksregisteret)",
              "Y-tunnus"),
    "sv-FI": ("Org.nr (Handelsregister)", "Org.nr (Foretaksregisteret)", "FO-nummer"),
    "de-DE": ("Handelsregister", "Registernr. (Foretaksregisteret)", "Handelsregister"),
    "de-AT": ("Handelsregister", "Registernr. (Foretaksregisteret)", "Firmenbuchnummer"),
    "pl-PL": ("Nr rejestrowy (Handelsregister)", "Nr rejestrowy (Foretaksregisteret)", "KRS"),
    "en-GB": ("Company no. (Handelsregister)", "Company no. (Foretaksregisteret)",
              "Company no."),
}


@pytest.mark.parametrize("locale", REGISTERS)
def test_every_locale_names_each_countrys_register(locale):
    from server.compose.builders.invoice import register_label

    words = LAYOUTS.get("b2b-invoice", VERSION).labels_for(locale)
    german, norwegian, own = REGISTERS[locale]
    assert (register_label(words, "DE"), register_label(words, "NO"),
            register_label(words, locale[3:])) == (german, norwegian, own)
    # the locale's own register keeps 2.2.0's label; a country without one gets that label
    assert own == words["org_number"] == register_label(words, "US") == register_label(words, None)
    for country in ("NO", "SE", "DK", "FI", "DE", "AT", "PL", "GB"):
        assert words[f"register_{country}"], (locale, country)


def test_2_2_0_keeps_its_labels():
    # a released version prints as it did: its labels name no register
    from server.compose.builders.invoice import register_label

    words = LAYOUTS.get("b2b-invoice", "2.2.0").labels_for("de-AT")
    assert register_label(words, "DE") == "Firmenbuchnummer"


# --- the sender's country in the return line on mail abroad -------------------------------

BERLIN = PostalAddress(lines=("Postfach 11 02 40",), postal_code="10832", city="Berlin",
                       country="DE")


def test_the_return_line_names_the_senders_country_on_mail_abroad():
    assert return_line("Fjordbank AG", BERLIN, "AT") == (
        "Fjordbank AG · Postfach 11 02 40 · 10832 Berlin · DEUTSCHLAND")
    # in the language of the destination's post office, which returns the letter
    assert return_line("Fjordbank AG", BERLIN, "GB").endswith(" · 10832 Berlin · GERMANY")
    assert return_line("Fjordbank AG", BERLIN, "PL").endswith(" · 10832 Berlin · NIEMCY")
    # at home, or with no destination known, as before
    for destination in ("DE", "de", None):
        assert return_line("Fjordbank AG", BERLIN, destination) == (
            "Fjordbank AG · Postfach 11 02 40 · 10832 Berlin")


@pytest.mark.parametrize("engine", ENGINES)
def test_the_austrian_invoices_return_line_names_germany(engine):
    context, pdf = printed(json.dumps(reverse_charge()), engine)
    assert context["return_line"] == (
        "Fjordbank AG · Postfach 11 02 40 · 10832 Berlin · DEUTSCHLAND")
    [line] = find_text(pdf, "10832 Berlin · DEUTSCHLAND")
    assert line.right < WINDOW_RIGHT, line  # in the address field, over the address


@pytest.mark.parametrize("layout_id", ["payment-reminder", "welcome-letter", "card-invoice"])
def test_every_letter_names_the_senders_country_in_its_return_line(layout_id):
    # builders/base.py return_line serves every layout with a window: a German sender's
    # letter to Vienna (data from the layout's de-DE sample, the recipient moved to Austria)
    layout = LAYOUTS.get(layout_id)
    data = json.loads(layout.sample_data("de-DE"))
    data["customer"]["address"] = {"lines": ["Kärntner Straße 12"], "postal_code": "1010",
                                   "city": "Wien", "country": "AT"}
    data["locale"] = "de-AT"
    composition = compose(ComposeRequest(
        tenant="t", layout=layout, data=json.dumps(data), document_id="01JRETURNLINE",
        now=NOW, channels=(Channel.PRINT,)))
    assert composition.context["return_line"].endswith(" · DEUTSCHLAND"), (
        composition.context["return_line"])
