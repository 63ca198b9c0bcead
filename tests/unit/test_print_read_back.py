"""The print PDF's read-back checks in one pdfium pass (issue 14).

The text-area preflight and the mark-zone check read the rendered PDF once
(`server.pdfium.read_back`): one open, each page loaded once. pdfium reads a copy whose
ICC-based colour spaces are named as device colour spaces (`without_icc_profiles`), which
spares it a colour transform per document; these tests hold that the copy shows pdfium
the same text, text runs and page objects as the PDF itself, that one pass still finds
text drawn over text and ink in a mark zone in the same document, and that the print
channel refuses either with the field named, the preflight first.
"""

from __future__ import annotations

import pypdfium2
import pytest

from server.channels.pdf import PrintEngines, render_print
from server.channels.preflight import check_pdf
from server.channels.print_zones import find_intrusions
from server.errors import InvalidInput
from server.pdfium import read_back, reading_copy, without_icc_profiles, without_metadata
from server.printing.profiles import Rect
from server.printing.zones import MarkZone
from tests.pdf_inspect import find_text
from tests.print_engines import print_engines
from tests.unit.test_print_text_fits import (  # noqa: F401 (a fixture)
    LAYOUTS,
    composed,
    sample,
    typst_without_word_breaks,
    unbroken,
)


def what_pdfium_reads(pdf: bytes) -> list[tuple]:
    """Per page: its size, its text, its text runs and its top-level objects with bounds,
    read with pypdfium2's own helpers (not `read_back`)."""
    document = pypdfium2.PdfDocument(pdf)
    try:
        pages = []
        for page in document:
            textpage = page.get_textpage()
            rects = [textpage.get_rect(i) for i in range(textpage.count_rects())]
            objects = [(obj.type, obj.get_bounds()) for obj in page.get_objects(max_depth=1)]
            pages.append((page.get_size(), textpage.get_text_range(), rects, objects))
        return pages
    finally:
        document.close()


def zone_over(pdf: bytes, text: str) -> MarkZone:
    """A mark zone of a made-up profile exactly over `text` on the first page."""
    box = find_text(pdf, text)[0]
    return MarkZone("test-line", "omr", Rect(box.left, box.top, box.right - box.left,
                                             box.bottom - box.top))


@pytest.mark.parametrize(("layout_id", "engine"), [
    ("card-invoice", "typst"), ("card-invoice", "weasyprint"),
    ("payment-reminder", "typst"), ("b2b-invoice", "typst")])
def test_the_copy_without_icc_profiles_reads_the_same(layout_id, engine) -> None:
    layout = LAYOUTS.get(layout_id)
    composition = composed(layout, sample(layout))
    pdf = print_engines(engine, layout).render(layout, composition).content
    copy = without_icc_profiles(pdf)
    assert len(copy) == len(pdf)  # every cross-reference offset holds
    if engine == "typst":  # Typst's PDF/A pages draw in ICC-based sRGB and grey
        assert b"/ICCBased" in pdf and b"/ICCBased" not in copy
    assert what_pdfium_reads(copy) == what_pdfium_reads(pdf)
    read = reading_copy(pdf)  # what read_back opens: without the XMP metadata too
    assert len(read) == len(pdf)
    if engine == "typst":  # its catalog is a plain object: the reference is hidden
        assert b"/Metadata " in pdf and b"/Metadata " not in read
    assert what_pdfium_reads(read) == what_pdfium_reads(pdf)


def test_icc_colour_spaces_become_device_ones_of_the_same_components() -> None:
    pdf = (b"%PDF-1.7\n4 0 obj\n[/ICCBased 5 0 R]\nendobj\n5 0 obj\n<</Length 3/N 1>>\n"
           b"stream\nabc\nendstream\nendobj\n15 0 obj\n<</Length 3/N 3>>\nstream\nabc\n"
           b"endstream\nendobj\n6 0 obj\n<</ColorSpace<</a [ /ICCBased 15 0 R ]/b"
           b"[/ICCBased 7 0 R]>>>>\nendobj\n")
    copy = without_icc_profiles(pdf)
    assert len(copy) == len(pdf)
    assert b"4 0 obj\n[/DeviceGray]    \nendobj" in copy  # object 5 has one component
    assert b"/a [/DeviceRGB]        /b" in copy  # not object 5: 15 has three
    assert b"[/ICCBased 7 0 R]" in copy  # no such object: left as it was
    assert without_icc_profiles(b"%PDF-1.7\n") == b"%PDF-1.7\n"


