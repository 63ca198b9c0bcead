"""The preflight's quick pass (server.channels.preflight_quick, issue 14): a page cleared from
its text objects' bounds, without pdfium's text page, is a page the run-by-run check clears.

Why it holds: every glyph pdfium places lies inside the (grown) bounds of a text object,
on every sample of every layout, both engines; and every page the quick pass clears, of the
samples and of documents the preflight refuses (text past the edge, over text, out of the
window, across a rule, rows pushed down), has no problem in the run-by-run check, whose
findings are the same as before. Each rule's geometry on made-up boxes; a clear document
never makes a text page; text inside a form XObject goes to the run-by-run check.
"""

from __future__ import annotations

import io
import json
import random

import pikepdf
import pypdfium2
import pytest

from server.channels import preflight
from server.channels.pdf import PrintEngines, engine_of, refuse_unprintable
from server.channels.preflight import check_pdf
from server.channels.preflight_borders import vertical_rules
from server.channels.preflight_clipped import cut_text
from server.channels.preflight_quick import (
    MARGIN_MM,
    _inside,
    _may_cross_rule,
    _may_leave_window,
    _may_overlap,
    _may_overlap_sweep,
    page_is_clear,
    text_object_bounds,
)
from server.compose.model import Channel
from server.pdfium import read_back
from tests.print_engines import print_engines
from tests.unit.test_preflight_clipped import LONG_SELLER
from tests.unit.test_preflight_pushed_rows import long_creditor
from tests.unit.test_print_text_fits import (  # noqa: F401 (a fixture)
    DESCRIPTOR,
    LAYOUTS,
    composed,
    engines_for,
    put,
    sample,
    typst_without_word_breaks,
    unbroken,
)

MM_PER_PT = 25.4 / 72


@pytest.fixture(scope="module")
def samples():
    """(name, layout, composition, PDF) of every sample of every print layout (and the
    frozen card invoice 1.0.0), with each engine it has a template for."""
    out = []
    for layout in [*LAYOUTS.latest(), LAYOUTS.get("card-invoice", "1.0.0")]:
        if Channel.PRINT not in layout.channels:
            continue
        for path in sorted(layout.path.glob("sample*.json")):
            composition = composed(layout, json.loads(path.read_text(encoding="utf-8")))
            for engine in engines_for(layout):
                pdf = print_engines(engine, layout).render(layout, composition).content
                out.append((f"{layout.ref} {path.name} {engine}", layout, composition, pdf))
    return out


def refused_documents(without_word_breaks):
    """(name, layout, composition, PDF) of documents the preflight refuses, one per way."""
    cases = []

    def add(name, layout, data, engine):
        composition = composed(layout, data)
        pdf = print_engines(engine, layout).render(layout, composition).content
        cases.append((name, layout, composition, pdf))

    frozen = LAYOUTS.get("card-invoice", "1.0.0")
    data = sample(frozen)
    data["transactions"][0]["description"] = DESCRIPTOR
    add("past the right edge", frozen, data, "weasyprint")
    data = sample(without_word_breaks)
    data["transactions"][0]["description"] = unbroken(80)
    add("text over text", without_word_breaks, data, "typst")
    card = LAYOUTS.get("card-invoice")
    for engine in ("weasyprint", "typst"):
        data = sample(card)
        data["customer"]["address"]["lines"] = [unbroken(70), unbroken(69), unbroken(68)]
        add(f"out of the window ({engine})", card, data, engine)
    reminder = LAYOUTS.get("payment-reminder")
    data = sample(reminder)
    data["invoice"]["amount_outstanding"] = "999999999999.99"
    add("across a rule", reminder, data, "typst")
    add("rows pushed down", reminder, long_creditor(), "typst")
    b2b = LAYOUTS.get("b2b-invoice", "2.3.0")  # 2.4.0 prints every amount (test_b2b_24)
    data = sample(b2b)
    put(data, "lines.0.unit_price", "999999999.99")
    add("a line sum over the VAT rate", b2b, data, engine_of(b2b))
    b2b = LAYOUTS.get("b2b-invoice", "2.7.0")
    data = json.loads(b2b.sample_data("de-DE"))
    data["seller"]["name"] = LONG_SELLER  # its return line cut off by its box
    for engine in ("weasyprint", "typst"):
        add(f"cut off by its box ({engine})", b2b, data, engine)
    return cases


