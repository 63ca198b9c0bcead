"""Combining marks in the print preflight: pdfium's characters -> letters and their marks.

A letter with combining marks (Unicode general category Mn, Me: U+0336 COMBINING LONG
STROKE OVERLAY in "No̶rdmann", U+0334/U+0335 overlays, the stacked accents of an NFD
"Nguyễn", Zalgo-like piles) is one grapheme cluster on paper (UAX #29: a base and its
extending marks), but pdfium reads it in pieces, and each engine's pieces differ:

* Typst labels every glyph of a cluster with the whole cluster (one ToUnicode/ActualText
  per cluster), so "o̶" drawn as a letter and an overlay reads as "o̶o̶": the second "o" is
  the overlay's glyph, and its box lies over the first "o" (test_preflight_marks.py);
* an overlay's box reaches into the neighbouring letters, so pdfium cuts the word into
  runs that overlap, and the text bounded by such a run holds its neighbours' letters
  again (WeasyPrint: "No̶rdmann" reads as "No̶", "o̶r", "̶rdmann");
* a mark's box is not always where it is drawn (Typst boxes a zero-width mark as if it
  stood after its letter).

So the preflight's checks look at clusters: `only_marks_meet` asks whether two overlapping
runs meet only through the marks of clusters (their letters apart), `letter_edges` is what
a run with marks keeps inside its box, and `comparable` (with `partly_held`) is the text a
run and an input string are compared by to name the culprit field
(`server.channels.preflight.culprit`).
"""

from __future__ import annotations

import ctypes
import unicodedata
import weakref
from collections.abc import Iterable
from difflib import SequenceMatcher
from typing import TYPE_CHECKING

import pypdfium2
import pypdfium2.raw as pdfium_c

if TYPE_CHECKING:
    from server.channels.preflight import Run

MARKS = frozenset(("Mn", "Me"))  # Unicode general categories drawn on a letter, not beside it
MM_PER_PT = 25.4 / 72


def is_mark(char: str) -> bool:
    """Whether `char` (one code point) is a combining mark (category Mn or Me)."""
    return unicodedata.category(char) in MARKS


def has_marks(text: str) -> bool:
    return any(unicodedata.category(char) in MARKS for char in text)


def clusters(text: str) -> list[str]:
    """`text` cut into clusters: each character with the combining marks after it (UAX #29
    grapheme clusters as far as marks go: no Hangul, emoji or prepend rules). Marks before
    any character (a run starting inside a cluster) make a cluster of their own."""
    found: list[str] = []
    for char in text:
        if found and is_mark(char):
            found[-1] += char
        else:
            found.append(char)
    return found


def comparable(text: str) -> str:
    """`text` as a run and an input string are compared (`culprit`): decomposed (NFD), each
    cluster by its first character, marks alone left out, and a letter read twice in a row
    where one of the two carries marks read once (pdfium reads a marked letter once per
    glyph of its cluster, or once more in the run an overlay's box reaches: see the module
    docstring). Text without marks is only decomposed and stripped of accents; apply it to
    both sides of a comparison."""
    letters: list[str] = []
    before, marked = "", False
    for cluster in clusters(unicodedata.normalize("NFD", text)):
        base, carries = cluster[0], len(cluster) > 1
        if is_mark(base):
            marked = True  # a mark alone: its letter was read in the run before
            continue
        if base != before or not (carries or marked):
            letters.append(base)
        before, marked = base, carries
    return "".join(letters)


def partly_held(words: Iterable[tuple[str, str, str]], seen: str,
                least: int) -> list[tuple[int, str]]:
    """(letters, path) of the `words` (path, word, its `comparable`) with combining marks
    (decomposed: accented letters too) that share at least `least` letters in a row with
    `seen` (`comparable` text of runs): pdfium's text of a word with marks can lack letters
    or hold others (the runs of its overflow hold the neighbour's first figures; WeasyPrint
    maps the glyph of a letter with stacked marks to an unrelated character), so such a
    word is found by most of it. Words without marks are found whole or not at all."""
    found = []
    for path, word, same in words:
        if has_marks(unicodedata.normalize("NFD", word)):
            match = SequenceMatcher(None, same, seen, autojunk=False).find_longest_match(
                0, len(same), 0, len(seen))
            if match.size >= least:
                found.append((match.size, path))
    return found


# A cluster as pdfium's characters draw it: its number in the page's character order (spaces
# count, so neighbours differ by 1), the x of its letter's origin on the baseline, and the
# box of its letter's glyph (pt: left, bottom, right, top); the boxes of its marks are left out
Letter = tuple[int, float, float, float, float, float]


def page_letters(textpage: pypdfium2.PdfTextPage,
                 within: tuple[float, float, float, float]) -> list[Letter]:
    """The letters of the page's clusters (`clusters`, whitespace left out) whose boxes meet
    `within` (pt: left, bottom, right, top). A cluster with marks read again at once is one
    cluster: Typst gives each glyph of a cluster the cluster's text, so the copies are its
    marks' glyphs (a struck letter written twice in a row is read as one: they are
    neighbours all the same). The page is read once (`_letters`)."""
    left, bottom, right, top = within
    return [letter for letter in _letters(textpage)
            if letter[2] < right and letter[4] > left and letter[3] < top
            and letter[5] > bottom]


