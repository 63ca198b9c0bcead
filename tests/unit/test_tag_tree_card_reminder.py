"""The tag tree of the card invoice (2.2.0) and the payment reminder (2.3.0), read from the
PDF of both engines the way a screen reader walks it (tests/pdf_tags.py), QA's PDF/UA
findings:

- Matterhorn 14-002 (ISO 14289-1 §7.4.2): the first heading is H1 and no level is skipped.
  The WeasyPrint card invoice began at H2 (its title in the masthead was a <div>); now
  the title is the H1 in both engines (_shared/fjordbank-2.1/letter.html, the Typst
  masthead already made it one);
- the logo's alt text was read before the wordmark: "Fjordbank-logo Fjordbank". The
  wordmark is the bank's name as text, so the logo beside it is decoration: an artifact in
  both engines (WCAG 2.1 H67 / PDF/UA §7.1: decorative content is not read), and the name
  is read once, as text a reader can also search and copy;
- the Typst window address (with its DIN 5008 return line) and the facts box's title were
  one /Span ("...M1 3LAStatement details"): now each is an element of its own, in
  reading order: return line, address, the facts box's title, its first row
  (_shared/fjordbank-2.1-typst/letter.typ).

The pages look as they did (compared as PNGs when the versions were made); the older
versions keep their tags (they must re-render exactly).
"""

from __future__ import annotations

from datetime import UTC, datetime
from functools import cache

import pytest

from server.channels.pdf import PrintEngines
from server.compose.composer import ComposeRequest, compose
from server.compose.model import Channel
from tests.layouts import shipped
from tests.pdf_tags import elements, headings, never_skip, spoken

LAYOUTS = shipped()
ENGINES = PrintEngines()
NOW = datetime(2026, 11, 22, tzinfo=UTC)
FIXED = [("card-invoice", "2.2.0"), ("payment-reminder", "2.3.0")]
# en-GB: the ISO DL window; de-DE: DIN 5008 form B under a return line
CASES = [(layout_id, version, engine, locale) for layout_id, version in FIXED
         for engine in ("typst", "weasyprint") for locale in ("en-GB", "de-DE")]
IDS = [f"{lid}-{ver}-{engine}-{locale}" for lid, ver, engine, locale in CASES]


@cache
def read(layout_id: str, version: str, engine: str, locale: str) -> tuple[bytes, dict]:
    """The print PDF of the locale's sample, and its template context."""
    layout = LAYOUTS.get(layout_id, version)
    composition = compose(ComposeRequest(
        tenant="t", layout=layout, data=layout.sample_data(locale), document_id="01TAGS",
        now=NOW, channels=(Channel.PRINT,), locale=locale))
    pdf = ENGINES.engine(engine).render(layout, composition).content
    return pdf, composition.context


@pytest.mark.parametrize(("layout_id", "version", "engine", "locale"), CASES, ids=IDS)
def test_headings_start_at_h1_and_skip_no_level(layout_id, version, engine, locale):
    pdf, context = read(layout_id, version, engine, locale)
    found = [e for e in elements(pdf) if e.role in ("H1", "H2", "H3", "H4", "H5", "H6")]
    assert found, "no heading"
    assert never_skip(headings(pdf)), [(h.role, h.text) for h in found]
    if layout_id == "card-invoice":  # the masthead's title (the reminder's is in the flow)
        assert (found[0].role, found[0].text) == ("H1", context["labels"]["document_title"])


@pytest.mark.parametrize(("layout_id", "version", "engine", "locale"), CASES, ids=IDS)
def test_the_logo_is_an_artifact_and_the_bank_is_read_once(layout_id, version, engine,
                                                           locale):
    pdf, context = read(layout_id, version, engine, locale)
    logo_alt = LAYOUTS.get(layout_id, "2.0.0").labels_for(locale)["logo_alt"]  # as it was
    assert not [e.alt for e in elements(pdf) if e.role == "Figure"
                and "Fjordbank" in (e.alt or "")], "the logo is read"
    spoken_ = spoken(pdf)
    # the wordmark, then the sender block: the document title (card invoice) or the
    # creditor's name (the reminder's masthead has no title)
    party = context["issuer" if layout_id == "card-invoice" else "creditor"]
    after = (context["labels"]["document_title"] if layout_id == "card-invoice"
             else party["name"])
    assert spoken_[0] == "Fjordbank", spoken_[:3]
    assert spoken_[1].startswith(after), spoken_[:3]
    assert logo_alt not in " ".join(spoken_)


@pytest.mark.parametrize(("layout_id", "version", "engine", "locale"), CASES, ids=IDS)
def test_the_address_and_the_facts_box_title_are_read_apart_in_order(layout_id, version,
                                                                     engine, locale):
    pdf, context = read(layout_id, version, engine, locale)
    spoken_ = spoken(pdf)
    title = context["labels"]["facts_title"]
    assert title in spoken_, [s for s in spoken_ if title in s]  # an element of its own
    at = spoken_.index(title)
    # the address ends just before the title (Typst reads it as one paragraph, WeasyPrint
    # line by line), and no line of it is read with anything else
    address = "".join(context["window"])
    assert "".join(spoken_[:at]).endswith(address), spoken_[max(0, at - 6):at + 1]
    lines = set(context["window"])
    before = [s for s in spoken_[:at] if any(line in s for line in lines)]
    assert before in ([address], list(context["window"])), before
    # the facts box's rows follow its title
    first_row = context["labels"]["invoice_number" if layout_id == "card-invoice"
                                  else "notice_date"]
    assert spoken_[at + 1] == first_row, spoken_[at:at + 3]
    if context["address_field"] and context["address_field"].get("return_line"):
        assert context["return_line"] in spoken_[:at]
        assert spoken_.index(context["return_line"]) < at - len(before)
