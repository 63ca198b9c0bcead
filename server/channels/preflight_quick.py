"""Preflight's quick pass: a page's text objects' bounds -> whether no text run can fail.

The preflight (`server.channels.preflight`) tests pdfium's text runs (`FPDFText_GetRect`),
and pdfium must build a text page (`FPDFText_LoadPage`: every character placed, spaces and
line breaks guessed) before it can give one: most of the check's cost, spent on pages that
are nearly all clear (issue 14). The page's text objects (`FPDF_PAGEOBJ_TEXT`, one per
show-text operator) come without it, with their bounds (`FPDFPageObj_GetBounds`), from the
object list the print checks read anyway (`ReadPage.objects`, shared with the mark-zone
check and the cell borders). This pass clears a page from those bounds alone; a page it
cannot clear goes to the run-by-run check, which then finds the same problems as before.

Why it is safe: pdfium makes a run of the consecutive characters of one text object
(`CPDF_TextPage::GetRectArray`: a new run where the object changes), each character's box
being its glyph's bounding box from the font (`CPDF_Font::GetCharBBox`), the same boxes an
object's bounds are the union of (`CPDF_TextObject::CalcPositionData`). So every run lies
inside the bounds of its object, grown by `MARGIN_MM` for the float rounding of the two
computations (tests/unit/test_preflight_quick.py holds it for every glyph of every sample
layout, both engines), and each rule below is the run-by-run test widened from a run to
the box holding it: when no object box fails it, no run can. Two runs meeting are two
objects meeting, unless one object draws glyphs back over its own (its run split by
right-to-left reordering), which no layout's text does. A page holding a form XObject is
not cleared: its text is inside the form, which `ReadPage.objects` gives as one object.

Known difference (a space has no ink): pdfium gives a space with an empty glyph box a box as
wide as its advance, which may reach past the object's last glyph. A trailing space past
the text area's edge (or the window's) made the run-by-run check name its run; now the page
is cleared when the glyphs themselves are inside, and nothing visible left the box.

Units: bounds in mm from the paper's top-left corner (left, top, right, bottom), converted
from pdfium's pt with y up; the tolerances are the preflight's, in mm.
"""

from __future__ import annotations

from collections.abc import Sequence
from operator import itemgetter

import pypdfium2

from server.channels.preflight_borders import MM_PER_PT, vertical_rule
from server.channels.preflight_borders import TOLERANCE_MM as RULE_TOLERANCE_MM
from server.channels.preflight_clipped import clip_mm, object_bounds, past_clip
from server.pdfium import ReadPage

MARGIN_MM = 0.1  # object bounds vs its glyphs' boxes: float rounding of pdfium's two sums

# (left, top, right, bottom) in mm from the paper's top-left corner
Bounds = tuple[float, float, float, float]

_TEXT = pypdfium2.raw.FPDF_PAGEOBJ_TEXT
_FORM = pypdfium2.raw.FPDF_PAGEOBJ_FORM
_PATH = pypdfium2.raw.FPDF_PAGEOBJ_PATH
_BY_TOP = itemgetter(1)


def text_object_bounds(page: ReadPage) -> list[Bounds] | None:
    """The bounds of each top-level text object of `page` (`FPDF_PAGEOBJ_TEXT`), grown by
    `MARGIN_MM` on every side, in content order; None when the page holds a form XObject
    (`FPDF_PAGEOBJ_FORM`: its text is not among the page's top-level objects)."""
    height = page.height
    found = []
    for (_, left, bottom, right, top), what in zip(page.objects(), page.kinds(), strict=True):
        if what == _TEXT:
            found.append((left * MM_PER_PT - MARGIN_MM, (height - top) * MM_PER_PT - MARGIN_MM,
                          right * MM_PER_PT + MARGIN_MM,
                          (height - bottom) * MM_PER_PT + MARGIN_MM))
        elif what == _FORM:
            return None
    return found


