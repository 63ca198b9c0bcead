"""An amount keeps its currency on its line in the card invoice's amount boxes.

Before: with WeasyPrint, a 13-digit amount to pay ("1 234 567 924 418,82 kr") put "kr" on
a line of its own in the facts box and broke "kr" itself in the pay box ("k" / "r"): the
amount and its unit are joined by no-break spaces, but `overflow-wrap: anywhere`
(fjordbank-2/letter.css, for data) breaks such a word anywhere when it does not fit. The
amount cells now keep whole (`white-space: nowrap`, fjordbank-2/facts-box.css and the
layout's `.pay-amount`). The Typst template keeps them together as it did (`amount()`,
no `fit`). Each page is read back with pdfium, character by character.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime

import pypdfium2
import pytest

from server.channels.pdf import PrintEngines, render_print
from server.compose.composer import ComposeRequest, compose
from server.compose.model import Channel
from server.errors import InvalidInput
from tests.layouts import shipped
from tests.pdf_inspect import normalise

MM_PER_PT = 25.4 / 72
LAYOUT = shipped().get("card-invoice")


def currency_lines(pdf: bytes) -> list[tuple[str, float, float]]:
    """For every "kr" after a figure on page 1: (the text before it, the baseline in mm of
    the figure, how far from it "k" or "r" stands, in mm: figures, "k" and "r" all sit on
    the baseline, the foot of their glyph boxes)."""
    document = pypdfium2.PdfDocument(pdf)
    try:
        page = document[0]
        textpage, height = page.get_textpage(), page.get_height()
        count = textpage.count_chars()
        chars = [(textpage.get_text_range(i, 1), textpage.get_charbox(i)) for i in range(count)]
        found = []
        for i, (char, _) in enumerate(chars):
            if char != "k":
                continue
            after = next((n for n in range(i + 1, count) if chars[n][0].strip()), None)
            before = next((n for n in range(i - 1, -1, -1) if chars[n][0].strip()), None)
            if after is None or before is None or chars[after][0] != "r" \
                    or not chars[before][0].isdigit():
                continue
            foot = [(height - chars[n][1][1]) * MM_PER_PT for n in (before, i, after)]
            text = "".join(c for c, _ in chars[max(0, i - 25):i])
            found.append((normalise(text), foot[0], max(abs(foot[1] - foot[0]),
                                                         abs(foot[2] - foot[0]))))
        return found
    finally:
        document.close()


@pytest.mark.parametrize("engine", ["weasyprint", "typst"])
def test_a_13_digit_amount_keeps_kr_on_its_line(engine: str) -> None:
    data = json.loads((LAYOUT.path / "sample.json").read_text(encoding="utf-8"))
    data["transactions"][0]["amount"] = "1234567890123.45"
    composition = compose(ComposeRequest(
        tenant="t", layout=LAYOUT, data=json.dumps(data), document_id="01JTEST",
        now=datetime(2026, 3, 2, 9, tzinfo=UTC), channels=(Channel.PRINT,)))
    due = composition.context["summary"]["amount_due"]
    assert normalise(due).startswith("1 234 567") and normalise(due).endswith(",82 kr")
    printer = PrintEngines(engine)
    if engine == "typst":  # its giro slip's KRONER cell cannot hold 13 digits: the print
        # channel refuses the document (tests/unit/test_preflight_borders.py, QA M4), so the
        # amount boxes are read from what the engine rendered
        with pytest.raises(InvalidInput, match="across a cell or box border"):
            render_print(composition, LAYOUT, printer)
        pdf = printer.render(LAYOUT, composition).content
    else:
        pdf = render_print(composition, LAYOUT, printer).content
    lines = currency_lines(pdf)
    big = [line for line in lines if line[0].endswith("924 418,82")]
    assert len(big) >= 2, lines  # the facts box's total and the pay box's amount
    apart = [(text, round(off, 1)) for text, _, off in lines if off > 0.5]
    assert not apart, f"'kr' on another line than its amount: {apart}"
