"""Print zones at render time: a rendered print PDF -> the data that runs into a mark zone.

A layout's print area is checked against every print profile's OMR and DataMatrix zones
when it loads (`server.compose.layouts`), but data can still push ink out of its box: a
long URL or merchant descriptor without break points runs past the right margin, straight
into the right-edge OMR column and DataMatrix of a Pitney Bowes line. The imposer would
paint the zone white and the words would silently vanish from the printed sheet while the
archived copy still shows them. So the print renderer reads every page of the PDF it made
(pdfium, independent of the engine that made it), finds any page object whose bounds
reach a zone, and refuses the document with `INVALID_ARGUMENT` naming the data field that
holds the text it found there (the Composition's context path, `$.letter.paragraphs[2]`).

Every page is checked against every zone: a simplex line marks every page, and which page
becomes a sheet front on a duplex line depends on the sheet plan.

Cost: the pages come from the print checks' one pass (`server.pdfium.read_back`, shared with
the text-area preflight); each page object's bounds are one pdfium call, and an object
inside the band between the zones on the left and those on the right (every builtin
profile's) reaches none, so only the rest are tested zone by zone.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import pypdfium2

from server.compose.model import Composition
from server.errors import FieldViolation, InvalidInput, quote_printed
from server.pdfium import PdfSource, ReadPage, reading
from server.printing.zones import MarkZone

MM_PER_PT = 25.4 / 72
_SPACE = re.compile(r"[\s\u00a0\u202f\u2009\u00ad]+")


@dataclass(frozen=True, slots=True)
class Intrusion:
    """Something on page `page` (1-based) reaching `zone`; `text` is the text of the
    reaching object (a line run), empty for a drawing or an image."""

    page: int
    zone: MarkZone
    text: str  # for a drawing: the document's longest word, which widened its table
    in_zone: str  # the part of the text inside the zone (a text object's)


def find_intrusions(pdf: PdfSource, zones: Sequence[MarkZone]) -> list[Intrusion]:
    """Every page object of `pdf` (top level: a form XObject counts as one object) whose
    bounds overlap one of `zones`, at most one per page and zone. A text object brings its
    text; a drawing (a table rule or cell background pushed out by a wide column) brings
    the document's longest word, the usual culprit, so the error can still name a field.
    `pdf`: the PDF's bytes, or the pages of a `server.pdfium.read_back` under way."""
    if not zones:
        return []
    found: list[Intrusion] = []
    longest = ""
    rects = [(zone, zone.rect.x, zone.rect.right, zone.rect.y, zone.rect.bottom)
             for zone in zones]
    band_left, band_right = _free_band(rects)
    with reading(pdf) as pages:
        for page in pages:
            height = page.height
            seen: set[MarkZone] = set()
            objects = zip(page.objects(), page.kinds(), strict=True)
            for (_, left, bottom, right, top), kind in objects:
                # the mm box `Rect.intersects` tested, computed the same way
                x = left * MM_PER_PT
                x_right = x + (right - left) * MM_PER_PT
                if x >= band_left and x_right <= band_right:
                    continue  # between the zones: reaches none (see _free_band)
                y = (height - top) * MM_PER_PT
                y_bottom = y + (top - bottom) * MM_PER_PT
                for zone, zx, z_right, zy, z_bottom in rects:
                    if zone in seen or not (x < z_right and zx < x_right
                                            and y < z_bottom and zy < y_bottom):
                        continue
                    seen.add(zone)
                    text = in_zone = ""
                    if kind == pypdfium2.raw.FPDF_PAGEOBJ_TEXT:
                        textpage = page.textpage
                        text = textpage.get_text_bounded(left, bottom, right, top)
                        z = zone.rect
                        in_zone = textpage.get_text_bounded(
                            max(left, z.x / MM_PER_PT), height - z.bottom / MM_PER_PT,
                            min(right, z.right / MM_PER_PT), height - z.y / MM_PER_PT)
                    if not text:  # a rule or a cell pushed out: the widest word did it
                        text = longest = longest or _longest_word(pages)
                    found.append(Intrusion(page.number, zone, _norm(text), _norm(in_zone)))
    return found


