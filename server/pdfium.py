"""One lock for pdfium in this process, and one read-back pass over a rendered PDF.

Kanal reads rendered PDFs back with pdfium (pypdfium2): the print preflight, the mark-zone
check, the mailbox limits. pdfium is not thread-safe (pypdfium2's documentation: use it from
one thread at a time per process), and a server rendering in threads crashed in libpdfium
(SIGTRAP) when two calls overlapped. Every use in the server runs under `serialised` (or
inside `read_back`, which holds the same lock); render processes are single-threaded, so
there it costs nothing.

`read_back` is the print checks' one pass (issue 14): the PDF opened once and each page
loaded once, its text page made once, shared by the text-area preflight
(`server.channels.preflight`) and the mark-zone check (`server.channels.print_zones`).
Loading a page is most of what the checks cost, and the first page of every document cost
three times the others: pdfium builds a colour transform (lcms2) for each ICC-based colour
space it meets, and Typst's PDF/A pages draw in two (sRGB and grey). The checks read
geometry and text, never colour, so `read_back` opens a copy whose ICC-based colour
spaces are named as the device colour space with the same number of components
(`without_icc_profiles`): the same page objects, bounds and text, without the transforms;
and with the catalog's XMP metadata out of pdfium's sight (`without_metadata`), which it
otherwise parses at every open.
"""

from __future__ import annotations

import ctypes
import functools
import re
import struct
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any, ParamSpec, TypeVar

import pypdfium2
import pypdfium2.raw as pdfium_c

P = ParamSpec("P")
R = TypeVar("R")

LOCK = threading.RLock()


def serialised(function: Callable[P, R]) -> Callable[P, R]:
    """`function` (which opens, reads and closes pdfium documents) under LOCK."""
    @functools.wraps(function)
    def locked(*args: P.args, **kwargs: P.kwargs) -> R:
        with LOCK:
            return function(*args, **kwargs)
    return locked


@serialised
def page_count(pdf: bytes) -> int:
    """The number of pages of `pdf` (bytes of a PDF pdfium can open)."""
    document = pypdfium2.PdfDocument(pdf)
    try:
        return len(document)
    finally:
        document.close()


# `[/ICCBased 12 0 R]` (ISO 32000-1 8.6.5.5): a colour space array naming its profile stream
_ICC_BASED = re.compile(rb"\[\s*/ICCBased\s+(\d+)\s+(\d+)\s+R\s*\]")
_COMPONENTS = re.compile(rb"/N\s+(\d+)")
_DEVICE = {1: b"[/DeviceGray]", 3: b"[/DeviceRGB]", 4: b"[/DeviceCMYK]"}  # by /N
_STREAM_DICT_BYTES = 1024  # where a profile stream's /N is looked for after `n 0 obj`


def without_icc_profiles(pdf: bytes) -> bytes:
    """`pdf` with every ICC-based colour space array `[/ICCBased n g R]` written as the
    device colour space of the profile's component count (`/N` 1, 3, 4: DeviceGray,
    DeviceRGB, DeviceCMYK), padded with spaces to the same length, so every byte offset
    (the cross-reference table) still holds. Only for reading geometry and text: the
    colours change, nothing else. A colour space this cannot resolve plainly (a profile
    in an object stream, an unusual /N) stays as it was; `pdf` itself when none changes."""
    return _patched(pdf, _icc_patches(pdf))


def _icc_patches(pdf: bytes) -> list[tuple[int, int, bytes]]:
    """(start, end, bytes of the same length) for `without_icc_profiles`."""
    patches = []
    components: dict[tuple[bytes, bytes], int | None] = {}  # each profile looked up once
    at = pdf.find(b"/ICCBased")
    while at >= 0:
        start = pdf.rfind(b"[", max(0, at - 16), at)
        match = _ICC_BASED.match(pdf, start) if start >= 0 else None
        if match is not None:
            key = (match[1], match[2])
            if key not in components:
                components[key] = _profile_components(pdf, *key)
            device = _DEVICE.get(components[key])
            if device is not None:
                patches.append((match.start(), match.end(),
                                device.ljust(match.end() - match.start())))
        at = pdf.find(b"/ICCBased", at + 9)
    return patches


def _patched(pdf: bytes, patches: list[tuple[int, int, bytes]]) -> bytes:
    """`pdf` with each (start, end, replacement) of `patches` written in, one copy for all;
    `pdf` itself when there is none."""
    if not patches:
        return pdf
    out = bytearray(pdf)
    for start, end, replacement in patches:
        out[start:end] = replacement
    return bytes(out)


