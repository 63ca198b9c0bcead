"""Read a tagged PDF's structure tree the way a screen reader walks it: each structure
element (ISO 32000-1 §14.7) with its role, alternative text and the text of the content
it marks, in the tree's (logical reading) order. Independent of how Kanal made the PDF:
the tree from pikepdf, the marked content's text from pdfium's page objects.

    roots = tag_tree(pdf)               # [Element(role="/Document", children=[...])]
    [e.role for e in headings(roots)]   # ["/H1", "/H2", ...]
    spoken(roots)                       # what is read aloud, alt text for a figure

Artifacts (ISO 14289-1 §7.1: page furniture, decoration) are in no element, so they are
never read.
"""

from __future__ import annotations

import ctypes
import io
from collections.abc import Iterator
from dataclasses import dataclass, field

import pikepdf
import pypdfium2
import pypdfium2.raw as pdfium

HEADINGS = {f"/H{n}" for n in range(1, 7)}


@dataclass
class Element:
    """One structure element: `role` its structure type as written (/H1, /Figure, /Span,
    /P, ...), `alt` its /Alt, `texts` the text of the content it marks itself, in order
    (an image or path it marks reads as ""), `children` its child elements."""
    role: str
    alt: str | None = None
    actual: str | None = None
    texts: list[str] = field(default_factory=list)
    children: list[Element] = field(default_factory=list)

    @property
    def text(self) -> str:
        """All the text this element and its children mark, in reading order."""
        own = "".join(self.texts)
        return own + "".join(child.text for child in self.children) if self.children else own

    def walk(self) -> Iterator[Element]:
        yield self
        for child in self.children:
            yield from child.walk()


def _marked_text(pdf: bytes) -> dict[tuple[int, int], str]:
    """(page index, MCID) -> the text of the page objects marked with that MCID."""
    out: dict[tuple[int, int], str] = {}
    document = pypdfium2.PdfDocument(pdf)
    try:
        for index, page in enumerate(document):
            textpage = page.get_textpage()
            for obj in page.get_objects(max_depth=15):
                mcid = pdfium.FPDFPageObj_GetMarkedContentID(obj.raw)
                if mcid < 0:
                    continue
                text = ""
                if obj.type == pdfium.FPDF_PAGEOBJ_TEXT:
                    size = pdfium.FPDFTextObj_GetText(obj.raw, textpage.raw, None, 0)
                    buffer = ctypes.create_string_buffer(size)
                    pdfium.FPDFTextObj_GetText(obj.raw, textpage.raw,
                                               ctypes.cast(buffer, ctypes.POINTER(ctypes.c_ushort)),
                                               size)
                    text = buffer.raw[:size].decode("utf-16-le").rstrip("\x00")
                out[(index, mcid)] = out.get((index, mcid), "") + text
    finally:
        document.close()
    return out


def tag_tree(pdf: bytes) -> list[Element]:
    """The structure tree's top elements (usually one /Document), each with its subtree."""
    texts = _marked_text(pdf)
    with pikepdf.open(io.BytesIO(pdf)) as doc:
        pages = {page.obj.objgen: i for i, page in enumerate(doc.pages)}
        root = doc.Root.get("/StructTreeRoot")
        if root is None:
            return []

        def text_of(value: object) -> str | None:
            return str(value) if value is not None else None

        def element(node: pikepdf.Dictionary, page: int | None) -> Element:
            if "/Pg" in node:
                page = pages.get(node.Pg.objgen, page)
            out = Element(str(node.S), alt=text_of(node.get("/Alt")),
                          actual=text_of(node.get("/ActualText")))
            kids = node.get("/K")
            for kid in kids if isinstance(kids, pikepdf.Array) else [kids]:
                if isinstance(kid, int) and not isinstance(kid, bool):
                    out.texts.append(texts.get((page, int(kid)), ""))
                elif isinstance(kid, pikepdf.Dictionary):
                    if "/S" in kid:
                        out.children.append(element(kid, page))
                    elif kid.get("/Type") == pikepdf.Name.MCR:
                        kid_page = pages.get(kid.Pg.objgen, page) if "/Pg" in kid else page
                        out.texts.append(texts.get((kid_page, int(kid.MCID)), ""))
            return out

        kids = root.get("/K")
        return [element(kid, None) for kid in (kids if isinstance(kids, pikepdf.Array)
                                               else [kids])
                if isinstance(kid, pikepdf.Dictionary) and "/S" in kid]


def elements(roots: list[Element]) -> Iterator[Element]:
    """Every element of the trees, depth first (reading order)."""
    for root in roots:
        yield from root.walk()


def headings(roots: list[Element]) -> list[Element]:
    """The /H1../H6 elements in reading order."""
    return [e for e in elements(roots) if e.role in HEADINGS]


def heading_level_problems(roots: list[Element]) -> list[str]:
    """Matterhorn 14-002 (ISO 14289-1 §7.4.2): the first heading is H1 and no heading is
    more than one level below the one before it. Empty: the levels are in order."""
    levels = [int(e.role[2]) for e in headings(roots)]
    found = []
    if levels and levels[0] != 1:
        found.append(f"the first heading is H{levels[0]}, not H1")
    found += [f"H{b} follows H{a}" for a, b in zip(levels, levels[1:], strict=False) if b > a + 1]
    return found


def spoken(roots: list[Element]) -> list[str]:
    """What a screen reader reads, element by element: a figure's (or any element's) alt
    or actual text stands for what it marks, other elements read their own marked text."""
    out: list[str] = []

    def read(e: Element) -> None:
        if e.actual is not None or e.alt is not None:
            out.append(e.actual if e.actual is not None else e.alt)
            return
        own = "".join(e.texts).strip()
        if own:
            out.append(own)
        for child in e.children:
            read(child)

    for root in roots:
        read(root)
    return out