def glyph_boxes(page) -> list[tuple[float, float, float, float]]:
    """Every non-space character's box on `page` (pdfium's text page,
    `FPDFText_GetCharBox`: the glyph's bounding box), mm from the paper's top-left."""
    textpage, height = page.textpage, page.height
    boxes = []
    for index in range(textpage.count_chars()):
        if textpage.get_text_range(index, 1).strip():
            left, bottom, right, top = textpage.get_charbox(index)
            boxes.append((left * MM_PER_PT, (height - top) * MM_PER_PT,
                          right * MM_PER_PT, (height - bottom) * MM_PER_PT))
    return boxes


def test_every_glyph_lies_inside_the_grown_bounds_of_a_text_object(samples):
    checked = 0
    for name, _, _, pdf in samples:
        with read_back(pdf) as pages:
            for page in pages:
                objects = text_object_bounds(page)
                assert objects, f"{name} page {page.number}: no text objects, or a form"
                for glyph in glyph_boxes(page):
                    checked += 1
                    assert any(o[0] <= glyph[0] and o[1] <= glyph[1] and glyph[2] <= o[2]
                               and glyph[3] <= o[3] for o in objects), \
                        f"{name} page {page.number}: glyph {glyph} in no object"
    assert checked > 10_000  # every sample's text, not a page or two


def test_a_clear_document_makes_no_text_page(samples, monkeypatch):
    made = []
    get_textpage = pypdfium2.PdfPage.get_textpage

    def counted(self, *args, **kwargs):
        made.append(self)
        return get_textpage(self, *args, **kwargs)

    monkeypatch.setattr(pypdfium2.PdfPage, "get_textpage", counted)
    for name, layout, composition, pdf in samples:
        assert check_pdf(pdf, composition, layout) == [], name
        refuse_unprintable(pdf, composition, layout)  # the print channel's one pass
    assert made == []
    # a refused document's pages that are not clear are read run by run, as before
    frozen = LAYOUTS.get("card-invoice", "1.0.0")
    data = sample(frozen)
    data["transactions"][0]["description"] = DESCRIPTOR
    composition = composed(frozen, data)
    pdf = PrintEngines("weasyprint").render(frozen, composition).content
    assert check_pdf(pdf, composition, frozen)
    assert made


def test_a_page_the_quick_pass_clears_passes_the_run_by_run_check(
        samples, typst_without_word_breaks, monkeypatch):  # noqa: F811
    """Each page of the samples and of refused documents: when `page_is_clear`, the
    run-by-run check (the quick pass switched off) finds no problem there; the refusals
    stay what they were, word for word."""
    quick = preflight.page_is_clear
    cleared: list[bool] = []

    def spy(*args):
        cleared.append(quick(*args))
        return cleared[-1]

    def problems(page, composition, layout, clear):
        monkeypatch.setattr(preflight, "page_is_clear", clear)
        return [p.what for p in preflight._page_problems(page, composition, layout)]

    refused = refused_documents(typst_without_word_breaks)
    refused_names = {name for name, *_ in refused}
    for name, layout, composition, pdf in [*samples, *refused]:
        with read_back(pdf) as pages:
            for page in pages:
                found = problems(page, composition, layout, spy)
                exact = problems(page, composition, layout, lambda *args: False)
                assert found == exact, f"{name} page {page.number}"
                assert not (cleared[-1] and exact), f"{name} page {page.number}: {exact}"
        monkeypatch.setattr(preflight, "page_is_clear", quick)
        with_quick = check_pdf(pdf, composition, layout)
        monkeypatch.setattr(preflight, "page_is_clear", lambda *args: False)
        assert with_quick == check_pdf(pdf, composition, layout), name
        assert bool(with_quick) is (name in refused_names), name
    assert cleared.count(True) > len(samples)  # every sample page, some of the others
    assert cleared.count(False) >= len(refused)


