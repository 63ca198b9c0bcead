"""The facts box right of the window starts below the masthead's sender block, whatever its height.

The en-GB card-invoice sample printed the top rule of its "Statement details" box across the
issuer block's last line ("Customer services 0345 600 4070 · fjordbank.co.uk/card"): a UK
address puts its postcode on a line of its own, so the block is one line taller than the
Nordic ones, and the box sat at a fixed 25 mm (found by the new-user test). Now the box
starts 25 mm down the page area or 2.5 mm below the masthead, whichever is lower, and the
flow below moves down as far as the box did (`_shared/fjordbank-2-typst/letter.typ`
first-page, `_shared/fjordbank-2/letter.css` .first-page-rest).

Read back from the PDF with pdfium (`server.pdfium.read_back`): page objects' bounds and
pdfium's text rectangles, for both engines, through the print channel (preflight included).
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from functools import cache
from typing import Any

import pypdfium2.raw as pdfium_c
import pytest

from server.channels.pdf import render_print
from server.compose.composer import ComposeRequest, compose
from server.pdfium import read_back
from tests.layouts import shipped
from tests.print_engines import print_engines

LAYOUTS = shipped()
NOW = datetime(2026, 3, 2, 9, tzinfo=UTC)
MM = 72 / 25.4  # pt per mm
ENGINES = ("typst", "weasyprint")
RULE_MAX_HEIGHT = 4.0  # pt: a path this thin and 10 mm or wider is a rule (0.2..0.6 mm here)
FACTS_LEFT = 124.0  # mm from the paper's left: the card invoice's facts box (68 mm wide)


def pdf_of(layout_id: str, locale: str, engine: str,
           data: dict[str, Any] | None = None) -> bytes:
    if data is None:  # a locale's sample: rendered once for every test that reads it
        return sample_pdf(layout_id, locale, engine)
    return _rendered(layout_id, locale, engine, data)


@cache
def sample_pdf(layout_id: str, locale: str, engine: str) -> bytes:
    return _rendered(layout_id, locale, engine, None)


def _rendered(layout_id: str, locale: str, engine: str, data: dict[str, Any] | None) -> bytes:
    layout = LAYOUTS.get(layout_id)
    text = json.dumps(data) if data is not None else layout.sample_data(locale)
    composition = compose(ComposeRequest(tenant="t", layout=layout, data=text,
                                         document_id="01JTEST", now=NOW, locale=locale))
    return render_print(composition, layout, print_engines(engine, layout)).content


def rules_over_text(pdf: bytes) -> list[str]:
    """Each horizontal rule (a path object at most RULE_MAX_HEIGHT tall and 10 mm wide)
    that overlaps a text rectangle, as 'page n: rule at y mm crosses "text"'."""
    found = []
    with read_back(pdf) as pages:
        for page in pages:
            rules = [(left, bottom, right, top) for obj, left, bottom, right, top
                     in page.objects()
                     if page.object_type(obj) == pdfium_c.FPDF_PAGEOBJ_PATH
                     and top - bottom <= RULE_MAX_HEIGHT and right - left >= 10 * MM]
            for left, bottom, right, top in rules:
                for t_left, t_top, t_right, t_bottom in page.text_rects():
                    if t_left < right and t_right > left and t_bottom < top and t_top > bottom:
                        words = page.textpage.get_text_bounded(t_left, t_bottom, t_right, t_top)
                        found.append(f"page {page.number}: rule at "
                                     f"{(page.height - top) / MM:.1f} mm crosses {words!r}")
    return found


def facts_box_and_below(pdf: bytes) -> tuple[float, float, float]:
    """On page 1, in mm from the paper's top: the facts box's top and bottom (its panel: the
    path at FACTS_LEFT over 30 mm tall) and the top of the first object below it that
    shares its columns (the flow's "amount to pay" box)."""
    with read_back(pdf) as pages:
        page = pages[0]
        boxes = [((page.height - top) / MM, (page.height - bottom) / MM, left / MM, right / MM)
                 for obj, left, bottom, right, top in page.objects()
                 if page.object_type(obj) == pdfium_c.FPDF_PAGEOBJ_PATH]
    [(top, bottom, _, _)] = [b for b in boxes if abs(b[2] - FACTS_LEFT) < 0.3
                             and b[1] - b[0] > 30]
    below = min(b[0] for b in boxes if b[0] > bottom and b[3] > FACTS_LEFT)
    return top, bottom, below


@pytest.mark.parametrize("engine", ENGINES)
def test_en_gb_card_invoice_facts_box_starts_below_the_issuer_block(engine: str) -> None:
    pdf = pdf_of("card-invoice", "en-GB", engine)
    assert rules_over_text(pdf) == []
    with read_back(pdf) as pages:
        [line] = [rect for rect in pages[0].text_rects()
                  if "fjordbank.co.uk/card" in pages[0].textpage.get_text_bounded(
                      rect[0], rect[3], rect[2], rect[1])]
        line_bottom = (pages[0].height - line[3]) / MM
    top, bottom, below = facts_box_and_below(pdf)
    assert top > line_bottom + 2, (top, line_bottom)
    # the flow moved down with the box: the same room under it as on the Norwegian sample
    no_top, no_bottom, no_below = facts_box_and_below(pdf_of("card-invoice", "nb-NO", engine))
    assert top > no_top + 3  # the UK block is one line (3.7 mm) taller
    assert below - bottom == pytest.approx(no_below - no_bottom, abs=0.3)


@pytest.mark.parametrize("engine", ENGINES)
@pytest.mark.parametrize("locale", LAYOUTS.get("card-invoice").manifest["locales"])
def test_no_rule_crosses_text_in_any_card_invoice_sample(engine: str, locale: str) -> None:
    assert rules_over_text(pdf_of("card-invoice", locale, engine)) == []


@pytest.mark.parametrize("engine", ENGINES)
@pytest.mark.parametrize(("layout_id", "party"), [("card-invoice", "issuer"),
                                                  ("payment-reminder", "creditor"),
                                                  ("b2b-invoice", "seller")])
def test_the_tallest_uk_sender_block_stays_clear_of_the_facts_box(engine: str, layout_id: str,
                                                                   party: str) -> None:
    # three address lines (the schemas' most) and the postcode on its own line
    data = json.loads(LAYOUTS.get(layout_id).sample_data("en-GB"))
    data[party]["address"]["lines"] = ["Fjordbank House", "1 Bishopsgate", "PO Box 7390"]
    assert rules_over_text(pdf_of(layout_id, "en-GB", engine, data)) == []
