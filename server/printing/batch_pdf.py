"""The print batch PDF's document level: PDF 2.0 document parts, output intents and XMP.

`server.printing.marks.impose` merges a batch's mail pieces into one marked PDF (pages only);
`finish_print_pdf` then makes it a file a print shop's preflight (Enfocus PitStop, callas
pdfToolbox) and RIP can read as one production job:

* **Version: PDF 2.0** (ISO 32000-2). Document parts (``/DPartRoot``, 14.12) and page-level
  output intents (``/OutputIntents`` in a page, 14.11.5) are PDF 2.0 features; a PDF 1.x
  header on a file using them is wrong. The file is deliberately *not* labelled PDF/VT:
  PDF/VT-1 (ISO 16612-2) requires PDF/X-4 conformance, i.e. a ``GTS_PDFX`` output intent
  with a print (CMYK, output device class) characterization, whereas the bank's documents
  are PDF/A-3 with an sRGB (display class) intent; converting them to the press's condition
  is the print shop's RIP's job, which the sRGB intent tells it how to do. A PDF/VT label
  would make every PDF/X preflight fail the file.
* **Output intents**: the documents' own ``/OutputIntents`` (PDF/A's ``GTS_PDFA1`` sRGB),
  copied with their ICC profiles, one copy per distinct profile. The intent most pieces
  share is the document's; the pages of a piece whose intent differs (a batch mixing
  WeasyPrint's IEC sRGB and Typst's sRGB v4 profile) carry theirs at page level, so every
  page states its colour intent.
* **XMP metadata** (ISO 16684-1; PDF 2.0 deprecates the Info dictionary except its dates):
  ``dc:title`` naming the batch, ``pdf:Producer``, ``xmp:CreatorTool``, create/modify/
  metadata dates = the batch's close time and ``xmpMM:DocumentID`` derived from the batch id,
  so re-building a batch (server.printing.batches) writes the same bytes.

``/DPartRoot`` -> root ``/DPart`` -> one leaf ``/DPart`` per mail piece with ``/DPM`` metadata
(piece and document id, sheets, inserts, postal code, country, envelope, sides, blank pages)
and ``/Start``/``/End`` page references; every page points back to its leaf with ``/DPart``.
"""

from __future__ import annotations

import hashlib
import io
import uuid
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import pikepdf

PDF_VERSION = "2.0"
PRODUCER = "Kanal print batches (pikepdf/qpdf)"
_BATCH_NAMESPACE = uuid.UUID("6f1c7f0e-3b0a-5d7e-9a55-4b414e414c31")  # uuid5 namespace


@dataclass(frozen=True, slots=True)
class BatchFacts:
    """What the batch PDF's XMP says: the batch id, who prints it and when it closed."""

    batch_id: str
    tenant: str
    printshop: str
    profile: str
    closed_at: datetime  # timezone-aware

    @property
    def title(self) -> str:
        return (f"Print batch {self.batch_id} ({self.tenant}, print shop {self.printshop}, "
                f"profile {self.profile})")

    @property
    def document_uuid(self) -> str:
        return f"uuid:{uuid.uuid5(_BATCH_NAMESPACE, self.batch_id)}"


def finish_print_pdf(pdf: bytes, pieces: Sequence[dict[str, Any]], sources: Sequence[bytes],
                     facts: BatchFacts) -> bytes:
    """The imposed batch `pdf` as a PDF 2.0 production file (see the module docstring).

    `pieces`: the manifest's pieces in PDF order (``first_page`` 1-based, ``pages``,
    ``piece_id``, ``document_id``, ``sheets``, ``inserts``, ``postal_code``, ``country``,
    ``envelope``, ``sides``, ``blank_pages``); `sources`: each piece's archived PDF, in the
    same order (its output intents are read from it). Deterministic: the same arguments
    give the same bytes."""
    if len(sources) != len(pieces):
        raise ValueError(f"sources: {len(sources)} PDFs for {len(pieces)} pieces")
    with pikepdf.open(io.BytesIO(pdf)) as doc:
        _add_document_parts(doc, pieces)
        _add_output_intents(doc, pieces, sources)
        _add_metadata(doc, facts)
        out = io.BytesIO()
        doc.save(out, deterministic_id=True, force_version=PDF_VERSION)
    return out.getvalue()


def _add_document_parts(doc: pikepdf.Pdf, pieces: Sequence[dict[str, Any]]) -> None:
    root_node = doc.make_indirect(pikepdf.Dictionary(Type=pikepdf.Name.DPart))
    leaves = []
    for piece in pieces:
        first = piece["first_page"] - 1
        last = first + piece["pages"] - 1
        dpm = pikepdf.Dictionary(
            PieceId=pikepdf.String(piece["piece_id"]),
            DocumentId=pikepdf.String(piece["document_id"]),
            Sheets=piece["sheets"],
            Inserts=pikepdf.Array([pikepdf.String(i) for i in piece["inserts"]]),
            PostalCode=pikepdf.String(piece["postal_code"]),
            Country=pikepdf.String(piece["country"]),
            Envelope=pikepdf.String(piece["envelope"]),
            Sides=pikepdf.Name("/" + piece["sides"].capitalize()),
            BlankPages=pikepdf.Array(piece["blank_pages"]),
        )
        leaf = doc.make_indirect(pikepdf.Dictionary(
            Type=pikepdf.Name.DPart, Parent=root_node, DPM=dpm,
            Start=doc.pages[first].obj, End=doc.pages[last].obj,
        ))
        for index in range(first, last + 1):
            doc.pages[index].obj.DPart = leaf
        leaves.append(leaf)
    root_node.DParts = pikepdf.Array([pikepdf.Array(leaves)])
    doc.Root.DPartRoot = doc.make_indirect(pikepdf.Dictionary(
        Type=pikepdf.Name.DPartRoot, DPartRootNode=root_node, RecordLevel=1,
        NodeNameList=pikepdf.Array([pikepdf.Name.Batch, pikepdf.Name.MailPiece]),
    ))


