"""`fit` measures only the words that could be too wide, and breaks exactly as before (issue 14).

The Typst templates' `fit` keeps a word whole without measuring it when the bounds of its
characters' widths (server/channels/advance_bounds.py) add up to at most its box at its
size. Two proofs that this changes nothing on the page:

* the bounds hold: every character the layout's fonts draw, every pair of ASCII characters
  (kerning) and odd words (ligatures, arrows, combining marks, Greek, Cyrillic), measured
  by Typst itself in every weight, upright and italic, and with tabular figures, are never
  wider than their bound (and no template sets `fit` under a case transformation or
  letter-spacing, which the bounds leave out);
* the pages are the same: documents of the three Typst layouts whose free text holds long,
  short and odd words (the issue's 61-character descriptor, URLs, Greek and Cyrillic,
  "ǄǄǄ", runs of W on either side of each box's width, digits) render with every character
  at the same place as with `fit` measuring every word (`TypstEngine(advance_bounds=False)`).
"""

from __future__ import annotations

import json
import re
import string
from datetime import UTC, datetime
from typing import Any

import pypdfium2
import pytest
import typst

from server.channels.advance_bounds import fit_bounds_json, layout_advance_bounds
from server.channels.typst_engine import TypstEngine
from server.compose.composer import ComposeRequest, compose
from server.compose.layouts import DEFAULT_LAYOUTS_DIR, font_folders
from tests.layouts import shipped

LAYOUTS = shipped()
NOW = datetime(2026, 3, 2, 9, tzinfo=UTC)
DESCRIPTOR = ("WWWEXAMPLESHOPNOORDER" + "7" * 60)[:61]  # issue 11's: 61, no space or hyphen
ODD_WORDS = ["ǄǄǄ", "WWWW", "Ψυχοθεραπευτική", "Достопримечательность", "->", "=>",
             "ffi", "[A]", "(A)", "1/2", "AVATAR", "i\u0301e\u0301", "Å\u030a", "ß",
             "https://fjordbank.no/kort?faktura=2026020018873&x=1", "2026020018873",
             "01.02.2026–28.02.2026", "merverdiavgiftsloven", "0123456789",
             # names in the fallback fonts' scripts: joining forms, conjuncts, marks
             "محمد", "العلي", "ﷺ", "דוד", "שָׁלוֹם", "शर्मा", "क्षत्रिय", "ि", "สมชาย", "ใจดี"]

MEASURE = """
#let words = json(bytes(sys.inputs.words))
#set text(font: ("Inter", "Noto Sans"), size: 10pt)
#context {
  let widest(w) = calc.max(..(400, 600, 700).map(weight => (
    measure(text(weight: weight, w)).width,
    measure(text(weight: weight, style: "italic", w)).width,
    measure(text(weight: weight, number-width: "tabular", w)).width,
  )).flatten()).pt()
  [#metadata(words.map(widest)) <widths>]
}
"""


def test_no_word_is_wider_than_its_characters_bounds(tmp_path):
    layout = LAYOUTS.get("card-invoice")
    bounds = layout_advance_bounds(layout)
    ascii_chars = string.ascii_letters + string.digits + string.punctuation
    words = [*bounds, *(a + b for a in ascii_chars for b in ascii_chars), *ODD_WORDS]
    (tmp_path / "measure.typ").write_text(MEASURE, encoding="utf-8")
    fonts = typst.Fonts(include_system_fonts=False, include_embedded_fonts=False,
                        font_paths=[str(folder) for folder in font_folders(layout)])
    widths = json.loads(typst.query(
        str(tmp_path / "measure.typ"), "<widths>", field="value", one=True,
        root=str(tmp_path), font_paths=fonts, ignore_system_fonts=True,
        sys_inputs={"words": json.dumps(words)}))
    wider = [(word, width, 10 * sum(bounds.get(c, 1e9) for c in word))
             for word, width in zip(words, widths, strict=True)
             if width > 10 * sum(bounds.get(c, 1e9) for c in word)]
    assert not wider, wider[:10]


def test_the_bounds_cover_the_documents_characters_and_values():
    layout = LAYOUTS.get("card-invoice")
    context = {"customer": {"name": "Ærø Ψ Ж ǄǄǄ"}, "lines": ["a\nb", "x\u00ady", "WW W"]}
    table = json.loads(fit_bounds_json(layout, json.dumps(context, ensure_ascii=False)))
    chars, values = table["chars"], table["values"]
    assert {"Æ", "r", "ø", "Ψ", "Ж", "Ǆ", "·", "–", "(", "0"} <= set(chars)
    # no bound: a word holding one is always measured
    assert "\n" not in chars and "\u00ad" not in chars
    assert chars["W"] > chars["i"] > 0
    # a value: its widest word
    assert values["WW W"] == pytest.approx(2 * chars["W"])
    assert values["Ærø Ψ Ж ǄǄǄ"] == pytest.approx(3 * chars["Ǆ"])
    assert "a\nb" not in values and "x\u00ady" not in values


