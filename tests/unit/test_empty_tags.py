"""WeasyPrint's tagged print PDFs hold no structure element that marks nothing
(server/channels/empty_tags.py, run by server/channels/pdf_ua.py before the PDF/UA-1
identification).

The accessibility review of welcome-letter 2.3.0's print (the default, HTML-first) found an
empty `/Span` at the masthead's logo: the logo is decoration beside the "Fjordbank" wordmark,
painted as a CSS background, which WeasyPrint draws as an artifact (so a screen reader reads
the bank's name once: tests/unit/test_tag_tree.py), but WeasyPrint still made a structure
element for its box, with nothing in it. The same empty `/Span` sat at the logo of every
layout drawn that way (b2b-invoice 2.5.0 on, card-invoice 2.2.0) and at welcome-letter's
campaign icon. The step removes such elements and keeps empty table cells, which hold their
place in a data table's rows.
"""

from __future__ import annotations

import io
from datetime import UTC, datetime

import pikepdf
import pytest

from server.channels.empty_tags import drop_empty_elements
from server.compose.composer import ComposeRequest, compose
from server.compose.layouts import PRINT_ENGINES
from server.compose.model import Channel
from tests.layouts import shipped
from tests.pdf_conformance import pdf_ua_findings
from tests.pdf_tags import elements, empty_elements, spoken
from tests.print_engines import print_engines

LAYOUTS = shipped()
NOW = datetime(2026, 3, 2, 9, tzinfo=UTC)
# every newest layout with a WeasyPrint print template, tagged (PDF/UA-1)
WEASYPRINT = [layout for layout in LAYOUTS.latest()
              if layout.section("print").get(PRINT_ENGINES["weasyprint"])]


def printed(layout, locale: str | None = None) -> bytes:
    composition = compose(ComposeRequest(
        tenant="t", layout=layout, data=layout.sample_data(locale or layout.default_locale),
        document_id="01EMPTYTAGS", now=NOW, channels=(Channel.PRINT,), locale=locale))
    return print_engines("weasyprint", layout).engine("weasyprint").render(
        layout, composition).content


def test_every_layout_drawn_by_weasyprint_is_checked():
    assert {layout.id for layout in WEASYPRINT} >= {
        "b2b-invoice", "card-invoice", "payment-reminder", "welcome-letter"}


@pytest.mark.parametrize("layout", WEASYPRINT, ids=[layout.ref for layout in WEASYPRINT])
def test_no_element_is_empty_but_table_cells(layout):
    pdf = printed(layout)
    assert {role for role in empty_elements(pdf)} <= {"TD", "TH"}, layout.ref
    assert pdf_ua_findings(pdf) == []


def test_the_welcome_letters_logo_leaves_no_element_and_stays_an_artifact():
    layout = LAYOUTS.get("welcome-letter")
    assert layout.version == "2.3.0"
    pdf = printed(layout)
    found = elements(pdf)
    # the masthead's brand cell opens with the wordmark's text: no empty element before it
    # where the logo is drawn; the logo is no Figure (2.3.0's artifact, as before). (The
    # elements whose marked content draws nothing, such as the whitespace after the
    # wordmark, are not this step's: they have kids.)
    at = next(i for i, e in enumerate(found) if e.role == "Div" and e.text == "Fjordbank")
    kids = [e for e in found[at + 1:next((j for j in range(at + 1, len(found))
                                          if found[j].depth <= found[at].depth), len(found))]
            if e.depth == found[at].depth + 1]
    assert (kids[0].role, kids[0].text) == ("Span", "Fjordbank"), kids
    assert "Figure" not in {e.role for e in found}
    assert "Fjordbank-logo" not in spoken(pdf)
    assert empty_elements(pdf) == []


# --- the step on a structure tree made by hand -------------------------------------------


def _tree() -> pikepdf.Pdf:
    """A /Document with: an empty /Span; a /P holding an MCID and an empty /Span; a /Span
    holding only an empty /Span (empty once that goes); a table row with an empty /TD; an
    empty /Div with an /ID."""
    pdf = pikepdf.new()
    pdf.add_blank_page()

    def element(role: str, kids=None, **extra) -> pikepdf.Dictionary:
        found = pdf.make_indirect(pikepdf.Dictionary(Type=pikepdf.Name.StructElem,
                                                     S=pikepdf.Name(role), **extra))
        if kids is not None:
            found.K = kids
        return found

    row = element("/TR", pikepdf.Array([element("/TD", pikepdf.Array([1])), element("/TD")]))
    document = element("/Document", pikepdf.Array([
        element("/Span"),
        element("/P", pikepdf.Array([0, element("/Span", pikepdf.Array())])),
        element("/Span", element("/Span")),
        element("/Table", pikepdf.Array([row])),
        element("/Div", ID=pikepdf.String("note")),
    ]))
    pdf.Root.StructTreeRoot = pdf.make_indirect(pikepdf.Dictionary(
        Type=pikepdf.Name.StructTreeRoot, K=document))
    return pdf


def _roles(node) -> list:
    kids = node.get("/K")
    kids = [] if kids is None else list(kids) if isinstance(kids, pikepdf.Array) else [kids]
    return [(str(k.S)[1:], _roles(k)) if isinstance(k, pikepdf.Dictionary) else int(k)
            for k in kids]


def test_the_step_drops_what_marks_nothing_and_keeps_cells_and_named_elements():
    pdf = _tree()
    assert drop_empty_elements(pdf) == 4
    assert _roles(pdf.Root.StructTreeRoot) == [("Document", [
        ("P", [0]),
        ("Table", [("TR", [("TD", [1]), ("TD", [])])]),
        ("Div", []),
    ])]
    out = io.BytesIO()
    pdf.save(out)  # still a valid file
    assert drop_empty_elements(pikepdf.open(io.BytesIO(out.getvalue()))) == 0


def test_a_pdf_without_a_structure_tree_is_left_as_it_is():
    pdf = pikepdf.new()
    pdf.add_blank_page()
    assert drop_empty_elements(pdf) == 0