def _intent_key(intent: pikepdf.Dictionary) -> tuple[str, str, str]:
    """(subtype, sha256 of the ICC profile, condition identifier): what makes two output
    intents the same intent."""
    profile = intent.get("/DestOutputProfile")
    digest = hashlib.sha256(profile.read_bytes()).hexdigest() if profile is not None else ""
    return (str(intent.get("/S", "")), digest, str(intent.get("/OutputConditionIdentifier", "")))


def _add_output_intents(doc: pikepdf.Pdf, pieces: Sequence[dict[str, Any]],
                        sources: Sequence[bytes]) -> None:
    copied: dict[tuple[str, str, str], pikepdf.Object] = {}  # one copy per distinct intent
    per_source: dict[str, tuple[tuple[str, str, str], ...]] = {}
    piece_intents: list[tuple[tuple[str, str, str], ...]] = []
    for source in sources:
        digest = hashlib.sha256(source).hexdigest()
        if digest not in per_source:
            with pikepdf.open(io.BytesIO(source)) as src:
                keys = []
                for intent in src.Root.get("/OutputIntents", pikepdf.Array()):
                    key = _intent_key(intent)
                    if key not in copied:
                        own = intent if intent.is_indirect else src.make_indirect(intent)
                        copied[key] = doc.copy_foreign(own)
                    keys.append(key)
                per_source[digest] = tuple(keys)
        piece_intents.append(per_source[digest])
    counts = Counter(keys for keys in piece_intents if keys)
    if not counts:
        return  # no document states an intent: the batch cannot either
    # the most common intent set is the document's; on a tie, the first piece's in PDF order
    document_keys = max(counts, key=lambda keys: (counts[keys], -piece_intents.index(keys)))
    doc.Root.OutputIntents = pikepdf.Array([copied[k] for k in document_keys])
    for piece, keys in zip(pieces, piece_intents, strict=True):
        if keys and keys != document_keys:
            own = doc.make_indirect(pikepdf.Array([copied[k] for k in keys]))
            first = piece["first_page"] - 1
            for index in range(first, first + piece["pages"]):
                doc.pages[index].obj.OutputIntents = own


def _pdf_date(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("D:%Y%m%d%H%M%SZ")


def _add_metadata(doc: pikepdf.Pdf, facts: BatchFacts) -> None:
    created = facts.closed_at.astimezone(UTC).isoformat(timespec="seconds")
    with doc.open_metadata(set_pikepdf_as_editor=False, update_docinfo=False) as meta:
        meta["dc:title"] = facts.title
        meta["dc:format"] = "application/pdf"
        meta["pdf:Producer"] = PRODUCER
        meta["xmp:CreatorTool"] = PRODUCER
        meta["xmp:CreateDate"] = created
        meta["xmp:ModifyDate"] = created
        meta["xmp:MetadataDate"] = created
        meta["xmpMM:DocumentID"] = facts.document_uuid
        meta["xmpMM:InstanceID"] = facts.document_uuid
    # PDF 2.0 keeps only the dates in the Info dictionary (ISO 32000-2, 14.3.3)
    doc.docinfo = doc.make_indirect(pikepdf.Dictionary(
        CreationDate=pikepdf.String(_pdf_date(facts.closed_at)),
        ModDate=pikepdf.String(_pdf_date(facts.closed_at))))


def read_document_parts(pdf: bytes) -> list[dict[str, Any]]:
    """The DPart leaves of a print PDF: metadata and 1-based page range (for tests, tools)."""
    with pikepdf.open(io.BytesIO(pdf)) as doc:
        numbers = {page.obj.objgen: n for n, page in enumerate(doc.pages, start=1)}
        root = doc.Root.DPartRoot.DPartRootNode
        out = []
        for group in root.DParts:
            for leaf in group:
                dpm = leaf.DPM
                out.append({
                    "piece_id": str(dpm.PieceId), "document_id": str(dpm.DocumentId),
                    "sheets": int(dpm.Sheets), "inserts": [str(i) for i in dpm.Inserts],
                    "postal_code": str(dpm.PostalCode), "country": str(dpm.Country),
                    "sides": str(dpm.Sides)[1:].lower(),
                    "blank_pages": [int(n) for n in dpm.BlankPages],
                    "start": numbers[leaf.Start.objgen], "end": numbers[leaf.End.objgen],
                })
        return out
