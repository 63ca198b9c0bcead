"""A finished PDF + a few changed objects -> the same PDF with an incremental update.

An incremental update (ISO 32000-1 §7.5.6) leaves the file's bytes as they are and appends
the objects that changed or were added, a cross-reference section for them and a trailer
whose /Prev points back to the previous section; readers take the newest definition of
each object. PDF/A keeps ISO 32000's file structure, updates included; what it asks of a
trailer (ISO 19005-2/-3 §6.1.3: the /ID, no encryption) the update's trailer carries.

Why not rewrite with pikepdf: qpdf resolves every object of the file before it makes one
new indirect object, and a save writes every object again: about 10 ms for a 100 KB invoice
PDF to which Factur-X adds a few kilobytes. Appending costs what is appended.

What is whose: pikepdf reads the original (lazily: the trailer and the objects asked for)
and serializes every PDF value written here (`unparse`); this module writes the framing
only: `n g obj ... endobj`, stream objects, the cross-reference section (a table after a
table, a cross-reference stream after a stream, as the original has it: ISO 32000-1
§7.5.4, §7.5.8) and the trailer. A file it cannot append to safely (encrypted, a hybrid
cross-reference, a last section it cannot find) is `NotAppendable`; the caller then
rewrites the file whole.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Mapping, Sequence

import pikepdf
from pikepdf import Name

# The last cross-reference section's offset, at the end of the file (ISO 32000-1 §7.5.5).
_STARTXREF = re.compile(rb"startxref\s+(\d+)\s+%%EOF\s*\Z")
_OFFSET_BYTES = 4  # cross-reference stream field 2: offsets below 4 GiB

class NotAppendable(ValueError):
    """The file cannot take an incremental update here; rewrite it whole."""


class Ref:
    """An indirect reference `n g R` to an object of the update."""

    __slots__ = ("generation", "number")

    def __init__(self, number: int, generation: int = 0):
        self.number = number
        self.generation = generation

    def __bytes__(self) -> bytes:
        return b"%d %d R" % (self.number, self.generation)


PdfValue = (pikepdf.Object | Ref | str | int | bytes | Mapping[str, "PdfValue"]
            | Sequence["PdfValue"])


def serialize(value: PdfValue) -> bytes:
    """A PDF value in PDF syntax: pikepdf objects as pikepdf writes them (indirect ones as
    references), `str` as a text string, `bytes` as written already, mappings as
    dictionaries (keys are names), sequences as arrays."""
    if isinstance(value, pikepdf.Object):
        return value.unparse()
    if isinstance(value, Ref):
        return bytes(value)
    if isinstance(value, bytes):
        return value
    if isinstance(value, bool):
        return b"true" if value else b"false"
    if isinstance(value, int):
        return b"%d" % value
    if isinstance(value, str):
        return pikepdf.String(value).unparse()
    if isinstance(value, Mapping):
        return b"<< " + b" ".join(Name(key).unparse() + b" " + serialize(item)
                                   for key, item in value.items()) + b" >>"
    return b"[ " + b" ".join(serialize(item) for item in value) + b" ]"


class IncrementalUpdate:
    """The objects to append to `pdf` (opened as `doc` by pikepdf, without recovery: a file
    qpdf had to repair has no cross-reference section to point back to)."""

    def __init__(self, pdf: bytes, doc: pikepdf.Pdf):
        trailer = doc.trailer
        if doc.is_encrypted or "/Encrypt" in trailer or "/XRefStm" in trailer:
            raise NotAppendable("an encrypted file or a hybrid cross-reference")
        found = _STARTXREF.search(pdf, max(0, len(pdf) - 1024))
        if found is None:
            raise NotAppendable("no startxref at the end of the file")
        self._prev = int(found.group(1))
        if pdf[self._prev:self._prev + 4] == b"xref":
            self._table = True
        elif re.match(rb"\d+\s+\d+\s+obj", pdf[self._prev:self._prev + 40]):
            self._table = False  # a cross-reference stream
        else:
            raise NotAppendable("startxref points at no cross-reference section")
        self._pdf = pdf
        self._trailer = trailer
        self._size = int(trailer.Size)
        self._objects: dict[int, tuple[int, bytes]] = {}  # number -> (generation, body)

    def new(self) -> Ref:
        """A reference to an object number no object of the file has."""
        self._size += 1
        return Ref(self._size - 1)

    def put(self, ref: Ref, value: PdfValue) -> None:
        """Define (or redefine) the object `ref` as `value`."""
        self._objects[ref.number] = (ref.generation, serialize(value))

    def put_stream(self, ref: Ref, dictionary: Mapping[str, PdfValue], data: bytes) -> None:
        """Define the stream object `ref`: `dictionary` (its /Length is set here) and the
        stream's bytes as they are to be stored (already filtered)."""
        head = serialize({**dictionary, "/Length": len(data)})
        self._objects[ref.number] = (ref.generation,
                                     head + b"\nstream\n" + data + b"\nendstream")

    def write(self) -> bytes:
        """The original bytes followed by the update: objects, cross-reference section,
        trailer. Deterministic: the second file identifier is an MD5 of the update."""
        out = bytearray(self._pdf)
        if not out.endswith((b"\n", b"\r")):
            out += b"\n"
        offsets: dict[int, tuple[int, int]] = {}
        for number in sorted(self._objects):
            generation, body = self._objects[number]
            offsets[number] = (len(out), generation)
            out += b"%d %d obj\n%s\nendobj\n" % (number, generation, body)
        first_id = self._trailer.get("/ID")
        appended = bytes(out[len(self._pdf):])
        ids = [first_id[0] if first_id is not None else pikepdf.String(
            hashlib.md5(self._pdf).digest()), pikepdf.String(hashlib.md5(appended).digest())]
        trailer: dict[str, PdfValue] = {"/Size": self._size}
        for key in ("/Root", "/Info"):
            if key in self._trailer:
                trailer[key] = self._trailer[key]
        trailer["/ID"] = ids
        trailer["/Prev"] = self._prev
        start = len(out)
        if self._table:
            out += b"xref\n" + _table(offsets) + b"trailer\n" + serialize(trailer) + b"\n"
        else:
            ref = self.new()
            offsets[ref.number] = (start, 0)
            trailer["/Size"] = self._size
            rows, index = _stream_rows(offsets)
            out += b"%d 0 obj\n%s\nstream\n%s\nendstream\nendobj\n" % (
                ref.number,
                serialize({"/Type": Name.XRef, **trailer, "/Index": index,
                           "/W": [1, _OFFSET_BYTES, 2], "/Length": len(rows)}),
                rows)
        out += b"startxref\n%d\n%%%%EOF\n" % start
        return bytes(out)


