"""Preflight: text that runs across a cell's or box's border (a vertical rule).

A value too wide for its table cell does not always reach the page's edge or other text:
the giro slip's KRONER cell is right-aligned, so an outsized amount grows leftwards across
the cell's left rule into the KID cell, whose own value is short enough to leave room
(QA M4: "1 004 794 520 582" drawn across the rule between KID and KRONER). Neither the text
area nor text over text sees that; the cell's border does. Rules are how both engines draw
a border side: a path object (pdfium `FPDF_PAGEOBJ_PATH`) one line thick, here a vertical
one: at most `RULE_MAX_MM` wide and at least `RULE_MIN_MM` tall. A text run crosses it when
the rule stands inside the run's width by more than `TOLERANCE_MM` on both sides and spans
the run's middle height: a rule beside a value, or one ending above it, does not count.

Only vertical rules: a horizontal one through a run is usually an underline or a
strikethrough, which stand inside the run's box by design. A border drawn as one stroked
rectangle (all four sides alike) has the whole box as its bounds and is not seen here;
text leaving such a box is text leaving the text area or meeting other text.
"""

from __future__ import annotations

from collections.abc import Sequence

import pypdfium2

from server.pdfium import ReadPage

MM_PER_PT = 25.4 / 72
RULE_MAX_MM = 1.0  # thicker than this is a bar or a box, not a border line
RULE_MIN_MM = 2.0  # shorter than this is a glyph-sized mark (a QR module, a tick)
TOLERANCE_MM = 0.5  # glyph bounds vs the rule: side bearings, anti-aliasing

# (left, top, right, bottom, ...) in mm from the paper's top-left: preflight.Edges
Edges = tuple[float, ...]


def vertical_rules(page: ReadPage) -> list[tuple[float, float, float]]:
    """The page's vertical rules, (x, top, bottom) in mm from the paper's top-left, x the
    rule's centre line: top-level path objects at most RULE_MAX_MM wide and at least
    RULE_MIN_MM tall (a form XObject counts as one object, as in `ReadPage.objects`)."""
    height = page.height
    path = pypdfium2.raw.FPDF_PAGEOBJ_PATH
    rules = []
    for (_, left, bottom, right, top), kind in zip(page.objects(), page.kinds(), strict=True):
        if kind == path and (rule := vertical_rule(left, bottom, right, top, height)):
            rules.append(rule)
    return rules


def vertical_rule(left: float, bottom: float, right: float, top: float,
                  page_height: float) -> tuple[float, float, float] | None:
    """The rule a path object with these bounds (pt, y up, on a page `page_height` pt tall)
    draws, (x, top, bottom) in mm from the paper's top-left, or None when it is no vertical
    rule (wider than RULE_MAX_MM or shorter than RULE_MIN_MM)."""
    if (right - left) * MM_PER_PT <= RULE_MAX_MM and (top - bottom) * MM_PER_PT >= RULE_MIN_MM:
        return ((left + right) / 2 * MM_PER_PT, (page_height - top) * MM_PER_PT,
                (page_height - bottom) * MM_PER_PT)
    return None


def crossing_runs(page: ReadPage, edges: Sequence[Edges]
                  ) -> list[tuple[int, tuple[float, float, float]]]:
    """(index into `edges`, the rule) of every text run a vertical rule crosses, in page
    order; each run once, with the first rule found across it."""
    rules = vertical_rules(page)
    if not rules:
        return []
    out = []
    for i, (left, top, right, bottom, *_) in enumerate(edges):
        middle = (top + bottom) / 2
        for rule in rules:
            x, rule_top, rule_bottom = rule
            if (left + TOLERANCE_MM < x < right - TOLERANCE_MM
                    and rule_top <= middle <= rule_bottom):
                out.append((i, rule))
                break
    return out
