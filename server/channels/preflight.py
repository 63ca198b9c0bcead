"""Preflight: a rendered print PDF -> the text that left its box, refused before archiving.

The layouts break long words inside their boxes (CSS `overflow-wrap: anywhere`, Typst
`fit`), but a layout can still go wrong with data nobody tried: a column widened by a
merchant descriptor without spaces pushes the amounts past the paper's edge, and the PDF
looks fine to every program that does not print it (issue 11 item 1). So the print channel
reads back what it rendered, the same way for both engines (pdfium's text runs, as a
reader's program finds them), and refuses the document with `INVALID_ARGUMENT` when

* text stands outside the text area: `[print] text_area_mm` = [x, y, width, height] in mm
  from the paper's top-left corner (the 2.0.0 layouts: the page area's width, 18 mm
  margins, and the height the page furniture uses); a layout that names none (the frozen
  1.0.0 versions) gets the paper less the 5 mm border printers cannot print on;
* the window address leaves the envelope window: `[print] window_mm`, on the first page,
  text starting in the window's column at the window's height must end inside it (a line
  that wrapped below the window would not show through it);
* text is drawn over other text: two runs of text overlapping by more than
  `OVERLAP_MM` (a cell overflowing into its neighbour), their letters, not their combining
  marks (server.channels.preflight_marks);
* text runs across a cell's or box's border: a vertical rule through a run
  (server.channels.preflight_borders: a right-aligned amount grown across its cell's left
  rule into an emptier neighbour meets no other text and stays inside the text area);
* text is cut off by its box: a text object past its clip path (CSS `overflow: hidden`,
  Typst `clip: true`) by more than `TOLERANCE_MM` (server.channels.preflight_clipped: a
  DIN 5008 return line too long for its one line, hidden past the box's foot or edge,
  which no other check sees); the field is named from the texts of that box.

The error names the field when it can (`culprit`): the input string
(`Composition.source_text`) whose longest unbroken word is on the page is what widens a
column or overflows a box, so the field holding the longest such word is named
(`$.transactions[0].description`), looked for in this order: the text that left its box;
the lines such text stands on, on every page (a table row: the cell that widened its column
pushed its own row's neighbours out, and a table sizes its columns for all its pages); the
whole document. Without one, the layout's limit (`print.text_area_mm`, `print.window_mm`).
Text drawn over text by rows pushed down (a box of fixed height grown taller, its runs on
different lines) names instead the input strings broken over lines just above it
(server.channels.preflight_pushed), one violation each: a creditor's long address lines,
not the payment reference in the row they pushed onto the footer. A pushed row can land
with its foot on another's (a window address grown past its field: its country line
"TYSKLAND" on the foot of the heading "Sammendrag" below, both engines), which reads as
one row; so a clash whose runs and row name no input field names those strings too before
the whole document is searched, whose longest word has nothing to do with the clash (it
named the issuer's web address).

Cost: a page is first cleared, if it can be, from its text objects' bounds
(server.channels.preflight_quick: every object inside the text area and the window, none
across a rule or over another), without pdfium's text page, most of the check's cost; only
a page it cannot clear has pdfium's text runs read. Both come from the print checks' one
pass over the PDF (`server.pdfium.read_back`, shared with the mark-zone check); the runs
are plain tuples and only those that show a problem become `Run`s with their text
(load_tests/bench_preflight.py, load_tests/profile_stages.py's `print_checks`). The check
for text cut off by its box asks pdfium for each text object's clip path (+5%,
load_tests/count_print_checks.py).
"""

from __future__ import annotations

import functools
import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from decimal import Decimal, localcontext
from functools import cached_property

import pypdfium2

from server.channels.preflight_borders import crossing_runs
from server.channels.preflight_clipped import cut_off
from server.channels.preflight_marks import (
    comparable,
    letter_edges,
    only_marks_meet,
    partly_held,
)
from server.channels.preflight_pushed import stacked, wrapped_above
from server.channels.preflight_quick import MARGIN_MM, page_is_clear
from server.compose.invoice import line_net_amount
from server.compose.layouts import Layout
from server.compose.model import Composition
from server.errors import FieldViolation, InvalidInput, quote_printed
from server.pdfium import PdfSource, ReadPage, reading