_READ: weakref.WeakKeyDictionary[pypdfium2.PdfTextPage, list[Letter]] = \
    weakref.WeakKeyDictionary()  # a page's letters, while its text page lives


def _letters(textpage: pypdfium2.PdfTextPage) -> list[Letter]:
    """Every letter of the page (`page_letters`), read once per text page: a name struck
    through letter by letter asks for them at every letter (a page holds ~2,000
    characters)."""
    letters = _READ.get(textpage)
    if letters is not None:
        return letters
    read: list[tuple[str, int]] = []  # (cluster, index of its first character)
    for index in range(textpage.count_chars()):
        char = textpage.get_text_range(index, 1)
        if not char:
            continue
        if read and is_mark(char[0]):
            text, first = read[-1]
            read[-1] = (text + char, first)
        else:
            read.append((char, index))
    letters = []
    x, y = ctypes.c_double(), ctypes.c_double()
    number, before = -1, ""
    for text, index in read:
        if len(text) > 1 and text == before:
            continue
        number, before = number + 1, text
        if text.strip():
            pdfium_c.FPDFText_GetCharOrigin(textpage.raw, index, x, y)
            letters.append((number, x.value, *textpage.get_charbox(index)))
    _READ[textpage] = letters
    return letters


def only_marks_meet(first: Run, other: Run, overlap_mm: float) -> bool:
    """Whether two overlapping runs (`Run.overlaps`) meet only through combining marks: no
    two letters near them (`page_letters`: a cluster's base glyph, its marks' glyphs left
    out) overlap by the test of `Run.overlaps` (more than `overlap_mm` across, more than half
    the lower one's height down), save a kerned pair (`_kerned`). Asked only of runs
    holding a mark, so text without marks is checked run by run as before; a mark meeting
    other text is not text over text (an overlay is drawn back over its letter, its box
    reaching into the runs around it)."""
    if not has_marks(first.text + other.text):
        return False
    bounds = (first.bounds, other.bounds)
    within = (min(b[0] for b in bounds), min(b[1] for b in bounds),
              max(b[2] for b in bounds), max(b[3] for b in bounds))
    letters = page_letters(first.textpage, within)
    overlap = overlap_mm / MM_PER_PT
    for n, (i, x, lf, bm, rt, tp) in enumerate(letters):
        for j, x2, lf2, bm2, rt2, tp2 in letters[n + 1:]:
            if min(rt, rt2) - max(lf, lf2) > overlap and \
                    min(tp, tp2) - max(bm, bm2) > min(tp - bm, tp2 - bm2) / 2 and \
                    not (abs(i - j) == 1 and _kerned((x, rt), (x2, rt2), overlap)):
                return False
    return True


def _kerned(one: tuple[float, float], other: tuple[float, float], overlap: float) -> bool:
    """Whether two neighbouring letters ((origin x, box right) in pt) whose boxes overlap
    are a kerned pair (T and j, W and i: a glyph reaching under its neighbour), not a
    cell's last letter and the next cell's first drawn over it: the right one's origin
    (left to right, or right to left) stands no more than `overlap` inside the left one's
    box, where the text's advance put it. Neither pdfium's runs nor its text objects tell
    them apart: a run joins the two cells, and the engines start a text object at a mark
    (Typst, WeasyPrint), so a kerned pair around one stands in two."""
    (_, left_right), (right_x, _) = sorted((one, other))
    return right_x >= left_right - overlap

def letter_edges(run: Run) -> tuple[float, float, float, float] | None:
    """The edges `run`'s text keeps to, mm from the paper's top-left (left, top, right,
    bottom): the run's own, or for a run holding combining marks its letters' (the
    `page_letters` whose centres lie in the run), marks left out: an overlay reaches past
    its letter (U+0336 after the last letter of a right-aligned line, 1 mm past it), and a
    mark's box need not be where it is drawn. None for a run of marks alone (a piece of a
    cluster whose letter is in another run)."""
    if not has_marks(run.text):
        return run.left, run.top, run.right, run.bottom
    left, bottom, right, top = run.bounds
    letters = [box for _, _, *box in page_letters(run.textpage, run.bounds)
               if left <= (box[0] + box[2]) / 2 <= right
               and bottom <= (box[1] + box[3]) / 2 <= top]
    if not letters:
        return None
    # pt (y up) -> mm from the top-left, by the run's own edges: x scales, y from its top
    return (min(b[0] for b in letters) * MM_PER_PT,
            run.top + (top - max(b[3] for b in letters)) * MM_PER_PT,
            max(b[2] for b in letters) * MM_PER_PT,
            run.top + (top - min(b[1] for b in letters)) * MM_PER_PT)
