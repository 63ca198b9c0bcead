"""The tag tree of b2b-invoice 2.8.0's (2.5.0's fixes, kept) and welcome-letter 2.3.0's print
PDFs (the defaults), as a screen reader meets it, from every engine each layout has
(tests/pdf_tags.py reads the structure tree and the marked text back from the PDF). The
faults of the accessibility review, which the previous versions (b2b-invoice 2.4.0,
welcome-letter 2.2.0) still have:

- headings must start at H1 and never skip a level (PDF/UA-1, Matterhorn 14-002): the
  WeasyPrint print of b2b-invoice 2.x opened with the VAT breakdown's H2 (its document title
  was a <div>); its Typst print already had the title as H1;
- the company's name is read once: the logo was a Figure with the alternative text
  "Fjordbank-logo", read before the wordmark's text ("Fjordbank-logo Fjordbanken ASA"). The
  logo is decoration beside the name in text: an artifact now, in both engines (still drawn);
- welcome-letter's campaign icon (the logo again) was a second "Fjordbank-logo" Figure in the
  middle of the campaign; it is decoration too, an artifact.

The pages themselves pass the pdfua rules (tests/unit/test_pdf_conformance.py covers every
latest layout's samples); here the samples of every locale.
"""

from __future__ import annotations

from datetime import UTC, datetime
from functools import cache

import pytest

from server.channels.pdf import PrintEngines
from server.compose.composer import ComposeRequest, compose
from server.compose.model import Channel
from tests.layouts import shipped
from tests.pdf_conformance import pdf_ua_findings
from tests.pdf_tags import elements, headings, never_skip, spoken, strokes

LAYOUTS = shipped()
NOW = datetime(2026, 3, 2, 9, tzinfo=UTC)
ENGINES = PrintEngines()
LOGO_WAVE = (0x3C, 0xC0, 0xB0)  # logo.svg's wave: the one path of this stroke colour
B2B, B2B_OLD = "2.8.0", "2.4.0"
LETTER, LETTER_OLD = "2.3.0", "2.2.0"


def test_the_fixed_versions_are_the_defaults():
    assert LAYOUTS.get("b2b-invoice").version == B2B
    assert LAYOUTS.get("welcome-letter").version == LETTER


@cache
def printed(layout_id: str, version: str, locale: str, engine: str,
            credit_note: bool = False) -> tuple[dict, bytes]:
    layout = LAYOUTS.get(layout_id, version)
    data = ((layout.path / "sample-credit-note.json").read_text(encoding="utf-8")
            if credit_note else layout.sample_data(locale))
    composition = compose(ComposeRequest(
        tenant="t", layout=layout, data=data, document_id="01JTAGTREE", now=NOW,
        channels=(Channel.PRINT,), locale=locale))
    return composition.context, ENGINES.engine(engine).render(layout, composition).content


def test_never_skip_reads_levels_as_the_protocol_does():
    assert never_skip([1, 2, 2, 1, 2, 3])
    assert not never_skip([2, 2]) and not never_skip([1, 3]) and not never_skip([])


# --- b2b-invoice ------------------------------------------------------------------------------

B2B_LOCALES = LAYOUTS.get("b2b-invoice", B2B).locales
B2B_CASES = [(locale, engine) for locale in B2B_LOCALES for engine in ("typst", "weasyprint")]


@pytest.mark.parametrize(("locale", "engine"), B2B_CASES)
def test_b2b_headings_start_at_h1_and_never_skip(locale, engine):
    context, pdf = printed("b2b-invoice", B2B, locale, engine)
    levels = headings(pdf)
    assert never_skip(levels), levels
    first = next(e for e in elements(pdf) if e.role.startswith("H"))
    assert (first.role, first.text) == ("H1", context["title"])


@pytest.mark.parametrize("engine", ["typst", "weasyprint"])
def test_b2b_credit_note_headings_start_at_h1(engine):
    context, pdf = printed("b2b-invoice", B2B, "nb-NO", engine, credit_note=True)
    assert never_skip(headings(pdf)), headings(pdf)
    assert context["title"] in [e.text for e in elements(pdf) if e.role == "H1"]


@pytest.mark.parametrize(("locale", "engine"), B2B_CASES)
def test_b2b_reads_the_sellers_name_once_and_the_logo_is_an_artifact(locale, engine):
    context, pdf = printed("b2b-invoice", B2B, locale, engine)
    read = spoken(pdf)
    name, title = context["seller"]["name"], context["title"]
    # the masthead reads the seller's name, then the document's title; nothing before
    assert read[:2] == [name, title], read[:4]
    # the only figures are the payment codes under the payment sentence (QR, bar code)
    figures = [e.alt for e in elements(pdf) if e.role == "Figure"]
    assert all(alt and context["labels"]["logo_alt"] not in alt for alt in figures), figures
    assert not [text for text in read if context["labels"]["logo_alt"] in text]
    # the logo is still drawn, as decoration outside the structure tree
    wave = strokes(pdf, LOGO_WAVE)
    assert len(wave) == 1 and wave[0].artifact and wave[0].page == 0, wave
    assert pdf_ua_findings(pdf) == []


@pytest.mark.parametrize("engine", ["typst", "weasyprint"])
def test_b2b_2_4_0_had_the_faults(engine):
    """What the review found, so the checks above are not vacuous: 2.4.0 is released and
    stays as it is."""
    context, pdf = printed("b2b-invoice", B2B_OLD, "nb-NO", engine)
    assert spoken(pdf)[:2] == [context["labels"]["logo_alt"], context["seller"]["name"]]
    assert [d.artifact for d in strokes(pdf, LOGO_WAVE)] == [False]
    assert never_skip(headings(pdf)) is (engine == "typst")  # WeasyPrint's began at H2
    if engine == "weasyprint":
        assert headings(pdf)[0] == 2


# --- welcome-letter (WeasyPrint only) ---------------------------------------------------------

LETTER_LOCALES = LAYOUTS.get("welcome-letter", LETTER).locales


@pytest.mark.parametrize("locale", LETTER_LOCALES)
def test_the_letter_reads_the_wordmark_once_and_draws_both_logos_as_artifacts(locale):
    context, pdf = printed("welcome-letter", LETTER, locale, "weasyprint")
    read = spoken(pdf)
    assert read[0] == "Fjordbank" and read[1] == context["sender"]["name"], read[:3]
    assert [e for e in elements(pdf) if e.role == "Figure"] == []
    assert not [text for text in read if context["labels"]["logo_alt"] in text]
    wave = strokes(pdf, LOGO_WAVE)
    # the masthead's logo, and the campaign's icon when the letter has a campaign
    assert len(wave) == (2 if context["campaign"] else 1), wave
    assert all(d.artifact for d in wave), wave
    if context["campaign"]:
        # the campaign is read as its label (set in capitals), title and text, no logo
        label = [text.casefold() for text in read].index(
            context["labels"]["campaign_label"].casefold())
        assert read[label + 1] == context["campaign"]["title"], read[label:]
    assert never_skip(headings(pdf)), headings(pdf)
    assert pdf_ua_findings(pdf) == []


def test_the_letter_2_2_0_had_the_faults():
    context, pdf = printed("welcome-letter", LETTER_OLD, "nb-NO", "weasyprint")
    assert context["campaign"]
    alt = context["labels"]["logo_alt"]
    assert [(e.role, e.alt) for e in elements(pdf) if e.role == "Figure"] == [("Figure", alt)] * 2
    assert spoken(pdf)[:2] == [alt, "Fjordbank"]
    assert [d.artifact for d in strokes(pdf, LOGO_WAVE)] == [False, False]
