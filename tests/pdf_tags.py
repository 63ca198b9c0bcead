"""Read a tagged PDF the way assistive technology does: its structure tree (ISO 32000-1
§14.7, PDF/UA-1 / ISO 14289-1) with the text each element marks, and what the pages draw
outside it as artifacts. Independent of how Kanal made the PDF (either engine); for the
tests of what a screen reader meets, where tests/pdf_conformance.py runs the rule checks.

* `elements(pdf)`: every structure element, depth first (the logical reading order), with
  its role, `/Alt` and the text of the content it marks;
* `spoken(pdf)`: what a screen reader reads, in order: a `/Figure`'s alternative text
  instead of its content, every other element's marked text;
* `headings(pdf)`: the `/H1`..`/H6` levels in reading order;
* `paths(pdf)`: the paths the pages draw (a vector logo), each as an artifact (decoration,
  outside the structure tree, which a screen reader skips: ISO 14289-1 §7.1) or as tagged
  content.

Text is read with pdfium (pypdfium2): each text object's Unicode text and the marked-content
id (MCID) of the sequence it is drawn in; the structure tree with pikepdf.
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


@dataclass(frozen=True)
class Drawn:
    """A path the page draws (a vector logo is paths): its `page` index, `stroke` colour
    (r, g, b, 0-255; None without a stroke), and whether it is an `artifact` (inside an
    /Artifact sequence) or tagged content (`mcid`: its marked-content id, -1 if none)."""

    page: int
    stroke: tuple[int, int, int] | None
    artifact: bool
    mcid: int


def paths(pdf: bytes) -> list[Drawn]:
    """Every path object of every page, at any depth: inside a form XObject too (an SVG
    image is drawn as one), which is an artifact or tagged as the `Do` that draws it is."""
    found: list[Drawn] = []

    def visit(raw, page: int, artifact: bool, mcid: int) -> None:
        kind = pdfium.FPDFPageObj_GetType(raw)
        artifact = artifact or _in_artifact(raw)
        own = pdfium.FPDFPageObj_GetMarkedContentID(raw)
        mcid = own if own >= 0 else mcid
        if kind == pdfium.FPDF_PAGEOBJ_FORM:
            for i in range(pdfium.FPDFFormObj_CountObjects(raw)):
                visit(pdfium.FPDFFormObj_GetObject(raw, i), page, artifact, mcid)
        elif kind == pdfium.FPDF_PAGEOBJ_PATH:
            mode, stroked = ctypes.c_int(), ctypes.c_int()
            pdfium.FPDFPath_GetDrawMode(raw, ctypes.byref(mode), ctypes.byref(stroked))
            stroke = None
            if stroked.value:
                rgba = [ctypes.c_uint() for _ in range(4)]
                pdfium.FPDFPageObj_GetStrokeColor(raw, *map(ctypes.byref, rgba))
                stroke = (rgba[0].value, rgba[1].value, rgba[2].value)
            found.append(Drawn(page, stroke, artifact, mcid))

    document = pypdfium2.PdfDocument(pdf)
    try:
        for index in range(len(document)):
            page = document[index]
            for i in range(pdfium.FPDFPage_CountObjects(page.raw)):
                visit(pdfium.FPDFPage_GetObject(page.raw, i), index, False, -1)
    finally:
        document.close()
    return found


def _in_artifact(raw) -> bool:
    for i in range(pdfium.FPDFPageObj_CountMarks(raw)):
        mark = pdfium.FPDFPageObj_GetMark(raw, i)
        size = ctypes.c_ulong()
        pdfium.FPDFPageObjMark_GetName(mark, None, 0, ctypes.byref(size))
        buffer = ctypes.create_string_buffer(size.value)
        pdfium.FPDFPageObjMark_GetName(
            mark, ctypes.cast(buffer, ctypes.POINTER(pdfium.FPDF_WCHAR)), size.value,
            ctypes.byref(size))
        if buffer.raw.decode("utf-16-le").rstrip("\x00") == "Artifact":
            return True
    return False