def clear_by_the_rules(page, area, window, tolerance, grace, overlap) -> bool:
    """`page_is_clear` as its rules read, each over the whole page (as it was computed
    before one walk over the objects did it all): the text objects' boxes, then each rule,
    then the text objects standing past their clip (`preflight_clipped.cut_text`)."""
    boxes = text_object_bounds(page)
    if boxes is None:
        return False
    if not boxes:
        return True
    return (_inside(boxes, area, tolerance)
            and not (window is not None and _may_leave_window(boxes, window, tolerance, grace))
            and not _may_cross_rule(boxes, vertical_rules(page))
            and not _may_overlap(boxes, overlap)
            and not cut_text(page, tolerance))


def test_the_single_walk_answers_as_each_rule_over_the_whole_page(
        samples, typst_without_word_breaks):  # noqa: F811
    """`page_is_clear` walks the page's objects once, testing the area as it goes and
    collecting the rules: on every page of the samples and of refused documents, with the
    layout's area and window and with narrower areas, a window on every page, and other
    overlaps (so every rule decides some page), it answers as the rules do one by one: a
    shortcut that cleared a page one of them refuses fails here."""
    answers = []
    for name, layout, composition, pdf in [*samples,
                                           *refused_documents(typst_without_word_breaks)]:
        with read_back(pdf) as pages:
            for page in pages:
                area = preflight.text_area(layout, page.width * MM_PER_PT,
                                           page.height * MM_PER_PT)
                edges = (area.left, area.top, area.right, area.bottom)
                box = preflight.window(layout, composition)
                window = box and (box.left, box.top, box.right, box.bottom)
                for area_, window_, overlap in (
                        (edges, window if page.number == 1 else None, 0.5),
                        (edges, window, 0.5),
                        # each edge of the area alone drawn in, so each decides a page
                        ((edges[0] + 20, *edges[1:]), None, 0.5),
                        ((edges[0], edges[1] + 60, *edges[2:]), None, 0.5),
                        ((*edges[:2], edges[2] - 20, edges[3]), None, 0.5),
                        ((*edges[:3], edges[3] - 100), None, 0.5),
                        (edges, None, 0.0), (edges, None, 3.0)):
                    args = (page, area_, window_, preflight.TOLERANCE_MM,
                            preflight.WINDOW_GRACE_MM, overlap)
                    expected = clear_by_the_rules(*args)
                    assert page_is_clear(*args) is expected, f"{name} page {page.number}"
                    answers.append(expected)
    assert answers.count(True) > 50 and answers.count(False) > 50


def test_the_overlap_by_clusters_answers_as_the_plain_sweep(samples):
    """`_may_overlap` compares a line's boxes left to right within clusters of lines; the
    plain sweep down the page compares each box with every box starting above its foot.
    The same answer on random boxes (on a coarse grid, so tops, feet and edges tie; some
    of no height or width) and on every page's text objects, drawn closer together until
    some overlap: a cluster or a break that skipped an overlapping pair fails here."""
    rng = random.Random(14)
    answers = []
    for _ in range(3000):
        boxes = []
        for _ in range(rng.randint(2, 14)):
            left, top = rng.randint(0, 40) / 2, rng.randint(0, 40) / 2
            boxes.append((left, top, left + rng.randint(0, 16) / 2,
                          top + rng.randint(0, 6) / 2))
        for overlap in (0.0, 0.5, 3.0):
            expected = _may_overlap_sweep(sorted(boxes, key=lambda b: b[1]), overlap)
            assert _may_overlap(boxes, overlap) is expected, (boxes, overlap)
            answers.append(expected)
    for _, _, _, pdf in samples:
        with read_back(pdf) as pages:
            for page in pages:
                boxes = text_object_bounds(page)
                for squeeze in (1.0, 0.9, 0.75):  # each box's left drawn to the left
                    moved = [(lf - (rt - lf) * (1 - squeeze) * 3, tp, rt, bm)
                             for lf, tp, rt, bm in boxes]
                    for overlap in (0.0, 0.5, 3.0):
                        expected = _may_overlap_sweep(sorted(moved, key=lambda b: b[1]),
                                                      overlap)
                        assert _may_overlap(moved, overlap) is expected
                        answers.append(expected)
    assert answers.count(True) > 1000 and answers.count(False) > 1000