# `/Metadata 422 0 R` (ISO 32000-1 14.3.2): a dictionary's reference to its XMP stream
_METADATA_REF = re.compile(rb"/Metadata\s+\d+\s+\d+\s+R")
_UNREAD_METADATA = b"/XMetadat"  # the same length: every byte offset holds


def without_metadata(pdf: bytes) -> bytes:
    """`pdf` with every reference to a metadata stream (`/Metadata n g R`: the catalog's
    XMP packet) under a key of the same length that nothing reads (`/XMetadat`), so every
    byte offset (the cross-reference table) still holds. pdfium parses the catalog's XMP
    at every open to look for an unsupported shared form (`ReportUnsupportedFeatures`):
    1.1 M instructions a Typst document, half of what an open costs, for nothing the
    print checks read (geometry and text never come from metadata). A reference in an
    object stream (WeasyPrint's catalog) stays as it was."""
    return _patched(pdf, _metadata_patches(pdf))


def _metadata_patches(pdf: bytes) -> list[tuple[int, int, bytes]]:
    """(start, end, `/XMetadat`) for `without_metadata`: each `/Metadata` found by a plain
    byte search, then matched there (a regular expression searching the whole file cost
    more than the rest of the copy)."""
    patches = []
    at = pdf.find(b"/Metadata")
    while at >= 0:
        if _METADATA_REF.match(pdf, at):
            patches.append((at, at + len(_UNREAD_METADATA), _UNREAD_METADATA))
        at = pdf.find(b"/Metadata", at + 9)
    return patches


def reading_copy(pdf: bytes) -> bytes:
    """What `read_back` opens: `pdf` without ICC-based colour spaces
    (`without_icc_profiles`) and without its metadata (`without_metadata`), every byte
    offset as it was, in one copy; the same page objects, bounds and text."""
    return _patched(pdf, _icc_patches(pdf) + _metadata_patches(pdf))


def _profile_components(pdf: bytes, number: bytes, generation: bytes) -> int | None:
    """The /N of object `number generation` when it is a plain stream object, else None."""
    header = number + b" " + generation + b" obj"
    at = pdf.find(header)
    while at > 0 and pdf[at - 1] not in b" \t\r\n\f\0":  # `112 0 obj` is not `12 0 obj`
        at = pdf.find(header, at + 1)
    if at < 0:
        return None
    end = pdf.find(b"stream", at, at + _STREAM_DICT_BYTES)
    found = _COMPONENTS.search(pdf, at, end) if end >= 0 else None
    return int(found[1]) if found else None


def _by_address(function: Any, restype: Any, *argtypes: Any) -> Any:
    """A second prototype of a pypdfium2.raw binding that takes plain ints (addresses) for
    handles and out-parameters and returns one for a handle: ctypes then checks and
    converts no pointer objects, most of a call's cost in the loops over a page's objects
    and text runs."""
    address = ctypes.cast(function, ctypes.c_void_p).value
    return ctypes.CFUNCTYPE(restype, *argtypes)(address)


class Handle(ctypes.c_void_p):
    """A pdfium handle as the `_unconverted` prototypes give and take it: ctypes returns an
    instance of a c_void_p subclass as it is (no int made) and passes it as a pointer."""


def _unconverted(function: Any, restype: Any) -> Any:
    """A third prototype of a pypdfium2.raw binding, for the loop over a page's objects:
    no argument types, so ctypes converts nothing through `from_param` (handles are
    `Handle`s, out-parameters `ctypes.byref`s, an index a Python int passed as a C int, all
    the function takes), and the GIL held (PYFUNCTYPE: pdfium runs under LOCK anyway, and
    these calls take less than giving the GIL up would). A quarter less per object than
    `_by_address` (load_tests/count_print_checks.py)."""
    address = ctypes.cast(function, ctypes.c_void_p).value
    return ctypes.PYFUNCTYPE(restype)(address)


_VOID, _INT = ctypes.c_void_p, ctypes.c_int
_GET_OBJECT = _unconverted(pdfium_c.FPDFPage_GetObject, Handle)
_GET_BOUNDS = _unconverted(pdfium_c.FPDFPageObj_GetBounds, _INT)
_GET_KIND = _unconverted(pdfium_c.FPDFPageObj_GetType, _INT)
_GET_TYPE = _by_address(pdfium_c.FPDFPageObj_GetType, _INT, _VOID)
_GET_RECT = _by_address(pdfium_c.FPDFText_GetRect, _INT, _VOID, _INT, _VOID, _VOID, _VOID, _VOID)
_GET_CLIP = _unconverted(pdfium_c.FPDFPageObj_GetClipPath, Handle)
_COUNT_CLIP_PATHS = _unconverted(pdfium_c.FPDFClipPath_CountPaths, _INT)


