"""A closed print batch's files: its pieces' archived PDFs -> one sorted, marked print PDF
with PDF/VT-style document parts, a JSON and a CSV manifest, stored in the archive.

The *build* step of closing a batch (server.printing.batches): the pieces are sorted by the
postage sort key, `impose()` marks them, `server.printing.batch_pdf` makes the result a PDF
2.0 production file, and the manifests list every piece with its sequence, sheets, inserts,
feeders, weight class, OMR code and DataMatrix payloads.
"""

from __future__ import annotations

import csv
import hashlib
import io
import json
from collections import defaultdict
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

from archive.store import ArchiveStore
from server.printing.batch_pdf import BatchFacts, finish_print_pdf
from server.printing.marks import MailPiece, impose
from server.printing.omr import datamatrix_payload, sheet_code
from server.printing.queue import PrintSettings
from server.printing.sheets import SheetRules

PARTS = {"pdf": ("print.pdf", "application/pdf"),
         "manifest_json": ("manifest.json", "application/json"),
         "manifest_csv": ("manifest.csv", "text/csv")}
SHEET_GRAMS = 5.0  # A4 80 g/m2
# Every envelope id of the built-in profiles (server/printing/profiles/*.toml). DL is E65's
# size (110 x 220 mm), C4-DIN a C4 with the DIN 680 window; an id missing here is weighed as
# 10 g, which put every 3-sheet DL letter (15 + 10 = 25 g) in the 50 g step instead of 20 g.
ENVELOPE_GRAMS = {"C5": 5.0, "E65": 4.0, "DL": 4.0, "C4": 12.0, "C4-DIN": 12.0}
WEIGHT_STEPS = (20, 50, 100, 250, 500, 1000, 2000)  # PostNord / Bring / Posti letter steps
CSV_FIELDS = ("batch_id", "sequence", "piece_id", "document_id", "first_page", "pages", "sheets",
              "sides", "blank_pages", "envelope", "inserts", "feeders", "country", "postal_code",
              "weight_class", "omr", "datamatrix")


def batch_key(tenant: str, printshop: str, batch_id: str, name: str) -> str:
    from archive.keys import encode_segment

    return f"print-batches/{encode_segment(tenant)}/{encode_segment(printshop)}/{batch_id}/{name}"


def weight_class(sheets: int, envelope: str, insert_grams: float) -> str:
    grams = sheets * SHEET_GRAMS + ENVELOPE_GRAMS.get(envelope, 10.0) + insert_grams
    return f"{next((s for s in WEIGHT_STEPS if grams <= s), WEIGHT_STEPS[-1])}g"


def make_batch_files(batch: Mapping[str, Any], rows: list[dict[str, Any]],
                     settings: PrintSettings, store: ArchiveStore
                     ) -> tuple[int, int, dict[str, dict[str, Any]]]:
    """A ``closing`` batch's row and its claimed pieces' rows -> the print PDF, the JSON and
    the CSV manifest, stored in the archive (object lock for `retention_days`) -> (pages,
    sheets, {part: {key, sha256, size}}). `rows` is sorted in place by the sort key.
    Deterministic for the same rows: a rebuild writes the same bytes (the archive returns
    an identical object unchanged). Raises ArchiveError (a piece's PDF missing or not
    matching its sha256, S3 away)."""
    batch_id = batch["batch_id"]
    rows.sort(key=settings.sort_key)
    profile = settings.profiles[batch["profile"]]
    pdfs: dict[str, bytes] = {}
    pieces = []
    for row in rows:
        if row["archive_key"] not in pdfs:
            pdfs[row["archive_key"]] = store.get(
                row["archive_key"], expected_sha256=row["pdf_sha256"])
        inserts = [i for i in row["inserts"].split(",") if i]
        pieces.append(MailPiece(
            piece_id=row["piece_id"], pdf=pdfs[row["archive_key"]],
            feeders=settings.feeders(inserts, profile.id), envelope=row["envelope"],
            sheet_rules=SheetRules.from_text(row["sides"])))
    imposed = impose(pieces, profile, first_sequence=batch["first_sequence"])
    manifest = _manifest(settings, batch, rows, pieces, imposed)
    pdf = finish_print_pdf(
        imposed.pdf, manifest["pieces"], [pdfs[row["archive_key"]] for row in rows],
        BatchFacts(batch_id, batch["tenant"], batch["printshop"], batch["profile"],
                   batch["closed_at"]))
    manifest["pdf_sha256"] = hashlib.sha256(pdf).hexdigest()
    manifest_json = json.dumps(manifest, indent=2, ensure_ascii=False).encode()
    files = {}
    retain = datetime.now(UTC) + timedelta(days=settings.retention_days)
    for part, content in (("pdf", pdf), ("manifest_json", manifest_json),
                          ("manifest_csv", manifest_csv(manifest))):
        name, media_type = PARTS[part]
        key = batch_key(batch["tenant"], batch["printshop"], batch_id, name)
        stored = store.put(key, content, media_type=media_type, retain_until=retain,
                           metadata={"tenant": batch["tenant"], "batch-id": batch_id,
                                     "printshop": batch["printshop"], "part": part})
        files[part] = {"key": key, "sha256": stored.sha256, "size": stored.size}
    return imposed.total_pages, imposed.total_sheets, files