def test_text_inside_a_form_xobject_goes_to_the_run_by_run_check():
    """pdfium gives a form XObject as one page object: its text is not among the page's
    text objects, so the page is not cleared, and the text in it past the left edge of the
    text area is found run by run."""
    pdf = pikepdf.new()
    font = pdf.make_indirect(pikepdf.Dictionary(Type=pikepdf.Name.Font,
                                                Subtype=pikepdf.Name.Type1,
                                                BaseFont=pikepdf.Name.Helvetica))
    resources = pikepdf.Dictionary(Font=pikepdf.Dictionary(F1=font))
    form = pdf.make_stream(b"BT /F1 10 Tf 5 400 Td (OUTSIDE THE AREA) Tj ET",
                           Type=pikepdf.Name.XObject, Subtype=pikepdf.Name.Form,
                           BBox=[0, 0, 595, 842], Resources=resources)
    page = pikepdf.Dictionary(
        Type=pikepdf.Name.Page, MediaBox=[0, 0, 595, 842],
        Resources=pikepdf.Dictionary(XObject=pikepdf.Dictionary(F=form)),
        Contents=pdf.make_stream(b"q /F Do Q"))
    pdf.pages.append(pikepdf.Page(page))
    out = io.BytesIO()
    pdf.save(out)
    layout = LAYOUTS.get("card-invoice")
    composition = composed(layout, sample(layout))
    with read_back(out.getvalue()) as pages:
        assert text_object_bounds(pages[0]) is None
        assert not page_is_clear(pages[0], (18, 18, 192, 279), None, 0.5, 3.0, 0.5)
        [problem] = check_pdf(pages, composition, layout)
    assert "past the left edge of the text area" in problem.description
    assert "OUTSIDE THE AREA" in problem.description


# --- each rule's geometry, on made-up boxes: (left, top, right, bottom) mm -----------------

AREA = (18.0, 18.0, 192.0, 279.0)
WINDOW = (20.0, 45.0, 105.0, 80.0)  # DIN 5008 form B, 35 mm tall here
TOLERANCE, GRACE, OVERLAP = 0.5, 3.0, 0.5


@pytest.mark.parametrize(("box", "inside"), [
    ((18.0, 18.0, 192.0, 279.0), True),   # the area itself
    ((17.6, 30.0, 50.0, 34.0), True),     # past the left edge within the tolerance
    ((17.4, 30.0, 50.0, 34.0), False),    # past it by more
    ((150.0, 30.0, 192.6, 34.0), False),  # past the right edge
    ((50.0, 17.4, 80.0, 21.0), False),    # above the top
    ((50.0, 276.0, 80.0, 279.6), False),  # below the foot
])
def test_inside_the_text_area_within_the_tolerance(box, inside):
    assert _inside([(30.0, 30.0, 40.0, 34.0), box], AREA, TOLERANCE) is inside


@pytest.mark.parametrize(("box", "leaves"), [
    ((20.0, 45.0, 105.0, 49.0), False),   # the window's first line, its full width
    ((19.6, 44.6, 105.4, 80.4), False),   # the window, within the tolerance
    ((20.0, 60.0, 106.0, 64.0), True),    # a line past its right edge
    ((20.0, 76.0, 60.0, 80.6), True),     # a line past its foot
    ((20.0, 81.0, 60.0, 82.5), True),     # a line wrapped below it, within the grace
    ((20.0, 83.0, 60.0, 87.0), False),    # below the grace: no longer the address
    ((19.6, 40.0, 40.0, 44.6), True),     # reaching from above into its top rows
    ((20.0, 38.0, 40.0, 44.4), False),    # above it, ending above its top rows
    ((110.0, 50.0, 190.0, 54.0), False),  # beside it, on its right
    ((5.0, 50.0, 19.4, 54.0), False),     # beside it, on its left
    ((5.0, 50.0, 30.0, 54.0), True),      # from its left into its column
])
def test_an_object_that_may_hold_an_address_line_leaving_the_window(box, leaves):
    assert _may_leave_window([box], WINDOW, TOLERANCE, GRACE) is leaves