def page_is_clear(page: ReadPage, area: Bounds, window: Bounds | None, tolerance: float,
                  grace: float, overlap: float) -> bool:
    """Whether no text run of `page` can fail the preflight, judged from its text objects'
    bounds (`text_object_bounds`) without building its text page: every object inside
    `area` within `tolerance` (`_inside`); none that may hold an address line of `window`
    (None: no window on this page) reaching out of it (`grace`: how far below its foot a
    line still belongs to the address; `_may_leave_window`); none a vertical rule crosses
    (`_may_cross_rule`); no two overlapping by more than `overlap` across
    (`_may_overlap`); none standing past its clip path (`_may_be_cut`: text a box cut
    off, server.channels.preflight_clipped). All in mm from the paper's top-left corner.
    False when it cannot tell (a form XObject on the page).

    One walk over the page's objects finds the text objects' boxes, tests each against
    the area as it goes (a box outside ends the walk: the page goes to the run-by-run
    check) and collects the vertical rules (`preflight_borders.vertical_rule`), the same
    boxes and rules, computed the same way, as `text_object_bounds` and
    `preflight_borders.vertical_rules` give (tests/unit/test_preflight_quick.py holds
    that it answers as those rules do on every page of the samples and of refused
    documents)."""
    height = page.height
    left_limit, top_limit = area[0] - tolerance, area[1] - tolerance
    right_limit, bottom_limit = area[2] + tolerance, area[3] + tolerance
    boxes: list[Bounds] = []
    rules: list[tuple[float, float, float]] = []
    for (_, left, bottom, right, top), what in zip(page.objects(), page.kinds(), strict=True):
        if what == _TEXT:
            lf, tp = left * MM_PER_PT - MARGIN_MM, (height - top) * MM_PER_PT - MARGIN_MM
            rt, bm = right * MM_PER_PT + MARGIN_MM, (height - bottom) * MM_PER_PT + MARGIN_MM
            if not (lf >= left_limit and tp >= top_limit and rt <= right_limit
                    and bm <= bottom_limit):
                return False  # outside the area (`_inside`)
            boxes.append((lf, tp, rt, bm))
        elif what == _PATH:
            rule = vertical_rule(left, bottom, right, top, height)
            if rule is not None:
                rules.append(rule)
        elif what == _FORM:
            return False
    if not boxes:
        return True
    if any(_may_be_cut(page, index, tolerance) for index in page.clipped_text()):
        return False  # past its clip (`preflight_clipped.cut_text`)
    return (not (window is not None and _may_leave_window(boxes, window, tolerance, grace))
            and not (rules and _may_cross_rule(boxes, rules))
            and not _may_overlap(boxes, overlap))


def _may_be_cut(page: ReadPage, index: int, tolerance: float) -> bool:
    """Whether the text object `index` of `page.objects()`, one with a clip path
    (`ReadPage.clipped_text`), stands past the clip by more than `tolerance` mm:
    `preflight_clipped.cut_text`'s test of one object."""
    obj, *bounds = page.objects()[index]
    clip = clip_mm(page, obj)
    return clip is not None and past_clip(object_bounds(page, *bounds), clip,
                                          tolerance) is not None


def _inside(boxes: Sequence[Bounds], area: Bounds, tolerance: float) -> bool:
    """Every box inside `area` grown by `tolerance` (`preflight.Box.outside` of a run: no
    edge past the area's by more than the tolerance; a run lies inside its object's box)."""
    left, top = area[0] - tolerance, area[1] - tolerance
    right, bottom = area[2] + tolerance, area[3] + tolerance
    return all(lf >= left and tp >= top and rt <= right and bm <= bottom
               for lf, tp, rt, bm in boxes)


def _may_leave_window(boxes: Sequence[Bounds], window: Bounds, tolerance: float,
                      grace: float) -> bool:
    """Whether a box may hold an address line that leaves `window`: the preflight takes a
    run for the address when its top-left corner stands in the window's column and between
    its top and `grace` below its foot (less `tolerance` at the left and the top), and
    names it when it is not inside the window within `tolerance`. A run's top-left corner
    lies in its object's box, so a box meeting that region and not inside the window may."""
    left, top, right, bottom = window
    foot = bottom + grace
    for lf, tp, rt, bm in boxes:
        if (lf < right and rt >= left - tolerance and tp < foot and bm >= top - tolerance
                and (lf < left - tolerance or tp < top - tolerance
                     or rt > right + tolerance or bm > bottom + tolerance)):
            return True
    return False