def _runs(numbers: Sequence[int]) -> list[list[int]]:
    """Object numbers in ascending runs of consecutive numbers (the subsections)."""
    runs: list[list[int]] = []
    for number in numbers:
        if runs and number == runs[-1][-1] + 1:
            runs[-1].append(number)
        else:
            runs.append([number])
    return runs


def _table(offsets: Mapping[int, tuple[int, int]]) -> bytes:
    """Cross-reference table subsections (ISO 32000-1 §7.5.4: 20-byte entries)."""
    out = bytearray()
    for run in _runs(sorted(offsets)):
        out += b"%d %d\n" % (run[0], len(run))
        for number in run:
            offset, generation = offsets[number]
            out += b"%010d %05d n\r\n" % (offset, generation)
    return bytes(out)


def _stream_rows(offsets: Mapping[int, tuple[int, int]]) -> tuple[bytes, list[int]]:
    """A cross-reference stream's rows (type 1, offset, generation: /W [1 4 2]) and its
    /Index (ISO 32000-1 §7.5.8)."""
    rows = bytearray()
    index: list[int] = []
    for run in _runs(sorted(offsets)):
        index += [run[0], len(run)]
        for number in run:
            offset, generation = offsets[number]
            if offset >= 1 << (8 * _OFFSET_BYTES):
                raise NotAppendable("a file of 4 GiB or more")
            rows += b"\x01" + offset.to_bytes(_OFFSET_BYTES, "big") + generation.to_bytes(2, "big")
    return bytes(rows), index