MM_PER_PT = 25.4 / 72
PRINTER_BORDER_MM = 5.0  # what a layout without a text area may not print on
TOLERANCE_MM = 0.5  # glyph bounds vs the box: anti-aliasing and overshoot, not overflow
OVERLAP_MM = 0.5  # runs overlapping by more than this (both ways) are text over text
WINDOW_GRACE_MM = 3.0  # below the window's foot, where a 7th address line would start
MAX_REPORTED = 20  # violations in one refusal: each field and problem once
SHORTEST_CULPRIT = 12  # a word shorter than this does not widen a column of an A4 page


@dataclass(eq=False)
class Run:
    """A run of text on one line, as pdfium finds it; mm from the paper's top-left. Its
    text is read only when asked for (a problem to name): reading every run's text would
    double the check's cost."""

    left: float
    top: float
    right: float
    bottom: float
    textpage: pypdfium2.PdfTextPage = field(repr=False)
    bounds: tuple[float, float, float, float] = field(repr=False)  # pt: left, bottom, right, top

    @cached_property
    def text(self) -> str:
        return self.textpage.get_text_bounded(*self.bounds).strip()

    def overlaps(self, other: Run) -> bool:
        across = min(self.right, other.right) - max(self.left, other.left)
        down = min(self.bottom, other.bottom) - max(self.top, other.top)
        height = min(self.bottom - self.top, other.bottom - other.top)
        return across > OVERLAP_MM and down > height / 2


@dataclass(frozen=True, slots=True)
class Box:
    left: float
    top: float
    width: float
    height: float

    @property
    def right(self) -> float:
        return self.left + self.width

    @property
    def bottom(self) -> float:
        return self.top + self.height

    def outside(self, run: Run) -> str | None:
        """How `run` leaves the box, in words, or None when it is inside: its letters, for a
        run with combining marks (`preflight_marks.letter_edges`)."""
        edges = letter_edges(run)
        if edges is None:
            return None
        left, top, right, bottom = edges
        ways = [
            (self.left - left, "left"), (right - self.right, "right"),
            (self.top - top, "top"), (bottom - self.bottom, "bottom")]
        worst, edge = max(ways)
        return f"{worst:.1f} mm past the {edge} edge" if worst > TOLERANCE_MM else None


# A run as the checks scan it: mm from the paper's top-left (left, top, right, bottom), then
# pt as pdfium gives it (left, bottom, right, top), which reads its text when it is named.
Edges = tuple[float, float, float, float, float, float, float, float]


def page_edges(page: ReadPage) -> list[Edges]:
    """The page's text runs (pdfium `FPDFText_GetRect`), as `Edges`."""
    height = page.height
    return [(left * MM_PER_PT, (height - top) * MM_PER_PT, right * MM_PER_PT,
             (height - bottom) * MM_PER_PT, left, bottom, right, top)
            for left, top, right, bottom in page.text_rects()]


def page_runs(page: ReadPage) -> list[Run]:
    """The page's text runs (pdfium `FPDFText_GetRect`)."""
    return [Run(*run[:4], page.textpage, run[4:]) for run in page_edges(page)]


def text_area(layout: Layout, width_mm: float, height_mm: float) -> Box:
    area = layout.section("print").get("text_area_mm")
    if area:
        return Box(*map(float, area))
    border = PRINTER_BORDER_MM
    return Box(border, border, width_mm - 2 * border, height_mm - 2 * border)


