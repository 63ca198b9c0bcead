"""The volume layouts' tables take a fixed alignment per column and one stroke, not a
function of (x, y) called for every cell.

Typst calls a table's `align` and `stroke` functions once per cell, and every call is a
memoized closure call (issue 14: on a card invoice with 30 transactions they were two
thirds of the template's closure calls). A per-column array of alignments is the same
alignment, and a stroke for every cell prints the same as `if y > 0 { rule }` because the
header cells set their own bottom stroke, which replaces the table's there, and the sides
the rule does not name stay none (`letter` sets `table(stroke: none)`, which a dictionary
of sides is folded into; without it they would take Typst's default 1 pt lines). Checked
here on a table like the templates' (same PDF bytes), and in the templates.
"""

from __future__ import annotations

from datetime import UTC, datetime

import typst

from server.compose.layouts import DEFAULT_LAYOUTS_DIR

VOLUME = ("card-invoice", "payment-reminder", "b2b-invoice")
TABLE = """#set document(title: "t")
#set table(stroke: none)  // as `letter` (base.typ) sets it
#let rule = (bottom: 0.2mm + gray)
#table(
  columns: (19mm, 1fr, 25mm),
  inset: (x: 1.5mm, top: 0.75mm, bottom: 0.95mm),
  {ALIGN_STROKE}
  table.header(..("Dato", "Beskrivelse", "Beløp").map(label => table.cell(
    stroke: (bottom: 0.4mm + navy), text(weight: 600, label)))),
  table.cell(colspan: 3, [Ingen transaksjoner]),
  ..range(40).map(i => (str(i), [Kjøp #i], [#(i * 3),00])).flatten(),
  table.footer(repeat: false, ..([], table.cell(stroke: (top: 0.4mm + black, bottom: none),
                                                colspan: 2, [Sum]))),
)
"""
PER_CELL = """align: (x, y) => if x >= 2 { right + top } else { left + top },
  stroke: (x, y) => if y > 0 { rule },"""
FIXED = """align: (left + top, left + top, right + top),
  stroke: rule,"""


def pdf(source: str) -> bytes:
    return typst.compile(source.encode(), format="pdf",
                         timestamp=datetime(2026, 3, 2, 9, 30, tzinfo=UTC))


def test_fixed_alignment_and_stroke_print_as_the_per_cell_functions():
    per_cell = pdf(TABLE.replace("{ALIGN_STROKE}", PER_CELL))
    assert pdf(TABLE.replace("{ALIGN_STROKE}", FIXED)) == per_cell
    # and the table is not the same as without strokes: the comparison sees them
    assert pdf(TABLE.replace("{ALIGN_STROKE}", "align: (left + top, left + top, right + top),")
               ) != per_cell


def test_volume_tables_take_no_per_cell_functions():
    for layout in VOLUME:
        source = (DEFAULT_LAYOUTS_DIR / layout / "2.0.0" / "print.typ").read_text(
            encoding="utf-8")
        # (the card invoice's summary grid keeps its function: no rule under the total)
        for setting in ("align: (x, y) =>", "stroke: (x, y) => if y > 0"):
            assert setting not in source, (layout, setting)