def _may_cross_rule(boxes: Sequence[Bounds],
                    rules: Sequence[tuple[float, float, float]]) -> bool:
    """Whether one of `rules` ((x, top, bottom) mm: `preflight_borders.vertical_rules`) may
    cross a run in a box, as `preflight_borders.crossing_runs` tests a run: it stands inside
    the box's width by more than the borders' tolerance on both sides and its height meets
    the box's (a run's middle lies within its box's height)."""
    slack = RULE_TOLERANCE_MM
    for lf, tp, rt, bm in boxes:
        for x, rule_top, rule_bottom in rules:
            if lf + slack < x < rt - slack and rule_top <= bm and rule_bottom >= tp:
                return True
    return False


def _may_overlap(boxes: Sequence[Bounds], overlap: float) -> bool:
    """Whether two boxes overlap by more than `overlap` across and by anything down (two
    runs drawn over each other overlap by more than that across and by half the lower's
    height down, and so do the boxes holding them): in a sweep down the page (the boxes
    sorted by top), a box and a later one starting above its foot, overlapping across.

    The sweep goes by clusters: the boxes in top order, each joining the cluster before it
    while it starts above the lowest foot there (a line of a table: its cells, and what
    reaches into it), so boxes of different clusters never meet down; within a cluster the
    boxes are taken left to right, each against the next ones until one starts at or past
    its right edge (none after it can overlap it across by more than `overlap` >= 0): a
    line's cells side by side are compared with their neighbour, not with every cell of
    the line. A pair overlapping across is then tested down as the sweep tests it.
    (tests/unit/test_preflight_quick.py holds it answers as the plain sweep, `overlap`
    < 0 still takes, on every page of the samples and on random boxes.)"""
    order = sorted(boxes, key=_BY_TOP)
    if overlap < 0:
        return _may_overlap_sweep(order, overlap)
    cluster: list[tuple[float, float, float, float, int]] = []
    foot = float("-inf")
    for rank, (lf, tp, rt, bm) in enumerate(order):
        if tp >= foot:  # at or below every foot so far: a new cluster
            if len(cluster) > 1 and _overlap_in(cluster, overlap):
                return True
            cluster = []
            foot = bm
        elif bm > foot:
            foot = bm
        cluster.append((lf, tp, rt, bm, rank))
    return len(cluster) > 1 and _overlap_in(cluster, overlap)


def _overlap_in(cluster: list[tuple[float, float, float, float, int]], overlap: float) -> bool:
    """`_may_overlap` within one cluster of (left, top, right, bottom, rank in top order)."""
    cluster.sort()  # by left
    count = len(cluster)
    for n in range(count):
        lf, tp, rt, bm, rank = cluster[n]
        for m in range(n + 1, count):
            lf2, tp2, rt2, bm2, rank2 = cluster[m]
            if lf2 >= rt:
                break  # and so are the ones after it: none overlaps this one across
            if ((rt if rt < rt2 else rt2) - (lf if lf > lf2 else lf2) > overlap
                    and (tp2 < bm if rank < rank2 else tp < bm2)):
                return True
    return False


def _may_overlap_sweep(order: Sequence[Bounds], overlap: float) -> bool:
    """`_may_overlap` box by box down the page: `order` sorted by top, each box against
    the boxes starting above its foot."""
    count = len(order)
    for n in range(count):
        lf, _, rt, bm = order[n]
        for m in range(n + 1, count):
            lf2, tp2, rt2, _ = order[m]
            if tp2 >= bm:
                break
            if (rt if rt < rt2 else rt2) - (lf if lf > lf2 else lf2) > overlap:
                return True
    return False