def test_metadata_references_are_hidden_under_a_key_of_the_same_length() -> None:
    pdf = (b"%PDF-1.7\n9 0 obj\n<</Type/Catalog/Pages 1 0 R/Metadata 422 0 R/Lang(nb)>>\n"
           b"endobj\n10 0 obj\n<</Type /Metadata /Subtype /XML /Length 0>>\nendobj\n")
    copy = without_metadata(pdf)
    assert len(copy) == len(pdf)
    assert b"/Pages 1 0 R/XMetadat 422 0 R/Lang(nb)" in copy
    assert b"<</Type /Metadata /Subtype /XML" in copy  # not a reference: as it was
    assert without_metadata(b"%PDF-1.7\n") == b"%PDF-1.7\n"


def test_one_read_back_finds_text_over_text_and_ink_in_a_mark_zone(
        typst_without_word_breaks) -> None:  # noqa: F811
    """A description without break points, in a Typst template that does not break it,
    runs over its neighbour column; a (made-up) profile's mark zone lies on it too."""
    layout = typst_without_word_breaks
    data = sample(layout)
    data["transactions"][0]["description"] = unbroken(80)
    composition = composed(layout, data)
    pdf = PrintEngines("typst").render(layout, composition).content
    zone = zone_over(pdf, unbroken(80)[:14])
    with read_back(pdf) as pages:
        problems = check_pdf(pages, composition, layout)
        intrusions = find_intrusions(pages, [zone])
    assert {v.field for v in problems} == {"$.transactions[0].description"}
    assert any("drawn over text" in v.description for v in problems), problems
    first = intrusions[0]  # every page is checked against every zone
    assert first.page == 1 and first.in_zone == unbroken(14) and unbroken(30) in first.text
    # the same findings as each check reading the PDF on its own
    assert check_pdf(pdf, composition, layout) == problems
    assert find_intrusions(pdf, [zone]) == intrusions
    # the print channel refuses it, the preflight's error first
    with pytest.raises(InvalidInput, match="cannot hold this document's text") as refused:
        render_print(composition, layout, PrintEngines("typst"), [zone])
    assert refused.value.violations == problems


def test_the_print_channel_refuses_ink_in_a_mark_zone_naming_the_field() -> None:
    layout = LAYOUTS.get("card-invoice")
    composition = composed(layout, sample(layout))
    engine = PrintEngines("typst")
    render_print(composition, layout, engine)  # fits, and no zone to keep off
    zone = zone_over(engine.render(layout, composition).content, "RUTER MOBILBILLETT")
    with pytest.raises(InvalidInput, match="mark zone") as refused:
        render_print(composition, layout, engine, [zone])
    violation = refused.value.violations[0]  # page 2 has text there too
    assert violation.field == "$.transactions[1].description"
    assert "'test-line'" in violation.description and "page 1" in violation.description


def test_read_back_gives_the_runs_and_objects_pypdfium2_reads() -> None:
    """`ReadPage.text_rects` and `ReadPage.objects` read pdfium's edges with raw calls (and
    `struct`, not ctypes item access): the same values, in the same order, as pypdfium2's
    own helpers on the same pages."""
    layout = LAYOUTS.get("card-invoice")
    composition = composed(layout, sample(layout))
    pdf = PrintEngines("typst").render(layout, composition).content
    with read_back(pdf) as pages:  # pypdfium2's get_rect: (left, bottom, right, top)
        mine = [([(left, bottom, right, top) for left, top, right, bottom in page.text_rects()],
                 [(page.object_type(obj), (left, bottom, right, top))
                  for obj, left, bottom, right, top in page.objects()]) for page in pages]
    theirs = [(rects, objects) for _, _, rects, objects in
              what_pdfium_reads(without_icc_profiles(pdf))]
    assert mine == theirs
    assert all(rects and objects for rects, objects in mine)


def test_the_typst_print_pdf_is_opened_once_and_its_pages_counted_there(monkeypatch) -> None:
    """Typst leaves the page count to the print checks' one pass: `render_print` opens the
    PDF once (the count used to open it a second time), and the count it records is
    pdfium's; anyone else asking a Typst `RenderedPdf` for its pages has them counted."""
    import server.pdfium

    layout = LAYOUTS.get("card-invoice")
    data = sample(layout)
    data["transactions"] = data["transactions"] * 12  # two pages at least
    composition = composed(layout, data)
    engine = PrintEngines("typst")
    rendered = engine.render(layout, composition)
    assert rendered.counted_pages is None
    expected = len(pypdfium2.PdfDocument(rendered.content))
    assert expected >= 2 and rendered.pages == expected and rendered.counted_pages == expected
    opened = []
    real = server.pdfium.pypdfium2.PdfDocument
    monkeypatch.setattr(server.pdfium.pypdfium2, "PdfDocument",
                        lambda *a, **kw: opened.append(1) or real(*a, **kw))
    output = render_print(composition, layout, engine)
    assert output.facts["pages"] == expected and len(opened) == 1