# (layout, sample, [(path in the data, longest the schema allows)]): the free text each
# template sets with `fit`, in every kind of box (columns, window, facts box, slip, furniture)
FIELDS = {
    "card-invoice": ("sample.json", [
        ("transactions.0.description", 80), ("transactions.1.description", 80),
        ("transactions.0.place", 40), ("fees.0.description", 80), ("issuer.name", 80),
        ("issuer.customer_service.web", 80), ("customer.name", 70),
        ("customer.address.lines.0", 70), ("customer.address.city", 40)]),
    "payment-reminder": ("sample.json", [
        ("creditor.name", 80), ("invoice.description", 120), ("customer.name", 70),
        ("customer.address.lines.0", 70)]),
    "b2b-invoice": ("sample.json", [
        ("lines.0.name", 200), ("lines.0.description", 300), ("seller.name", 80),
        ("buyer_reference", 50), ("note", 300), ("customer.name", 70)]),
}
# runs of W on either side of where each kind of box breaks them (facts box 20 mm at 8 pt:
# 6 to 7; columns 30 mm at 7.5 to 8.5 pt: 9 to 12; the window 99 mm at 10 pt: 25 to 29)
LADDER = [" ".join("W" * n for n in lengths)
          for lengths in ((5, 6, 7, 8), (9, 10, 11), (12, 13), (25, 27, 29))]
VALUES = [DESCRIPTOR, " ".join(ODD_WORDS[:8]), " ".join(ODD_WORDS[8:]), *LADDER]


def put(data: dict[str, Any], path: str, value: Any) -> None:
    *parents, last = path.split(".")
    node: Any = data
    for part in parents:
        node = node[int(part)] if part.isdigit() else node.setdefault(part, {})
    node[int(last) if last.isdigit() else last] = value


def char_boxes(pdf: bytes) -> list[list[tuple[str, tuple[float, ...]]]]:
    """Every character of every page with its box (pt, to a thousandth)."""
    document = pypdfium2.PdfDocument(pdf)
    try:
        pages = []
        for page in document:
            text = page.get_textpage()
            pages.append([(text.get_text_range(i, 1),
                           tuple(round(v, 3) for v in text.get_charbox(i)))
                          for i in range(text.count_chars())])
        return pages
    finally:
        document.close()


@pytest.fixture(scope="module")
def engines() -> tuple[TypstEngine, TypstEngine]:
    return TypstEngine(), TypstEngine(advance_bounds=False)


@pytest.mark.parametrize("value", VALUES, ids=[v[:16] for v in VALUES])
@pytest.mark.parametrize("layout_id", list(FIELDS))
def test_fit_breaks_every_word_as_measuring_every_word_does(layout_id, value, engines):
    layout = LAYOUTS.get(layout_id)
    sample_name, fields = FIELDS[layout_id]
    data = json.loads((layout.path / sample_name).read_text(encoding="utf-8"))
    for path, longest in fields:
        put(data, path, value[:longest].strip())
    composition = compose(ComposeRequest(tenant="t", layout=layout, data=json.dumps(data),
                                         document_id="01JTEST", now=NOW))
    bounded, measured = (engine.render(layout, composition) for engine in engines)
    assert char_boxes(bounded.content) == char_boxes(measured.content)


def test_no_template_sets_fit_in_capitals_or_spaced_out():
    # the bounds are of the characters as they are, without letter-spacing: a `fit` under
    # `upper`, `smallcaps` or a positive `tracking` could be measured wider than its bound
    # (the b2b wordmark's tracking is negative: narrower)
    typst_files = [*DEFAULT_LAYOUTS_DIR.glob("_shared/*-typst/*.typ"),
                   *DEFAULT_LAYOUTS_DIR.glob("*/*/print.typ")]
    assert typst_files
    offending = [f"{path.relative_to(DEFAULT_LAYOUTS_DIR)}: {line.strip()}"
                 for path in typst_files
                 for line in path.read_text(encoding="utf-8").splitlines()
                 if "fit(" in line and re.search(
                     r"upper\(|lower\(|smallcaps\(|caps-label\(|tracking: *[0-9.]", line)]
    assert not offending, offending