def _address(handle: Any) -> int:
    return ctypes.cast(handle, ctypes.c_void_p).value or 0


# The four edges pdfium writes into a ctypes array, read in one call: `tuple(array)` or
# unpacking the array takes each item through ctypes (a third of the loops' cost)
_FOUR_DOUBLES = struct.Struct("4d").unpack_from
_FOUR_FLOATS = struct.Struct("4f").unpack_from


class ReadPage:
    """One page of a `read_back`, loaded once. `number` is 1-based; `width`, `height` in pt
    (pdfium's page size); the text page is made on first use and kept."""

    __slots__ = ("number", "page", "width", "height", "_textpage", "_text", "_objects",
                 "_kinds")

    def __init__(self, number: int, page: pypdfium2.PdfPage):
        self.number = number
        self.page = page
        self.width, self.height = page.get_size()
        self._textpage: pypdfium2.PdfTextPage | None = None
        self._text: str | None = None
        self._objects: list[tuple[Handle, float, float, float, float]] | None = None
        self._kinds: list[int] = []

    @property
    def textpage(self) -> pypdfium2.PdfTextPage:
        if self._textpage is None:
            self._textpage = self.page.get_textpage()
        return self._textpage

    @property
    def text(self) -> str:
        """The page's whole text as pdfium reads it (`FPDFText_GetText`)."""
        if self._text is None:
            self._text = self.textpage.get_text_range()
        return self._text

    def text_rects(self) -> list[tuple[float, float, float, float]]:
        """The page's text runs as pdfium finds them (`FPDFText_CountRects` over the whole
        page, then `FPDFText_GetRect`): (left, top, right, bottom) in pt, y up."""
        textpage = _address(self.textpage.raw)
        edges = (ctypes.c_double * 4)()
        at = ctypes.addressof(edges)
        size = ctypes.sizeof(ctypes.c_double)
        left, top, right, bottom = at, at + size, at + 2 * size, at + 3 * size
        get_rect, read = _GET_RECT, _FOUR_DOUBLES
        rects = []
        for index in range(pdfium_c.FPDFText_CountRects(self.textpage.raw, 0, -1)):
            get_rect(textpage, index, left, top, right, bottom)
            rects.append(read(edges))
        return rects

    def objects(self) -> list[tuple[Handle, float, float, float, float]]:
        """(object, left, bottom, right, top in pt) of every top-level page object (a form
        XObject counts as one), in content order; `object` is pdfium's handle (a `Handle`),
        valid while the page is open (`object_type`). Read once per page and kept, with
        each object's type (`kinds`): the mark-zone check and the preflight's quick pass
        and cell borders all walk them. Raw calls: pypdfium2's PdfObject wrappers cost more
        than the check itself. PdfiumError when pdfium cannot place an object."""
        if self._objects is None:
            self._objects = self._read_objects()
        return self._objects

    def kinds(self) -> list[int]:
        """The FPDF_PAGEOBJ_* type of each of `objects`, in the same order (read with them,
        in the same loop: asking pdfium object by object later costs a call each again)."""
        self.objects()
        return self._kinds

    def _read_objects(self) -> list[tuple[Handle, float, float, float, float]]:
        """Every page object -> (its handle, left, bottom, right, top in pt), in one loop of
        pdfium calls through the GIL-keeping prototypes, their types kept for `kinds`;
        `PdfiumError` when pdfium cannot count or locate an object."""
        page = Handle(_address(self.page.raw))
        edges = (ctypes.c_float * 4)()
        left, bottom, right, top = (ctypes.byref(edges, k * ctypes.sizeof(ctypes.c_float))
                                    for k in range(4))
        get_object, get_bounds, get_kind, read = _GET_OBJECT, _GET_BOUNDS, _GET_KIND, _FOUR_FLOATS
        count = pdfium_c.FPDFPage_CountObjects(self.page.raw)
        if count < 0:
            raise pypdfium2.PdfiumError("Failed to get number of pageobjects.")
        objects = []
        kinds = self._kinds = []
        for index in range(count):
            obj = get_object(page, index)
            if not obj or not get_bounds(obj, left, bottom, right, top):
                raise pypdfium2.PdfiumError("Failed to locate pageobject.")
            objects.append((obj, *read(edges)))
            kinds.append(get_kind(obj))
        return objects

    def clipped_text(self) -> list[int]:
        """The indexes into `objects` of the text objects (`FPDF_PAGEOBJ_TEXT`) pdfium holds
        a clip path for: one path or more (`FPDFClipPath_CountPaths` of
        `FPDFPageObj_GetClipPath`, which gives a handle for every object; the count is -1
        without a clip). It holds none for an object drawn unclipped, nor for one inside a
        single clip rectangle: pdfium drops such a clip when it loads the page
        (`CPDF_ContentParser`'s clip check), so a page that fits has nearly none. Two
        calls per text object through the prototypes that convert nothing, in one loop."""
        text, get_clip, count = pdfium_c.FPDF_PAGEOBJ_TEXT, _GET_CLIP, _COUNT_CLIP_PATHS
        objects = self.objects()
        return [index for index, kind in enumerate(self._kinds)
                if kind == text and count(get_clip(objects[index][0])) > 0]

    @staticmethod
    def clip_bounds(obj: Handle) -> tuple[float, float, float, float] | None:
        """(left, bottom, right, top) in pt, y up, of the region the clip path of an object
        `objects` gave lets through: the intersection of its paths' bounding boxes (each
        the box of its points: a curve's control points hold the curve); None without a
        clip path or with one that has no path points (a text clip only)."""
        clip = pdfium_c.FPDFPageObj_GetClipPath(ctypes.cast(obj, pdfium_c.FPDF_PAGEOBJECT))
        if not clip:
            return None
        x, y = ctypes.c_float(), ctypes.c_float()
        found: tuple[float, float, float, float] | None = None
        for path in range(max(pdfium_c.FPDFClipPath_CountPaths(clip), 0)):
            xs: list[float] = []
            ys: list[float] = []
            for index in range(max(pdfium_c.FPDFClipPath_CountPathSegments(clip, path), 0)):
                segment = pdfium_c.FPDFClipPath_GetPathSegment(clip, path, index)
                if segment and pdfium_c.FPDFPathSegment_GetPoint(segment, x, y):
                    xs.append(x.value)
                    ys.append(y.value)
            if not xs:
                continue
            box = (min(xs), min(ys), max(xs), max(ys))
            found = box if found is None else (max(found[0], box[0]), max(found[1], box[1]),
                                               min(found[2], box[2]), min(found[3], box[3]))
        return found

    def object_text(self, obj: Handle) -> str:
        """The text a text object `objects` gave draws (`FPDFTextObj_GetText`, through the
        page's text page), with whatever it draws outside its clip."""
        handle = ctypes.cast(obj, pdfium_c.FPDF_PAGEOBJECT)
        size = pdfium_c.FPDFTextObj_GetText(handle, self.textpage.raw, None, 0)
        if size <= 2:
            return ""
        buffer = (ctypes.c_ushort * (size // 2))()
        pdfium_c.FPDFTextObj_GetText(handle, self.textpage.raw, buffer, size)
        return bytes(buffer).decode("utf-16-le", errors="replace").rstrip("\x00")

    @staticmethod
    def object_type(obj: Handle | int) -> int:
        """The FPDF_PAGEOBJ_* type of an object `objects` gave."""
        return _GET_TYPE(obj)

    def close(self) -> None:
        if self._textpage is not None:
            self._textpage.close()
        self.page.close()


@contextmanager
def read_back(pdf: bytes) -> Iterator[tuple[ReadPage, ...]]:
    """Every page of `pdf`, each loaded once, for reading geometry and text (colours and
    metadata are not read: see `reading_copy`), under LOCK for the whole block; closed after.
    PdfiumError when pdfium cannot open `pdf` or one of its pages."""
    with LOCK:
        document = pypdfium2.PdfDocument(reading_copy(pdf))
        pages: list[ReadPage] = []
        try:
            for index in range(len(document)):
                pages.append(ReadPage(index + 1, document[index]))
            yield tuple(pages)
        finally:
            for page in pages:
                page.close()
            document.close()


PdfSource = bytes | tuple[ReadPage, ...]  # a PDF, or the pages of a `read_back` under way


@contextmanager
def reading(source: PdfSource) -> Iterator[tuple[ReadPage, ...]]:
    """The pages of `source`: read back here when it is the PDF's bytes, else the pages of
    the caller's `read_back` (so several checks share one pass)."""
    if isinstance(source, bytes | bytearray):
        with read_back(bytes(source)) as pages:
            yield pages
    else:
        with LOCK:
            yield source