RULE = (100.0, 50.0, 60.0)  # x, top, bottom


@pytest.mark.parametrize(("box", "crossed"), [
    ((90.0, 52.0, 110.0, 56.0), True),    # a run through the rule
    ((99.6, 52.0, 110.0, 56.0), False),   # starting at the rule, within the tolerance
    ((90.0, 52.0, 100.4, 56.0), False),   # ending at it, within the tolerance
    ((90.0, 40.0, 110.0, 50.0), True),    # its foot meets the rule's top
    ((90.0, 40.0, 110.0, 49.9), False),   # above the rule
    ((90.0, 60.1, 110.0, 64.0), False),   # below it
])
def test_a_vertical_rule_that_may_cross_a_run(box, crossed):
    assert _may_cross_rule([box], [RULE]) is crossed
    assert _may_cross_rule([box], []) is False


@pytest.mark.parametrize(("other", "overlaps"), [
    ((49.0, 50.0, 80.0, 54.0), True),     # 1 mm into it on its line
    ((49.6, 50.0, 80.0, 54.0), False),    # 0.4 mm: glyphs' side bearings, not text over text
    ((20.0, 53.9, 50.0, 58.0), True),     # the line below, 0.1 mm into it
    ((20.0, 54.0, 50.0, 58.0), False),    # the line below, touching
    ((10.0, 20.0, 60.0, 50.0), False),    # a box above, touching
])
def test_two_objects_that_may_overlap(other, overlaps):
    assert _may_overlap([(20.0, 50.0, 50.0, 54.0), other], OVERLAP) is overlaps


def test_the_overlap_sweep_meets_a_tall_box_and_one_many_lines_below_its_top():
    lines = [(20.0 + 40 * column, 20.0 + 4 * row, 55.0 + 40 * column, 24.0 + 4 * row)
             for row in range(60) for column in range(4)]  # a table: apart on every side
    assert not _may_overlap(lines, OVERLAP)
    tall = (56.0, 21.0, 59.0, 200.0)  # between the first two columns, down 45 rows
    assert not _may_overlap([*lines, tall], OVERLAP)
    assert _may_overlap([*lines, (56.0, 21.0, 62.0, 200.0)], OVERLAP)  # 2 mm into the 2nd


def test_bounds_are_grown_by_the_margin():
    pdf = pikepdf.new()
    font = pdf.make_indirect(pikepdf.Dictionary(Type=pikepdf.Name.Font,
                                                Subtype=pikepdf.Name.Type1,
                                                BaseFont=pikepdf.Name.Helvetica))
    page = pikepdf.Dictionary(
        Type=pikepdf.Name.Page, MediaBox=[0, 0, 595, 842],
        Resources=pikepdf.Dictionary(Font=pikepdf.Dictionary(F1=font)),
        Contents=pdf.make_stream(b"BT /F1 10 Tf 100 400 Td (Text) Tj ET 0.5 w 0 0 m 9 9 l S"))
    pdf.pages.append(pikepdf.Page(page))
    out = io.BytesIO()
    pdf.save(out)
    with read_back(out.getvalue()) as pages:
        [(obj, left, bottom, right, top)] = [
            o for o in pages[0].objects()
            if pages[0].object_type(o[0]) == pypdfium2.raw.FPDF_PAGEOBJ_TEXT]
        [bounds] = text_object_bounds(pages[0])  # the path is not text
    assert bounds == pytest.approx((left * MM_PER_PT - MARGIN_MM,
                                    (842 - top) * MM_PER_PT - MARGIN_MM,
                                    right * MM_PER_PT + MARGIN_MM,
                                    (842 - bottom) * MM_PER_PT + MARGIN_MM))
