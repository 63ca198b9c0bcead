"""Combining marks are not text over text (server/channels/preflight_marks.only_marks_meet).

QA: a name written with U+0336 COMBINING LONG STROKE OVERLAY ("K̶a̶r̶i̶", struck-through
letters as some systems send a cancelled name) was refused as "text is drawn over text": the
overlay is drawn back over the letter before it, so pdfium's run that starts with it
reaches into the run before. The page itself is right (looked at as PNG, both engines).
"""

from __future__ import annotations

import pytest

from server.channels.pdf import PrintEngines
from server.channels.preflight import check_pdf
from tests.print_engines import print_engines
from tests.unit.test_print_text_fits import (  # noqa: F401 (a fixture)
    LAYOUTS,
    composed,
    sample,
    typst_without_word_breaks,
    unbroken,
)

STRUCK = "\u0336".join("Kari") + "\u0336"  # K̶a̶r̶i̶


@pytest.mark.parametrize("engine", ["typst", "weasyprint"])
def test_struck_through_letters_are_not_text_over_text(engine) -> None:
    layout = LAYOUTS.get("card-invoice")
    data = sample(layout)
    data["customer"]["name"] = f"{STRUCK} Nordmann"
    data["transactions"][0]["description"] = "S\u0336a\u0336l\u0336e\u0336 Rema 1000"
    composition = composed(layout, data)
    pdf = print_engines(engine, layout).render(layout, composition).content
    assert check_pdf(pdf, composition, layout) == []


def test_text_with_combining_marks_drawn_over_other_text_is_still_refused(
        typst_without_word_breaks) -> None:  # noqa: F811
    """The unbroken description of a careless template runs over the next column; with
    combining marks in it, its letters still meet the neighbour's."""
    layout = typst_without_word_breaks
    data = sample(layout)
    text = unbroken(78)
    data["transactions"][0]["description"] = f"{text[:5]}\u0301{text[5:40]}\u0336{text[40:]}"
    composition = composed(layout, data)
    pdf = PrintEngines("typst").render(layout, composition).content
    problems = check_pdf(pdf, composition, layout)
    assert any("drawn over text" in v.description for v in problems), problems