def window(layout: Layout, composition: Composition | None = None) -> Box | None:
    """The address field the window shows: the destination country's when the composer chose
    one (`context.address_field`, mm from the paper's top-left: DIN 5008 form B for DE/AT,
    the ISO DL window for the UK), else the manifest's `[print] window_mm`."""
    field = composition.context.get("address_field") if composition is not None else None
    if isinstance(field, Mapping) and layout.section("print").get("window_mm"):
        return Box(float(field["x"]), float(field["y"]), float(field["width"]),
                   float(field["height"]))
    box = layout.section("print").get("window_mm")
    return Box(*map(float, box)) if box else None


def _longest_word(text: str) -> str:
    return max(re.split(r"[\s\-\u00ad\u2010]+", text), key=len, default="")


def culprit(composition: Composition, texts: Iterable[str],
            around: Sequence[Callable[[], str]] = (),
            numeric: Callable[[str], bool] = lambda path: False) -> str | None:
    """The input field to name, in this order: the one whose longest unbroken word
    (`SHORTEST_CULPRIT` characters at least) is the longest in `texts` (the runs that left
    their box, or the window's, read as one: a word broken over lines shows in pieces); the
    longest input string holding the longest of the runs, or held in them; for runs of
    figures, an outsized input amount or quantity (`_outsized_amount`; `numeric`: whether a
    JSON path is a number by the layout's schema, `Layout.numeric_field`); the one whose
    longest word is the longest in the first text of `around` that holds one (each read
    only when asked for: the lines such runs stand on, then the whole document), since what
    widens a column need not be what it pushes out, but it stands on a row pushed out."""
    texts = [re.sub(r"\s+", "", text) for text in texts]
    joined = "".join(texts)
    seen = comparable(joined)  # letters with combining marks, as the input writes them
    values = [(path, value, comparable(value)) for path, value in
              ((path, re.sub(r"\s+", "", value)) for path, value in composition.source_text)]
    words = [(path, _longest_word(value)) for path, value in composition.source_text]
    words = [(path, word, comparable(word)) for path, word in words
             if len(word) >= SHORTEST_CULPRIT]
    found = ([(len(word), path) for path, word, same in words if same in seen]
             or partly_held(words, seen, SHORTEST_CULPRIT))
    if found:
        return max(found)[1]
    piece = comparable(max(texts, key=len, default=""))
    holding = [(len(value), path) for path, value, same in values if len(same) >= 4
               and ((len(piece) >= 4 and piece in same) or same in seen)]
    if holding:
        return max(holding)[1]
    amount = _outsized_amount(composition, joined, numeric)
    if amount is not None:
        return amount
    for text in around if words else ():
        flat = comparable(re.sub(r"\s+", "", text()))
        found = ([(len(word), path) for path, word, same in words if flat and same in flat]
                 or partly_held(words, flat, SHORTEST_CULPRIT))
        if found:
            return max(found)[1]
    return None


# An amount as the input data carries it (a JSON string with its decimals: "1234.50",
# "-0.04"), at whatever field; digit strings without a decimal point count only at the fields
# the layout's schema declares numbers (`Layout.numeric_field`): elsewhere they are
# references, accounts, phone numbers and ids.
_AMOUNT = re.compile(r"-?(\d+)\.\d+")
_NUMBER = re.compile(r"-?(\d+)(?:\.\d+)?")
OUTSIZED_DIGITS = 9  # 100 000 000 and more: wider than the amount columns were made for
# EN 16931 BT-131: a line's net amount is its quantity (BT-129) x its price (BT-146) / the
# price's base quantity (BT-149, default 1), which the line tables print; so they may
# overflow the line-total column together: (quantity, price, base quantity) field names
_PRODUCTS = (("quantity", "unit_price", "base_quantity"),)


def _integer_digits(value: Decimal) -> int:
    whole = abs(int(value))
    return len(str(whole)) if whole else 1


def _line_net_digits(quantity: Decimal, price: Decimal, base: Decimal | None) -> int:
    """Integer digits of the line net amount (BT-131) the invoice computes and prints
    (`server.compose.invoice.line_net_amount`: quantity x price / base quantity), computed
    exactly: 100 significant digits hold any product of two amounts the schemas admit
    (below 10^15, 32 characters each) divided by a base quantity."""
    with localcontext() as context:
        context.prec = 100
        return _integer_digits(line_net_amount(quantity, price, base_quantity=base))


