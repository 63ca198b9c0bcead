"""Preflight: text across a cell's or box's border (server.channels.preflight_borders), QA M4.

A payment reminder owing 999 999 999 999,99 composed OK and its giro slip printed
"1 004 794 520 582" in the KRONER cell, grown leftwards across the cell's rule into the KID
cell: no other text there, nothing past the text area, so no check saw it. The print channel
now refuses it with INVALID_ARGUMENT naming the amount field; the rule is general (a vertical
border line through a text run), tried here on a drawn page as well."""

from __future__ import annotations

import io
import json
from datetime import UTC, datetime

import pikepdf
import pytest

from server.channels.pdf import PrintEngines, render_print
from server.channels.preflight import page_edges
from server.channels.preflight_borders import crossing_runs
from server.compose.composer import ComposeRequest, compose
from server.errors import InvalidInput
from server.pdfium import read_back
from tests.layouts import shipped

LAYOUTS = shipped()
NOW = datetime(2026, 3, 2, 9, tzinfo=UTC)


def _render(amount_outstanding: str | None):
    layout = LAYOUTS.get("payment-reminder")
    data = json.loads((layout.path / "sample.json").read_text(encoding="utf-8"))
    if amount_outstanding is not None:
        data["invoice"]["amount_outstanding"] = amount_outstanding
    composition = compose(ComposeRequest(tenant="t", layout=layout, data=json.dumps(data),
                                         document_id="01JBORDER", now=NOW))
    return render_print(composition, layout, PrintEngines())  # the manifest's engine: Typst


def test_a_giro_amount_too_wide_for_its_kroner_cell_is_refused_with_its_field():
    assert _render(None).facts["pages"] >= 1  # the sample's amount fits its cell
    with pytest.raises(InvalidInput) as refused:
        _render("999999999999.99")
    [violation] = refused.value.violations
    assert violation.field == "$.invoice.amount_outstanding"
    assert "across a cell or box border" in violation.description
    assert '("1 004 794 520 582")' in violation.description  # as the reader sees it


def _page(*ops: bytes) -> bytes:
    """An A4 page with Helvetica 12 pt text "1 004 794 520 582" at x 100-~200 pt, y 400
    (pt, from the foot), and `ops` drawn after it."""
    pdf = pikepdf.new()
    font = pdf.make_indirect(pikepdf.Dictionary(Type=pikepdf.Name.Font,
                                                Subtype=pikepdf.Name.Type1,
                                                BaseFont=pikepdf.Name.Helvetica))
    content = b"BT /F1 12 Tf 100 400 Td (1 004 794 520 582) Tj ET\n" + b"\n".join(ops)
    page = pikepdf.Dictionary(Type=pikepdf.Name.Page, MediaBox=[0, 0, 595, 842],
                              Resources=pikepdf.Dictionary(Font=pikepdf.Dictionary(F1=font)),
                              Contents=pdf.make_stream(content))
    pdf.pages.append(pikepdf.Page(page))
    out = io.BytesIO()
    pdf.save(out)
    return out.getvalue()


@pytest.mark.parametrize(("ops", "crossed"), [
    ((b"0.6 w 130 390 m 130 420 l S",), True),    # a cell's rule through the digits
    ((b"130 385 0.6 40 re f",), True),            # the same rule drawn as a thin box
    ((b"0.6 w 95 390 m 95 420 l S",), False),     # a rule beside the text
    ((b"0.6 w 130 415 m 130 440 l S",), False),   # a rule ending above it
    ((b"0.6 w 100 398 m 190 398 l S",), False),   # an underline (horizontal)
    ((b"130 402 0.6 0.6 re f",), False),          # a dot, a QR module: no rule
    ((b"120 390 20 30 re f",), False),            # a box: no line
])
def test_a_vertical_rule_through_a_text_run_is_a_crossing(ops, crossed):
    with read_back(_page(*ops)) as pages:
        found = crossing_runs(pages[0], page_edges(pages[0]))
    assert bool(found) is crossed