def _free_band(rects: Sequence[tuple[MarkZone, float, float, float, float]]
               ) -> tuple[float, float]:
    """(left, right) in mm: a box with x >= left and right edge <= right meets no zone
    (`Rect.intersects` needs box.x < zone.right and zone.x < box.right). The zones are
    split at the middle of their span; one that straddles it leaves no band (inf, -inf)."""
    middle = (min(r[1] for r in rects) + max(r[2] for r in rects)) / 2
    left, right = float("-inf"), float("inf")
    for _, x, x_right, _, _ in rects:
        if x_right <= middle:
            left = max(left, x_right)
        elif x >= middle:
            right = min(right, x)
        else:
            return float("inf"), float("-inf")
    return left, right


def zone_violations(pdf: PdfSource, composition: Composition,
                    zones: Sequence[MarkZone]) -> list[FieldViolation]:
    """One violation per field (or page) whose content reaches a mark zone, naming the
    context field whose text is found there (else `print.pages[n]`); [] when none does.
    `pdf`: the PDF's bytes, or the pages of a `server.pdfium.read_back` under way."""
    violations = []
    for intrusion in find_intrusions(pdf, zones):
        field = field_of(intrusion, composition.context) or f"print.pages[{intrusion.page}]"
        what = quote_printed(intrusion.text) if intrusion.text else "a drawing"
        if intrusion.text and not intrusion.in_zone:
            what = f"the content widened by {what}"
        violations.append(FieldViolation(field, (
            f"{what} runs out of its box on page {intrusion.page} into {intrusion.zone}, "
            f"where the inserter marks are printed over it; break it with spaces or shorten it")))
    return _unique(violations)


def check_print_zones(pdf: PdfSource, composition: Composition,
                      zones: Sequence[MarkZone]) -> None:
    """Raise `InvalidInput` with `zone_violations` when the rendered PDF reaches a mark
    zone."""
    violations = zone_violations(pdf, composition, zones)
    if violations:
        raise InvalidInput("the print PDF reaches a print profile's mark zone", violations)


def field_of(intrusion: Intrusion, context: Mapping[str, Any]) -> str | None:
    """The JSON path ($.a.b[2]) of the context string holding the text found in the zone:
    the longest word of the reaching line that has a character inside the zone."""
    words = [w for w in intrusion.text.split(" ") if w]
    fragment = intrusion.in_zone.split(" ")[0] if intrusion.in_zone else ""
    candidates = sorted((w for w in words if fragment and fragment in w), key=len,
                        reverse=True) or sorted(words, key=len, reverse=True)
    for word in candidates[:3]:
        for path, value in _strings(context, "$"):
            if word in _norm(value):
                return path
    return None


def _strings(value: Any, path: str) -> Iterator[tuple[str, str]]:
    if isinstance(value, str):
        yield path, value
    elif isinstance(value, Mapping):
        for key, item in value.items():
            if key != "labels":  # the layout's own words, not data
                yield from _strings(item, f"{path}.{key}")
    elif isinstance(value, list | tuple):
        for index, item in enumerate(value):
            yield from _strings(item, f"{path}[{index}]")


def _longest_word(pages: Sequence[ReadPage]) -> str:
    """The document's longest word: a table's columns are as wide as their widest word on
    any page, so the culprit may sit on another page than the rule it pushed out."""
    words = (w for page in pages for w in _norm(page.text).split(" "))
    return max(words, key=len, default="")


def _norm(text: str) -> str:
    return _SPACE.sub(" ", text.replace("\r", " ").replace("\n", " ").replace("\x02", "")).strip()


def _unique(violations: list[FieldViolation]) -> list[FieldViolation]:
    seen: set[str] = set()
    out = []
    for violation in violations:
        if violation.field not in seen:
            seen.add(violation.field)
            out.append(violation)
    return out