def _outsized_amount(composition: Composition, text: str,
                     numeric: Callable[[str], bool] = lambda path: False) -> str | None:
    """The input amount to name when the text that left its box is figures (an amount, a
    total, a line sum: formatted, and often computed from the inputs, so no input string
    shows in it): of the input numbers - strings with decimals, and at `numeric` fields
    (the layout's schema's numbers) whole numbers and JSON numbers too - and the products
    of a quantity and its price over the price's base quantity (`_PRODUCTS`: the line net
    amount, EN 16931 BT-131; named by the factor, quantity or price, with more integer
    digits), the one with the most integer digits, if it has at least `OUTSIZED_DIGITS`.
    An ordinary amount pushed out of its column by a long word is left to the lines around
    it."""
    figures = sum(c.isdigit() for c in text)
    if not text or figures * 2 < len(text):
        return None
    amounts: list[tuple[int, str]] = []
    numbers: dict[str, Decimal] = {}
    for path, value in composition.source_text:
        value = value.strip()
        if numeric(path) and (m := _NUMBER.fullmatch(value)):
            numbers[path] = Decimal(value)
        elif not (m := _AMOUNT.fullmatch(value)):
            continue
        amounts.append((len(m.group(1)), path))
    for path, number in composition.source_numbers:  # written as JSON numbers
        if numeric(path) and number.is_finite():
            numbers[path] = number
            amounts.append((_integer_digits(number), path))
    for path, value in numbers.items():
        parent, _, name = path.rpartition(".")
        for factor, other, base in _PRODUCTS:
            price = numbers.get(f"{parent}.{other}") if name == factor else None
            if price is not None:
                net = _line_net_digits(value, price, numbers.get(f"{parent}.{base}"))
                amounts.append((net, max((_integer_digits(value), path),
                                         (_integer_digits(price), f"{parent}.{other}"))[1]))
    widest = max(amounts, default=None)
    return widest[1] if widest is not None and widest[0] >= OUTSIZED_DIGITS else None


@dataclass(frozen=True, slots=True)
class _Problem:
    """One way text left its box on a page: what to say, the runs at fault, the layout's
    limit to name without a field, and (for the text area and text over text, not for the
    window) the text of the whole lines those runs stand on, read when asked for."""

    page: int
    what: str
    runs: list[Run]
    limit: str
    lines: Callable[[], str] | None
    pushed_by: Callable[[], list[str]] | None = None  # rows pushed down: the wrapped values
    stacked: bool = False  # the runs stand on different lines: `pushed_by` is asked first
    texts: tuple[str, ...] | None = None  # what to name a field by, when not the runs' text

    def run_texts(self) -> Iterable[str]:
        return self.texts if self.texts is not None else (r.text for r in self.runs)


def check_pdf(pdf: PdfSource, composition: Composition,
              layout: Layout) -> list[FieldViolation]:
    """Every way the rendered text leaves its box, one violation per page and problem.
    `pdf`: the PDF's bytes, or the pages of a `server.pdfium.read_back` under way."""
    with reading(pdf) as pages:
        found = [problem for page in pages for problem in _page_problems(page, composition,
                                                                         layout)]

        @functools.cache
        def every_problems_lines() -> str:
            # a table sizes its columns for all its pages: what widens one may be pages away,
            # on a row of its own that left the box there (each page's own rows may hold
            # long words that widened nothing)
            return " ".join(p.lines() for p in found if p.lines is not None)

        @functools.cache
        def all_text() -> str:
            return " ".join(page.text for page in pages)

        problems: dict[tuple[str, str], FieldViolation] = {}  # each once, in page order
        for p in found:
            if len(problems) >= MAX_REPORTED:
                break
            pushers = p.pushed_by() if p.pushed_by is not None and p.stacked else []
            field = None
            if not pushers and p.lines is None:  # the window: its runs, the recipient's fields
                field = culprit(_recipient_only(composition), (r.text for r in p.runs))
            elif not pushers:  # the runs, their lines; then what pushed them; then everything
                field = culprit(composition, p.run_texts(), (every_problems_lines,),
                                layout.numeric_field)
                if field is None and p.pushed_by is not None:
                    pushers = p.pushed_by()
                if field is None and not pushers:
                    field = culprit(composition, p.run_texts(), (all_text,),
                                    layout.numeric_field)
            if pushers:
                for path in pushers:
                    why = (f"page {p.page}: {p.what}: the rows above it grew taller than "
                           f"their box with this value broken over lines; shorten it")
                    problems.setdefault((path, why), FieldViolation(path, why))
                continue
            why = f"page {p.page}: {p.what}"
            problems.setdefault((field or p.limit, why), FieldViolation(field or p.limit, why))
        return list(problems.values())[:MAX_REPORTED]


