"""Preflight: text cut off by its box (a clip) -> what is hidden, and where, in mm.

A box that hides what overflows it (CSS `overflow: hidden`, Typst `block(clip: true)`)
prints part of a value and drops the rest, and the PDF still holds the hidden text: every
program that reads the PDF's text finds it whole, the paper does not show it. QA on the
b2b invoice 2.7.0 (de-DE, a seller's name of 70 characters): the one-line return address
above the DIN 5008 address zone is such a box. Typst wrapped it and its second line
("Nbg · Postfach 11 02 40 · 10832 Berlin") lay under the box's foot, hidden, on the
recipient's name; WeasyPrint kept one line running to 141 mm, cut at the box's right edge
(105 mm). The other checks did not see it: the hidden text stays in the text area, starts
above the window (the return line is not the address), and its glyphs' boxes meet the
text below by less than half a line (`preflight.Run.overlaps`: lines touching, not text
over text). The sender's postal address was gone from the return line either way.

So a text object (`FPDF_PAGEOBJ_TEXT`) whose bounds stand past its clip path's by more than
the preflight's tolerance is refused. pdfium keeps a clip only where it may cut: it drops,
when it loads the page, a single clip rectangle that holds the whole object, so an object
of an ordinary page has none (`ReadPage.clipped_text`, two calls per text object, is the
cost on a page that fits) and only a clipped object's clip path is read (`ReadPage.clip_bounds`:
the intersection of its paths' bounding boxes).

Units: mm from the paper's top-left corner (left, top, right, bottom), as the preflight's.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import pypdfium2

from server.errors import quote_printed
from server.pdfium import Handle, ReadPage

MM_PER_PT = 25.4 / 72
_TEXT = pypdfium2.raw.FPDF_PAGEOBJ_TEXT

# (left, top, right, bottom) in mm from the paper's top-left corner
Bounds = tuple[float, float, float, float]


@dataclass(frozen=True, slots=True)
class Cut:
    """A text object drawn past its clip: its index in `ReadPage.objects`, its bounds, the
    clip's bounds (mm), and how far past which edge (`how`: "2.6 mm past the bottom edge")."""

    index: int
    bounds: Bounds
    clip: Bounds
    how: str


def clip_mm(page: ReadPage, obj: Handle) -> Bounds | None:
    """The region `obj`'s clip path lets through, mm from the paper's top-left; None when
    pdfium holds no clip for it."""
    box = page.clip_bounds(obj)
    if box is None:
        return None
    left, bottom, right, top = box
    height = page.height
    return (left * MM_PER_PT, (height - top) * MM_PER_PT, right * MM_PER_PT,
            (height - bottom) * MM_PER_PT)


def past_clip(bounds: Bounds, clip: Bounds, tolerance: float) -> str | None:
    """How `bounds` stands past `clip` (both mm), in words, when by more than `tolerance`:
    the edge it passes furthest; None when it is inside."""
    ways = [(clip[0] - bounds[0], "left"), (clip[1] - bounds[1], "top"),
            (bounds[2] - clip[2], "right"), (bounds[3] - clip[3], "bottom")]
    worst, edge = max(ways)
    return f"{worst:.1f} mm past the {edge} edge" if worst > tolerance else None


def object_bounds(page: ReadPage, left: float, bottom: float, right: float,
                  top: float) -> Bounds:
    """An object's bounds (pt, y up, as `ReadPage.objects` gives them) in mm from the
    paper's top-left."""
    height = page.height
    return (left * MM_PER_PT, (height - top) * MM_PER_PT, right * MM_PER_PT,
            (height - bottom) * MM_PER_PT)


def cut_text(page: ReadPage, tolerance: float) -> list[Cut]:
    """Every text object of `page` standing past its clip by more than `tolerance` mm, in
    content order (a form XObject counts as one object and is not looked into)."""
    found = []
    objects = page.objects()
    for index in page.clipped_text():
        obj, left, bottom, right, top = objects[index]
        clip = clip_mm(page, obj)
        if clip is None:
            continue
        bounds = object_bounds(page, left, bottom, right, top)
        how = past_clip(bounds, clip, tolerance)
        if how is not None:
            found.append(Cut(index, bounds, clip, how))
    return found


def box_texts(page: ReadPage, clip: Bounds, tolerance: float) -> list[str]:
    """The text of every text object of `page` inside `clip` (within `tolerance` mm) or
    clipped by it (the same clip region): what the box was made to hold, in content order,
    each object's own text (`ReadPage.object_text`), not the lines around it."""
    texts = []
    clipped = set(page.clipped_text())
    for index, ((obj, left, bottom, right, top), kind) in enumerate(
            zip(page.objects(), page.kinds(), strict=True)):
        if kind != _TEXT:
            continue
        bounds = object_bounds(page, left, bottom, right, top)
        inside = past_clip(bounds, clip, tolerance) is None
        if inside or (index in clipped and _same(clip_mm(page, obj), clip)):
            texts.append(page.object_text(obj))
    return [text for text in texts if text.strip()]


def _same(clip: Bounds | None, other: Bounds, slack: float = 0.01) -> bool:
    return clip is not None and all(abs(a - b) <= slack for a, b in zip(clip, other,
                                                                        strict=True))


def cut_off(page: ReadPage, edges: Sequence[Sequence[float]], tolerance: float,
            margin: float) -> tuple[str, list[int], tuple[str, ...]] | None:
    """The preflight's problem for text `page`'s boxes cut off (`cut_text`), or None: what
    to say (the first such box, mm, the text it cuts and how far past which edge), the
    indexes of the runs in `edges` (`preflight.Edges`) inside the cut objects (grown by
    `margin`), and the texts of that box (`box_texts`) to name a field by."""
    cut = cut_text(page, tolerance)
    if not cut:
        return None
    first = cut[0]
    left, top, right, bottom = first.clip
    hidden = page.object_text(page.objects()[first.index][0])
    what = (f"text is cut off by its box (x {left:.1f}-{right:.1f} mm, y {top:.1f}-"
            f"{bottom:.1f} mm from the paper's top-left corner): {quote_printed(hidden)} "
            f"reaches {first.how}, and what is past it does not print")
    at = [i for i, run in enumerate(edges) if any(inside(c.bounds, run, margin) for c in cut)]
    return what, at, tuple(box_texts(page, first.clip, tolerance))


def inside(bounds: Bounds, edges: Sequence[float], margin: float) -> bool:
    """Whether a run's `edges` (mm, left, top, right, bottom first) lie in `bounds` grown by
    `margin` (a run lies inside its text object: preflight_quick)."""
    return (bounds[0] - margin <= edges[0] and bounds[1] - margin <= edges[1]
            and edges[2] <= bounds[2] + margin and edges[3] <= bounds[3] + margin)
