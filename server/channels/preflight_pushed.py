"""Preflight attribution for rows pushed down: text drawn over text because a box of fixed
height (the giro slip, a facts box) grew taller than it is, so its lower rows land on
what stands below it (the slip's account row on the page footer).

Neither run of such a clash is at fault: the reference or the account number in the
pushed row fits its own cell. What pushed it is above it: input values broken over more
lines than the box was made for (a creditor's three 70-character address lines and a long
city, each wrapped in the slip's half-width payee column). So for a clash whose two runs
stand on different lines (`stacked`: neither their tops nor their feet line up, as a cell
running into its neighbour's on the same row would), the fields named are the input strings
(`Composition.source_text`) that the page prints broken over lines, in the block of such
values nearest above the clash (each at most `BLOCK_GAP_MM` from the next), in page order.
The same value printed whole elsewhere (the sender block in the masthead) does not count.
A pushed row can also land with its foot on another's foot (a window address's country line
on the heading below it), which `stacked` cannot tell from one row: for such a clash the
preflight asks here when neither run nor their row holds an input string
(server.channels.preflight), before it searches the whole document.

The page's text as pdfium reads it (`FPDFText_GetText`, content order: a cell's lines stay
together across their line breaks) finds each place a value is printed; the boxes of its
first and last characters tell whether it was broken over lines, and where it stands.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

from server.compose.model import Composition
from server.pdfium import ReadPage

MM_PER_PT = 25.4 / 72
ALIGNED_MM = 0.5  # tops (or feet) closer than this: the two runs stand on one row
BLOCK_GAP_MM = 5.0  # wrapped values further apart than this are not one block of rows
SHORTEST_VALUE = 4  # characters (without spaces): shorter values say nothing of a page
_SPACE = re.compile(r"[\s\u00ad\x02]+")


def stacked(first: tuple[float, float], other: tuple[float, float]) -> bool:
    """Whether two overlapping runs, (top, bottom) in mm each, stand on different lines:
    a row pushed onto another, not text running into its neighbour on its own row (whose
    runs share their top, or their foot, as a table row aligns its cells)."""
    return (abs(first[0] - other[0]) > ALIGNED_MM
            and abs(first[1] - other[1]) > ALIGNED_MM)


def wrapped_above(page: ReadPage, composition: Composition, top: float) -> list[str]:
    """The JSON paths of the input strings printed broken over lines that end above `top`
    (mm from the paper's top), in the block of them nearest above it, in page order; empty
    when there is none."""
    text = page.text
    if len(text) != page.textpage.count_chars():  # UTF-16 pairs: one text unit per char
        text = "".join(page.textpage.get_text_range(i, 1)[:1]
                       for i in range(page.textpage.count_chars()))
    index = [i for i, char in enumerate(text) if not _SPACE.fullmatch(char)]
    flat = "".join(text[i] for i in index)
    found: list[tuple[float, float, str]] = []  # (top, bottom) mm, path
    for path, value in composition.source_text:
        wanted = _SPACE.sub("", value)
        if len(wanted) < SHORTEST_VALUE:
            continue  # too short to tell
        at = flat.find(wanted)
        while at >= 0:  # each time the page prints it: broken over lines above the clash?
            span = _span(page, index[at], index[at + len(wanted) - 1])
            if span is not None and span[1] <= top + ALIGNED_MM:
                found.append((*span, path))
            at = flat.find(wanted, at + len(wanted))  # each printing once, not overlapping
    return list(dict.fromkeys(_nearest_block(found)))


def _span(page: ReadPage, first: int, last: int) -> tuple[float, float] | None:
    """(top, bottom) in mm of the characters `first`..`last`, or None when they stand on
    one line (a value pdfium splits for another reason than a line break)."""
    boxes = [page.textpage.get_charbox(i) for i in (first, last)]
    (_, bottom_1, _, top_1), (_, bottom_2, _, top_2) = boxes
    if bottom_2 >= bottom_1 - ALIGNED_MM / MM_PER_PT:  # the last is not on a lower line
        return None
    return (page.height - max(top_1, top_2)) * MM_PER_PT, \
        (page.height - min(bottom_1, bottom_2)) * MM_PER_PT


def _nearest_block(found: Sequence[tuple[float, float, str]]) -> list[str]:
    """From the lowest of `found` up, each value at most BLOCK_GAP_MM above the block."""
    block: list[tuple[float, float, str]] = []
    for value in sorted(found, key=lambda f: -f[1]):
        if block and value[1] < min(f[0] for f in block) - BLOCK_GAP_MM:
            break
        block.append(value)
    return [path for _, _, path in sorted(block)]