def _recipient_only(composition: Composition) -> Composition:
    """`composition` whose input strings are only those the window address shows (the
    recipient's name and postal address, compared without case and spacing): whose text
    leaves the window is one of them, whatever else holds the same words. The whole
    composition when none is found."""
    def key(text: str) -> str:
        return " ".join(text.split()).casefold()

    recipient = composition.recipient
    address = recipient.address
    shown = {key(recipient.name)} | ({key(line) for line in address.lines}
                                     | {key(address.postal_code), key(address.city)}
                                     if address is not None else set())
    mine = tuple((path, value) for path, value in composition.source_text
                 if key(value) in shown)
    return replace(composition, source_text=mine) if mine else composition


def _page_problems(page: ReadPage, composition: Composition,
                   layout: Layout) -> list[_Problem]:
    area = text_area(layout, page.width * MM_PER_PT, page.height * MM_PER_PT)
    box = window(layout, composition) if page.number == 1 else None
    if page_is_clear(page, _edges_of(area), box and _edges_of(box), TOLERANCE_MM,
                     WINDOW_GRACE_MM, OVERLAP_MM):
        return []  # no run can fail: its text page is never made (preflight_quick)
    edges = page_edges(page)
    runs: dict[int, Run] = {}  # the runs a problem names, made once each (their text)

    def run(i: int) -> Run:
        if i not in runs:
            runs[i] = Run(*edges[i][:4], page.textpage, edges[i][4:])
        return runs[i]

    # (what, runs, limit, whole text?, the texts to name a field by: None for the runs')
    found: list[tuple[str, list[Run], str, bool, tuple[str, ...] | None]] = []
    pushed_by, pushed = None, False
    outside = [(r, how) for r in map(run, _outside(area, edges))
               if (how := area.outside(r)) and r.text]
    if outside:
        first, how = outside[0]
        found.append((f"text runs {how} of the text area ({quote_printed(first.text)})",
                      [r for r, _ in outside], "print.text_area_mm", True, None))
    if box is not None:
        right, foot = box.right, box.bottom + WINDOW_GRACE_MM
        address = [run(i) for i, e in enumerate(edges)
                   if box.left - TOLERANCE_MM <= e[0] < right
                   and box.top - TOLERANCE_MM <= e[1] < foot]
        leaving = [(r, how) for r in address if (how := box.outside(r)) and r.text]
        if leaving:
            first, how = leaving[0]
            found.append((f"the address runs {how} of the envelope window "
                          f"({quote_printed(first.text)})", address, "print.window_mm", False,
                          None))
    crossing = [(r, x) for r, (x, *_) in ((run(i), rule) for i, rule in
                                          crossing_runs(page, edges)) if r.text]
    if crossing:
        first, x = crossing[0]
        found.append((f"text runs across a cell or box border at {x:.1f} mm from the left "
                      f"edge ({quote_printed(first.text)})", [r for r, _ in crossing],
                      "print.text_area_mm", True, None))
    cut = cut_off(page, edges, TOLERANCE_MM, MARGIN_MM)
    if cut:  # text a box hides (server.channels.preflight_clipped)
        what, at, texts = cut
        found.append((what, [run(i) for i in at], "print.text_area_mm", True, texts))
    clash = _first_overlap(edges, run)
    if clash:
        found.append((f"text is drawn over text ({quote_printed(clash[0].text)} and "
                      f"{quote_printed(clash[1].text)})", list(clash), "print.text_area_mm", True,
                      None))
        a, b = clash
        pushed = stacked((a.top, a.bottom), (b.top, b.bottom))
        pushed_by = functools.partial(wrapped_above, page, composition, min(a.top, b.top))
    return [_Problem(page.number, what, bad, limit, functools.partial(
        _line_text, edges, [i for i, r in runs.items() if r in bad], run) if whole else None,
        *((pushed_by, pushed) if what.startswith("text is drawn over text") else (None, False)),
        texts=texts)
        for what, bad, limit, whole, texts in found]


