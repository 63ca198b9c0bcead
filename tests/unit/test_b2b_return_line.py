"""The b2b invoice's one-line return address above the DIN 5008 address zone (DE, AT) never
wraps nor runs out of its box (QA; fixed in 2.8.0, the default), with both engines.

QA printed the de-DE invoice with a seller's name of 70 characters (the schema takes 80):
2.7.0's Typst template wrapped the return line and hid its second line, the postal address,
under the box's foot; its WeasyPrint template kept one line to 141 mm, cut at the box's edge
(105 mm). The print preflight now refuses both (tests/unit/test_preflight_clipped.py). 2.8.0
sets the line at the largest size from 6.5 pt down to 5 pt at which it fits (print.typ
measures, print.html estimates), and leaves the seller's name out of it when even 5 pt is
too large, keeping the postal address, which returns the letter. The samples print as in
2.7.0. Read from the rendered PDF's first page (tests/pdf_inspect.py).
"""

from __future__ import annotations

import json

import pytest

from server.channels.pdf import render_print
from tests.pdf_inspect import Box, find_text, font_size, pages_lines
from tests.print_engines import print_engines
from tests.unit.test_preflight_clipped import LONG_SELLER
from tests.unit.test_print_text_fits import LAYOUTS, composed

VERSION, OLD = "2.8.0", "2.7.0"
ENGINES = ("weasyprint", "typst")
ADDRESS = "Postfach 11 02 40 · 10832 Berlin"  # the de-DE sample seller's postal address
# the return line's box (DIN 5008 form B, letter.css .return-line), mm from the paper's
# top-left, with the preflight's 0.5 mm for glyph bounds
RETURN_BOX = Box(24.5, 58.0, 105.5, 62.4)


def rendered(version: str, engine: str, seller_name: str | None = None,
             locale: str = "de-DE") -> bytes:
    layout = LAYOUTS.get("b2b-invoice", version)
    data = json.loads(layout.sample_data(locale))
    if seller_name is not None:
        data["seller"]["name"] = seller_name
    return render_print(composed(layout, data), layout, print_engines(engine, layout)).content


@pytest.mark.parametrize("engine", ENGINES)
def test_a_name_too_long_for_the_line_leaves_it_keeping_the_postal_address(engine):
    pdf = rendered(VERSION, engine, LONG_SELLER)  # accepted: nothing cut off, nothing over
    [line] = find_text(pdf, ADDRESS)  # the masthead sets the address over two lines
    assert line.inside(RETURN_BOX), line
    assert 4.99 <= font_size(pdf, ADDRESS) <= 6.5
    assert not find_text(pdf, f"Nbg · {ADDRESS}")


@pytest.mark.parametrize("engine", ENGINES)
def test_a_name_too_long_at_6_5_pt_shrinks_the_line_to_fit(engine):
    name = "Fjordbank Aktiengesellschaft Zweigstelle Nbg"  # the line: 79 characters
    whole = f"{name} · {ADDRESS}"
    pdf = rendered(VERSION, engine, name)
    [line] = find_text(pdf, whole)
    assert line.inside(RETURN_BOX), line
    assert 4.99 <= font_size(pdf, whole) < 6.49


@pytest.mark.parametrize("locale", ["de-DE", "de-AT"])
@pytest.mark.parametrize("engine", ENGINES)
def test_a_return_line_that_fits_prints_as_in_2_7_0(engine, locale):
    new, old = rendered(VERSION, engine, locale=locale), rendered(OLD, engine, locale=locale)
    assert pages_lines(new) == pages_lines(old)
    seller = json.loads(LAYOUTS.get("b2b-invoice", VERSION).sample_data(locale))["seller"]
    line = next(text for text in pages_lines(new)[0] if text.startswith(f"{seller['name']} · "))
    assert find_text(new, line) == find_text(old, line)
    assert font_size(new, line) == pytest.approx(6.5, abs=0.01)
