"""Text a box cuts off is refused (server.channels.preflight_clipped): QA on b2b-invoice 2.7.0,
de-DE, with a seller's name of 70 characters (the schema takes 80). The one-line return
address above the DIN 5008 address zone is a box that hides what overflows it: Typst wrapped
it and hid its second line ("Nbg · Postfach 11 02 40 · 10832 Berlin") under the box's foot,
on the recipient's name; WeasyPrint kept one line and cut it at the box's right edge. Both
were accepted (text area, window, text over text and borders all clear); both are refused
now, naming the seller's name, the box and how far past it the text stands, in mm."""

from __future__ import annotations

import json
import re

import pytest

from server.channels.pdf import render_print
from server.channels.preflight_clipped import past_clip
from server.errors import InvalidInput
from tests.print_engines import print_engines
from tests.unit.test_print_text_fits import LAYOUTS, composed

LONG_SELLER = "Fjordbank Aktiengesellschaft Niederlassung Deutschland Zweigstelle Nbg"


def long_seller_de():
    """(layout, composition): b2b-invoice 2.7.0's de-DE sample with QA's seller name."""
    layout = LAYOUTS.get("b2b-invoice", "2.7.0")
    data = json.loads(layout.sample_data("de-DE"))
    data["seller"]["name"] = LONG_SELLER
    return layout, composed(layout, data)


@pytest.mark.parametrize(("engine", "edge", "hidden"), [
    ("typst", "bottom", "Nbg · Postfach 11 02 40 · 10832 Berlin"),
    ("weasyprint", "right", "Fjordbank Aktiengesellschaft"),
])
def test_a_return_line_cut_off_by_its_box_is_refused_naming_the_seller(engine, edge, hidden):
    assert len(LONG_SELLER) == 70
    layout, composition = long_seller_de()
    with pytest.raises(InvalidInput) as refused:
        render_print(composition, layout, print_engines(engine, layout))
    [cut] = [v for v in refused.value.violations if "cut off by its box" in v.description]
    assert cut.field == "$.seller.name", refused.value.violations
    # the return line's box (DIN 5008 form B: x 25..105 mm, its foot at 61.9 mm) and how far
    assert "(x 25.0-105.0 mm, y 58.5-61.9 mm" in cut.description, cut.description
    assert re.search(rf"reaches \d+\.\d mm past the {edge} edge", cut.description)
    assert hidden in cut.description


@pytest.mark.parametrize(("bounds", "how"), [
    ((25.2, 59.1, 99.7, 61.4), None),  # inside
    ((24.6, 58.1, 105.4, 62.3), None),  # past each edge by the tolerance, not more
    ((25.2, 62.2, 65.8, 64.5), "2.6 mm past the bottom edge"),
    ((25.2, 59.1, 141.3, 61.4), "36.3 mm past the right edge"),
    ((24.0, 59.1, 99.7, 61.4), "1.0 mm past the left edge"),
    ((25.2, 57.0, 99.7, 61.4), "1.5 mm past the top edge"),
])
def test_how_far_a_text_object_stands_past_its_clip(bounds, how):
    assert past_clip(bounds, (25.0, 58.5, 105.0, 61.9), 0.5) == how
