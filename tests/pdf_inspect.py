"""Read PDFs the way a person checks them: text per page, and where a text sits (in mm
from the page's top-left corner). Independent of how Kanal made the PDF (pdfium)."""

from __future__ import annotations

import ctypes
import io
import re
from dataclasses import dataclass

import pypdfium2
import pypdfium2.raw

MM_PER_PT = 25.4 / 72


def normalise(text: str) -> str:
    """Fold the spaces Babel and pdfium use (NBSP, narrow NBSP, CR/LF) into one space."""
    return re.sub(r"[\s\u00a0\u202f\u2009]+", " ", text).strip()


def pages_text(pdf: bytes) -> list[str]:
    document = pypdfium2.PdfDocument(pdf)
    try:
        return [normalise(page.get_textpage().get_text_range()) for page in document]
    finally:
        document.close()


def pages_lines(pdf: bytes) -> list[list[str]]:
    """Each page's text as the lines pdfium reads (a new line where the baseline changes),
    each normalised: a value broken over two lines is in none of them whole."""
    document = pypdfium2.PdfDocument(pdf)
    try:
        return [[normalise(line) for line in re.split(r"\r\n|\r|\n",
                                                      page.get_textpage().get_text_range())]
                for page in document]
    finally:
        document.close()


@dataclass(frozen=True)
class Box:
    left: float
    top: float
    right: float
    bottom: float  # mm from the page's top-left corner

    def inside(self, other: Box) -> bool:
        return (self.left >= other.left and self.right <= other.right
                and self.top >= other.top and self.bottom <= other.bottom)


def find_text(pdf: bytes, text: str, page_index: int = 0) -> list[Box]:
    """The boxes around every occurrence of `text` on a page (empty if none)."""
    document = pypdfium2.PdfDocument(pdf)
    try:
        page = document[page_index]
        height = page.get_height()
        textpage = page.get_textpage()
        searcher = textpage.search(text, match_case=True)
        found = []
        while match := searcher.get_next():
            start, count = match
            boxes = [textpage.get_charbox(i) for i in range(start, start + count)]
            left, bottom = min(b[0] for b in boxes), min(b[1] for b in boxes)
            right, top = max(b[2] for b in boxes), max(b[3] for b in boxes)
            found.append(Box(left * MM_PER_PT, (height - top) * MM_PER_PT,
                             right * MM_PER_PT, (height - bottom) * MM_PER_PT))
        return found
    finally:
        document.close()


def advances(pdf: bytes, text: str, page_index: int = 0) -> list[tuple[str, float]]:
    """Each character of the first occurrence of `text` on a page with its advance in pt (the
    distance from its origin to the next character's), the last character left out because
    its advance runs into whatever follows. Tabular figures show as equal advances."""
    document = pypdfium2.PdfDocument(pdf)
    try:
        textpage = document[page_index].get_textpage()
        match = textpage.search(text, match_case=True).get_next()
        if not match:
            raise AssertionError(f"{text!r} is not on page {page_index + 1}")
        start, count = match
        origins = []
        for index in range(start, start + count):
            x, y = ctypes.c_double(), ctypes.c_double()
            pypdfium2.raw.FPDFText_GetCharOrigin(textpage, index, x, y)
            origins.append(x.value)
        return [(textpage.get_text_range(start + i, 1), origins[i + 1] - origins[i])
                for i in range(count - 1)]
    finally:
        document.close()


def font_size(pdf: bytes, text: str, page_index: int = 0) -> float:
    """The size in pt at which the first character of `text` is drawn on a page: the font
    size in the text state scaled by the character's matrix (WeasyPrint draws in CSS px
    under a 0.75 matrix, so pdfium's bare size reads 13.33 for a 10 pt heading; Typst
    draws in pt)."""
    document = pypdfium2.PdfDocument(pdf)
    try:
        textpage = document[page_index].get_textpage()
        start, _ = textpage.search(text, match_case=True).get_next()
        matrix = pypdfium2.raw.FS_MATRIX()
        pypdfium2.raw.FPDFText_GetMatrix(textpage, start, matrix)
        scale = abs(matrix.a * matrix.d - matrix.b * matrix.c) ** 0.5
        return pypdfium2.raw.FPDFText_GetFontSize(textpage, start) * scale
    finally:
        document.close()


def chars_outside(pdf: bytes, left: float, right: float, top: float = 0.0,
                  bottom: float = 1e9, slack: float = 0.5) -> list[tuple[int, str, Box]]:
    """Every drawn character (page index, character, box in mm) that does not lie within
    x `left`..`right` and y `top`..`bottom` (mm from the page's top-left corner), give or
    take `slack` mm. Character by character, so independent of how Kanal groups runs."""
    document = pypdfium2.PdfDocument(pdf)
    try:
        out = []
        for index, page in enumerate(document):
            height = page.get_height()
            textpage = page.get_textpage()
            for i in range(textpage.count_chars()):
                char = textpage.get_text_range(i, 1)
                if not char.strip():
                    continue
                x0, y0, x1, y1 = textpage.get_charbox(i)
                box = Box(x0 * MM_PER_PT, (height - y1) * MM_PER_PT, x1 * MM_PER_PT,
                          (height - y0) * MM_PER_PT)
                if (box.left < left - slack or box.right > right + slack
                        or box.top < top - slack or box.bottom > bottom + slack):
                    out.append((index, char, box))
        return out
    finally:
        document.close()


def font_names(pdf: bytes) -> set[str]:
    """The base font names of every font the pages use, subset prefix removed
    ("AAAAAA+NotoSans-Regular" -> "NotoSans-Regular")."""
    import pikepdf

    names = set()
    with pikepdf.open(io.BytesIO(pdf)) as document:
        for page in document.pages:
            for font in page.Resources.get("/Font", {}).values():
                names.add(str(font.get("/BaseFont", "")).lstrip("/").split("+")[-1])
    return names


def blank_pdf() -> bytes:
    """A real one-page blank A4 PDF: what a stand-in engine returns in tests that need no
    real render (the print channel reads back every PDF it gets)."""
    document = pypdfium2.PdfDocument.new()
    try:
        document.new_page(595.28, 841.89)
        out = io.BytesIO()
        document.save(out)
        return out.getvalue()
    finally:
        document.close()


BLANK_PDF = blank_pdf()
