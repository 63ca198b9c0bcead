"""Read a tagged PDF the way assistive technology does: its structure tree (ISO 32000-1
§14.7, PDF/UA-1 / ISO 14289-1) with the text each element marks, and what the pages draw
outside it as artifacts. Independent of how Kanal made the PDF (either engine); for the
tests of what a screen reader meets, where tests/pdf_conformance.py runs the rule checks.

* `elements(pdf)`: every structure element, depth first (the logical reading order), with
  its role, `/Alt` and the text of the content it marks;
* `spoken(pdf)`: what a screen reader reads, in order: a `/Figure`'s alternative text
  instead of its content, every other element's marked text;
* `headings(pdf)`: the `/H1`..`/H6` levels in reading order;
* `empty_elements(pdf)`: the elements that mark nothing (no kids);
* `strokes(pdf, rgb)`: the paths stroked in a colour (a vector logo's), each drawn as an
  artifact (decoration, outside the structure tree, which a screen reader skips: ISO
  14289-1 §7.1) or as tagged content.

Text is read with pdfium (pypdfium2): each text object's Unicode text and the marked-content
id (MCID) of the sequence it is drawn in; the structure tree and the drawing with pikepdf.
"""

from __future__ import annotations

import ctypes
import io
from dataclasses import dataclass

import pikepdf
import pypdfium2
import pypdfium2.raw as pdfium

HEADING_LEVELS = {f"/H{n}": n for n in range(1, 7)}


@dataclass(frozen=True)
class Element:
    """One structure element: `role` without the slash ("Figure", "H1"), its `alt` text
    (None without one), the `text` of the content it and its kids mark, in order, and its
    `depth` under the structure tree root (the /Document is 0)."""

    role: str
    alt: str | None
    text: str
    depth: int


def _marked_text(pdf: bytes) -> dict[tuple[int, int], str]:
    """(page index, MCID) -> the text drawn in that marked-content sequence."""
    found: dict[tuple[int, int], str] = {}
    document = pypdfium2.PdfDocument(pdf)
    try:
        for index in range(len(document)):
            page = document[index]
            textpage = page.get_textpage()
            for obj in page.get_objects(max_depth=8):
                if obj.type != pdfium.FPDF_PAGEOBJ_TEXT:
                    continue
                mcid = pdfium.FPDFPageObj_GetMarkedContentID(obj.raw)
                if mcid < 0:
                    continue
                size = pdfium.FPDFTextObj_GetText(obj.raw, textpage.raw, None, 0)
                buffer = ctypes.create_string_buffer(size)
                pdfium.FPDFTextObj_GetText(
                    obj.raw, textpage.raw,
                    ctypes.cast(buffer, ctypes.POINTER(pdfium.FPDF_WCHAR)), size)
                text = buffer.raw[:size].decode("utf-16-le").rstrip("\x00")
                found[(index, mcid)] = found.get((index, mcid), "") + text
    finally:
        document.close()
    return found


def _walk(pdf: bytes):
    """The structure tree as events, depth first: ("element", role, alt, depth) when an
    element opens, ("end",) when it closes, and ("text", str) for each run of marked
    content (the MCIDs between two kid elements: a word of single-glyph runs reads whole)."""
    texts = _marked_text(pdf)
    with pikepdf.open(io.BytesIO(pdf)) as doc:
        pages = {page.obj.objgen: i for i, page in enumerate(doc.pages)}
        root = doc.Root.get("/StructTreeRoot")
        if root is None:
            return []
        out: list = []

        def visit(node, depth: int, page: int | None) -> None:
            kids = node.get("/K")
            if kids is None:
                return
            run: list[str] = []  # the texts of consecutive MCIDs: one run of text

            def flush() -> None:
                if run:
                    out.append(("text", "".join(run)))
                    run.clear()

            for kid in kids if isinstance(kids, pikepdf.Array) else [kids]:
                if isinstance(kid, int) and not isinstance(kid, bool):
                    run.append(texts.get((page, int(kid)), ""))
                elif isinstance(kid, pikepdf.Dictionary) and kid.get("/Type") == "/MCR":
                    on = pages.get(kid.Pg.objgen, page) if "/Pg" in kid else page
                    run.append(texts.get((on, int(kid.MCID)), ""))
                elif isinstance(kid, pikepdf.Dictionary) and "/S" in kid:
                    flush()
                    on = pages.get(kid.Pg.objgen, page) if "/Pg" in kid else page
                    alt = str(kid.Alt) if "/Alt" in kid else None
                    out.append(("element", str(kid.S)[1:], alt, depth))
                    visit(kid, depth + 1, on)
                    out.append(("end",))
            flush()

        visit(root, 0, None)
        return out


def elements(pdf: bytes) -> list[Element]:
    """Every structure element of `pdf`, depth first, with the text it marks."""
    events = _walk(pdf)
    found: list[Element] = []
    open_: list[tuple[int, str, str | None, int, list[str]]] = []
    for event in events:
        if event[0] == "element":
            _, role, alt, depth = event
            open_.append((len(found), role, alt, depth, []))
            found.append(Element(role, alt, "", depth))  # its text is filled in at its end
        elif event[0] == "text":
            for entry in open_:
                entry[4].append(event[1])
        else:
            index, role, alt, depth, parts = open_.pop()
            found[index] = Element(role, alt, " ".join(" ".join(parts).split()), depth)
    return found