def _manifest(settings: PrintSettings, batch: Mapping[str, Any], rows: list[dict[str, Any]],
              pieces: Sequence[MailPiece], imposed: Any) -> dict[str, Any]:
    profile = settings.profiles[batch["profile"]]
    insert_counts: dict[str, int] = defaultdict(int)
    out = []
    for row, piece, placed in zip(rows, pieces, imposed.pieces, strict=True):
        inserts = [i for i in row["inserts"].split(",") if i]
        for i in inserts:
            insert_counts[i] += 1
        grams = sum(settings.inserts[i].grams for i in inserts)
        omr, matrix = [], []
        for sheet in range(1, placed.sheets + 1):
            sequence = placed.sequence_start + sheet - 1
            omr.append(list(sheet_code(profile.omr, sheet_in_piece=sheet,
                                       sheets_in_piece=placed.sheets, sequence=sequence,
                                       feeders=piece.feeders)))
            if profile.datamatrix is not None:
                matrix.append(datamatrix_payload(piece.piece_id, sheet, placed.sheets,
                                                 piece.feeders, sequence))
        out.append({
            "sequence": placed.sequence_start, "piece_id": row["piece_id"],
            "document_id": row["document_id"], "first_page": placed.first_page,
            "pages": placed.pages, "sheets": placed.sheets,
            # as printed: "duplex" or "simplex" sheets, the blank sides Kanal inserted
            # (print PDF page numbers) and the document's rules that asked for them
            "sides": "duplex" if placed.duplex else "simplex",
            "blank_pages": list(placed.blank_pages),
            "sheet_rules": row["sides"] or SheetRules().to_text(),
            "envelope": placed.envelope,
            "inserts": inserts, "feeders": sorted(piece.feeders),
            "country": row["country"], "postal_code": row["postal_code"],
            "weight_class": weight_class(placed.sheets, placed.envelope, grams),
            "omr": omr, "datamatrix": matrix,
        })
    return {
        "batch_id": batch["batch_id"], "tenant": batch["tenant"],
        "printshop": batch["printshop"], "profile": batch["profile"],
        "envelope": batch["envelope"], "reason": batch["reason"],
        "closed_at": batch["closed_at"].isoformat(), "sort": list(settings.sort),
        "pdf_sha256": "",
        "counts": {"pieces": len(out), "sheets": imposed.total_sheets,
                   "pages": imposed.total_pages,
                   "inserts": dict(sorted(insert_counts.items()))},
        "first_sequence": batch["first_sequence"], "last_sequence": imposed.last_sequence,
        "pieces": out,
    }


def manifest_csv(manifest: dict[str, Any]) -> bytes:
    """One row per piece under a header line, as spreadsheets and inserter software read
    it; the batch id is a column (the batch totals and pdf sha256 are in the JSON manifest)."""
    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=CSV_FIELDS, lineterminator="\n")
    writer.writeheader()
    for piece in manifest["pieces"]:
        writer.writerow({
            "batch_id": manifest["batch_id"],
            **{k: piece[k] for k in CSV_FIELDS if k not in ("batch_id", "inserts", "feeders",
                                                          "omr", "datamatrix", "blank_pages")},
            "blank_pages": " ".join(map(str, piece["blank_pages"])),
            "inserts": " ".join(piece["inserts"]),
            "feeders": " ".join(map(str, piece["feeders"])),
            "omr": ";".join("+".join(code) for code in piece["omr"]),
            "datamatrix": ";".join(piece["datamatrix"]),
        })
    return out.getvalue().encode()