def _edges_of(box: Box) -> tuple[float, float, float, float]:
    """(left, top, right, bottom) of `box`, mm: a `preflight_quick.Bounds`."""
    return box.left, box.top, box.right, box.bottom


def _line_text(edges: Sequence[Edges], at: Sequence[int], run: Callable[[int], Run]) -> str:
    """The text of every run standing on a line with one of the runs `at` (pdfium's runs
    overlapping it by more than half the lower one's height: a table row, a line of a
    paragraph), in page order."""
    spans = [edges[i][1:4:2] for i in at]
    on_line = [i for i, (_, tp, _, bm, *_) in enumerate(edges)
               if any(min(bm, foot) - max(tp, top) > min(bm - tp, foot - top) / 2
                      for top, foot in spans)]
    return " ".join(run(i).text for i in on_line)


def _outside(area: Box, edges: Sequence[Edges]) -> list[int]:
    """The runs some edge of which is past `area` by more than TOLERANCE_MM (the test of
    `Box.outside`, on the edges alone), in page order."""
    left, top, right, bottom = area.left, area.top, area.right, area.bottom
    return [i for i, (lf, tp, rt, bm, *_) in enumerate(edges)
            if left - lf > TOLERANCE_MM or rt - right > TOLERANCE_MM
            or top - tp > TOLERANCE_MM or bm - bottom > TOLERANCE_MM]


def _first_overlap(edges: Sequence[Edges],
                   run: Callable[[int], Run]) -> tuple[Run, Run] | None:
    """The first pair of runs drawn over each other (`Run.overlaps`, both with text), in a
    sweep down the page: each run against the runs starting above its foot."""
    order = sorted(range(len(edges)), key=lambda i: edges[i][1])  # lines meet lines
    count = len(order)
    for n, i in enumerate(order):
        lf, tp, rt, bm = edges[i][:4]
        for m in range(n + 1, count):
            j = order[m]
            lf2, tp2, rt2, bm2 = edges[j][:4]
            if tp2 >= bm:
                break
            # Run.overlaps, inline: this loop meets every pair of runs on a line
            across = (rt if rt < rt2 else rt2) - (lf if lf > lf2 else lf2)
            if across <= OVERLAP_MM:
                continue
            down = (bm if bm < bm2 else bm2) - (tp if tp > tp2 else tp2)
            if down > min(bm - tp, bm2 - tp2) / 2:
                first, other = run(i), run(j)
                if first.text and other.text and \
                        not only_marks_meet(first, other, OVERLAP_MM):
                    return first, other
    return None


def refuse_overflow(pdf: PdfSource, composition: Composition, layout: Layout) -> None:
    """`InvalidInput` when the rendered text leaves its box (see the module docstring).
    `pdf`: the PDF's bytes, or the pages of a `server.pdfium.read_back` under way."""
    problems = check_pdf(pdf, composition, layout)
    if problems:
        raise InvalidInput("the print page cannot hold this document's text", problems)
