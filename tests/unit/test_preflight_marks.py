"""Letters with combining marks in the print preflight (server/channels/preflight_marks.py).

Tester finding T2: a name or text with overlay marks ("No̶rdmann" with U+0336, "A̴B̵C" with
U+0334/U+0335), stacked accents (an NFD "Nguyễn") or Zalgo-like piles was refused as "text
is drawn over text" (Typst: pdfium reads each glyph of a cluster as the whole cluster, so the
overlay's glyph reads as a second "o" lying over the first), blaming `$.invoice.number`, and
an overlay on a name's last letter as text past the text area (the running header is
right-aligned: the overlay reaches 1 mm past the letter, both engines). The pages are right
(looked at as PNG). Text with marks that really runs over its neighbour cell is still
refused, naming the field it came from.
"""

from __future__ import annotations

import pytest

from server.channels.pdf import PrintEngines
from server.channels.preflight import check_pdf
from server.channels.preflight_marks import clusters, comparable
from server.compose.layouts import Layout, load_layout
from tests.print_engines import print_engines
from tests.unit.test_print_text_fits import (
    LAYOUTS,
    card_invoice_without_typst_breaks,
    composed,
    sample,
    unbroken,
)

STROKE, TILDE, SHORT_STROKE = "\u0336", "\u0334", "\u0335"
NAMES = {
    "one struck letter": f"Kari No{STROKE}rdmann",
    "tilde and short stroke overlays": f"A{TILDE}B{SHORT_STROKE}C Hansen",
    "overlay on the last letter": f"Ola Hanse{TILDE}n Øye{STROKE}",  # the running header
    "stacked accents, decomposed": "Nguye\u0302\u0303n Thi\u0323 Ha\u0300",
    # (a pile above and below one letter, as in "Ka\u0301\u0302\u0303\u0304\u0323\u0324ri", is
    # drawn by WeasyPrint over the next letter: refused rightly, the page is wrong)
    "piles of marks": f"Ka\u0301\u0302\u0303\u0304ri No{STROKE}{TILDE}{SHORT_STROKE}rdmann",
}


@pytest.mark.parametrize("engine", ["typst", "weasyprint"])
@pytest.mark.parametrize("name", NAMES)
def test_names_with_overlays_and_stacked_marks_pass_the_preflight(engine, name) -> None:
    layout = LAYOUTS.get("card-invoice")
    data = sample(layout)
    data["customer"]["name"] = NAMES[name]  # the window, the running header, the giro slip
    data["transactions"][0]["description"] = NAMES[name]
    composition = composed(layout, data)
    pdf = print_engines(engine, layout).render(layout, composition).content
    assert check_pdf(pdf, composition, layout) == []


@pytest.fixture(scope="module")
def without_word_breaks(tmp_path_factory) -> Layout:
    """The card invoice 2.0.0 as a careless designer could make it, in both engines: Typst's
    `fit` breaks nothing, and the HTML table keeps its columns (`table-layout: fixed`) with
    descriptions on one line: a long description runs over the amount beside it."""
    folder = card_invoice_without_typst_breaks(tmp_path_factory.mktemp("layouts"))
    css = folder / "print.css"
    css.write_text(css.read_text() + "\n.transactions { table-layout: fixed; }\n"
                   ".transactions td.col-desc { overflow-wrap: normal; white-space: nowrap; }\n")
    return load_layout(folder)


@pytest.fixture(scope="module")
def copy_engines() -> dict[str, PrintEngines]:
    """One engine of each kind kept for the module's altered copy (`without_word_breaks`,
    made once, never changed): its stylesheets and fonts are loaded once, not per render.
    Kept apart from `print_engines`' (the copy has the real card invoice's ref)."""
    return {name: PrintEngines(name) for name in ("typst", "weasyprint")}


# descriptions of 70 to 72 letters without a break, with marks at their start: wider than
# the column in both engines, so their end lies over the amount
OVERFLOWING = {
    "struck letter": f"N{STROKE}ORDMANN{unbroken(62)}",
    "tilde and short stroke overlays": f"A{TILDE}B{SHORT_STROKE}C{unbroken(72)}",
    "stacked accents, decomposed": f"NGUYE\u0302\u0303N{unbroken(70)}",
    "piles of marks": f"N{STROKE}{TILDE}{SHORT_STROKE}O\u0301\u0302\u0303\u0323RD{unbroken(68)}",
}


@pytest.mark.parametrize("engine", ["typst", "weasyprint"])
@pytest.mark.parametrize("text", OVERFLOWING)
def test_text_with_marks_over_its_neighbour_cell_is_refused_naming_its_field(
        without_word_breaks, copy_engines, engine, text) -> None:
    layout = without_word_breaks
    data = sample(layout)
    data["customer"]["name"] = NAMES["one struck letter"]  # on the same page, harmless
    data["transactions"][1]["description"] = OVERFLOWING[text]
    data["transactions"][1].pop("place", None)
    composition = composed(layout, data)
    pdf = copy_engines[engine].render(layout, composition).content
    problems = check_pdf(pdf, composition, layout)
    assert any("drawn over text" in v.description for v in problems), problems
    assert {v.field for v in problems} == {"$.transactions[1].description"}, problems


def test_a_cluster_is_a_letter_and_the_marks_after_it() -> None:
    assert clusters(f"No{STROKE}rd") == ["N", f"o{STROKE}", "r", "d"]
    assert clusters(f"{STROKE}rd") == [STROKE, "r", "d"]  # a run starting inside a cluster
    assert clusters("e\u0302\u0303n") == ["e\u0302\u0303", "n"]


@pytest.mark.parametrize("read", [
    f"No{STROKE}o{STROKE}rdmann",  # Typst: the overlay's glyph read as the cluster again
    f"No{STROKE}o{STROKE}r{STROKE}rdmann",  # WeasyPrint: runs "No̶", "o̶r", "̶rdmann" joined
    f"No{STROKE}rdmann",
])
def test_pdfiums_readings_of_a_struck_letter_compare_as_the_input(read) -> None:
    assert comparable(read) == comparable(f"No{STROKE}rdmann") == "Nordmann"


def test_comparable_text_keeps_letters_written_twice_without_marks() -> None:
    assert comparable("Nordmann") == "Nordmann"
    assert comparable(f"Bo{STROKE}o{STROKE}r{STROKE}rre") == comparable(f"Bo{STROKE}rre")
    assert comparable("Nguy\u1ec5n") == comparable("Nguye\u0302\u0303n") == "Nguyen"