def empty_elements(pdf: bytes) -> list[str]:
    """The roles ("Span", "TD") of the structure elements without kids (no marked content,
    no element under them), depth first: elements that mark nothing."""
    with pikepdf.open(io.BytesIO(pdf)) as doc:
        root = doc.Root.get("/StructTreeRoot")
        found: list[str] = []

        def visit(node) -> None:
            kids = node.get("/K")
            for kid in [] if kids is None else kids if isinstance(kids, pikepdf.Array) else [kids]:
                if isinstance(kid, pikepdf.Dictionary) and "/S" in kid:
                    inner = kid.get("/K")
                    if inner is None or (isinstance(inner, pikepdf.Array) and len(inner) == 0):
                        found.append(str(kid.S)[1:])
                    visit(kid)

        if root is not None:
            visit(root)
        return found


def spoken(pdf: bytes) -> list[str]:
    """What a screen reader reads, in reading order: a Figure's alternative text (its
    content is not read), else each marked-content sequence's text; blank ones left out."""
    out: list[str] = []
    figure_depth: int | None = None
    level = 0
    for event in _walk(pdf):
        if event[0] == "element":
            level += 1
            if figure_depth is None and event[1] == "Figure":
                figure_depth = level
                if event[2]:
                    out.append(event[2])
        elif event[0] == "end":
            if figure_depth == level:
                figure_depth = None
            level -= 1
        elif figure_depth is None and event[1].strip():
            out.append(" ".join(event[1].split()))
    return out


def headings(pdf: bytes) -> list[int]:
    """The heading levels (1..6 for /H1../H6) in reading order."""
    return [HEADING_LEVELS[f"/{e.role}"] for e in elements(pdf) if f"/{e.role}" in HEADING_LEVELS]


def never_skip(levels: list[int]) -> bool:
    """Matterhorn 14-002/14-003 (ISO 14289-1 §7.4.2): the first heading is H1, each next at
    most one level deeper than the one before it."""
    return bool(levels) and levels[0] == 1 and all(
        b <= a + 1 for a, b in zip(levels, levels[1:], strict=False))


@dataclass(frozen=True)
class Stroke:
    """A path stroked in one colour: its `page` index, and whether it is an `artifact`
    (inside an /Artifact marked-content sequence, at any depth) or tagged content (`mcid`:
    the innermost marked-content id around it, -1 if none)."""

    page: int
    artifact: bool
    mcid: int


_STROKE_PAINT = {"S", "s", "B", "B*", "b", "b*"}
_FILL_PAINT = {"f", "F", "f*", "B", "B*", "b", "b*"}


def strokes(pdf: bytes, rgb: tuple[int, int, int]) -> list[Stroke]:
    """Every path stroked in the DeviceRGB colour `rgb` (0-255 each), in the page's own
    content, in the form XObjects it draws (an SVG image: Typst, WeasyPrint's <img>) and in
    the tiling patterns it fills with (WeasyPrint's CSS background images), each with the
    marked content around the operator that draws it (a `Do` or a pattern fill counts for
    everything inside). Read with pikepdf's content-stream parser."""
    target = tuple(round(c / 255, 3) for c in rgb)
    found: list[Stroke] = []

    def run(content, resources, page: int, marks: list[tuple[bool, int]], depth: int) -> None:
        if depth > 8:
            return
        colour, pattern, saved = None, None, []
        xobjects = resources.get("/XObject", {}) if resources is not None else {}
        patterns = resources.get("/Pattern", {}) if resources is not None else {}
        for operands, operator in pikepdf.parse_content_stream(content):
            op = str(operator)
            if op in ("BMC", "BDC"):
                tag = str(operands[0])
                props = operands[1] if len(operands) > 1 else None
                mcid = int(props.MCID) if isinstance(props, pikepdf.Dictionary) \
                    and "/MCID" in props else -1
                marks.append((tag == "/Artifact", mcid))
            elif op == "EMC" and marks:
                marks.pop()
            elif op == "q":
                saved.append((colour, pattern))
            elif op == "Q" and saved:
                colour, pattern = saved.pop()
            elif op in ("RG", "SC", "SCN") and len(operands) == 3:
                colour = tuple(round(float(v), 3) for v in operands)
            elif op in ("scn", "SCN") and operands and isinstance(operands[-1], pikepdf.Name):
                pattern = str(operands[-1]) if op == "scn" else pattern
            elif op in ("sc", "rg", "g", "k"):
                pattern = None
            state = (any(a for a, _ in marks), next((m for _, m in reversed(marks) if m >= 0), -1))
            if op in _STROKE_PAINT and colour == target:
                found.append(Stroke(page, *state))
            if op in _FILL_PAINT and pattern is not None and pattern in patterns:
                tile = patterns[pattern]
                run(tile, tile.get("/Resources"), page, [*marks], depth + 1)
            if op == "Do" and str(operands[0]) in xobjects:
                form = xobjects[str(operands[0])]
                if form.get("/Subtype") == "/Form":
                    run(form, form.get("/Resources"), page, [*marks], depth + 1)

    with pikepdf.open(io.BytesIO(pdf)) as doc:
        for index, page in enumerate(doc.pages):
            run(page.obj, page.obj.get("/Resources"), index, [], 0)
    return found
