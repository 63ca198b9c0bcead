"""Print batches: queued pieces -> one sorted, marked print PDF with PDF/VT-style parts and
manifests, stored in the archive; then the print shop's fetch and acknowledgement.

Closing a batch, in two steps so that a crash in between loses nothing:

1. *claim* (one transaction): the group's pieces get the batch id, the print shop's sheet
   sequence range is allocated (it continues across all batches of that shop and profile,
   so the inserter notices a lost sheet even between batches), and the batch row is
   written in state ``closing``;
2. *build* (re-runnable, deterministic): each piece's archived PDF is fetched (verified
   against its sha256), the pieces are sorted by the postage sort key, `impose()` marks
   them, `server.printing.batch_pdf` makes the result a PDF 2.0 production file (a
   ``/DPartRoot`` tree with one ``/DPart`` per mail piece, ``/DPM`` metadata and
   ``/Start``/``/End`` page references; the documents' output intents; XMP naming the
   batch, dated by its close time, so a rebuild writes the same bytes), the JSON and
   CSV manifests are written, the three files go into the archive, and the batch becomes
   ``ready``. A batch left in ``closing`` is rebuilt by the next `close_due`.

A group is (tenant, print shop, profile, envelope, insert set): pieces that can run
through one inserter set-up. It closes when it reaches `batch_size`, when its oldest
piece waited `cutoff_minutes` (checked when `close_due(now)` is called -- there is no
background timer; the server calls it before listing), or on request (`close_now`).

States only move forward: ready -> fetched -> acknowledged. Spoiled pieces in an
acknowledgement are queued again as new pieces (``<piece>-R<n>``) and closed at once into a
reprint batch with fresh sequence numbers. The acknowledgement is the print trade's
receipt: the printed pieces' print deliveries become `delivered` (`on_printed`); a spoiled
piece's stays `sent` until its reprint is acknowledged.
"""

from __future__ import annotations

import csv
import hashlib
import io
import json
from collections import defaultdict
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import func, insert, select, update
from sqlalchemy.engine import Connection

from archive.store import ArchiveStore
from server import logs
from server.errors import FailedPrecondition, InvalidInput, NotFound
from server.printing.batch_pdf import BatchFacts, finish_print_pdf
from server.printing.marks import MailPiece, impose
from server.printing.omr import datamatrix_payload, sheet_code
from server.printing.queue import (
    PrintQueue,
    PrintSettings,
    print_batches,
    print_pieces,
    print_sequences,
)
from server.printing.sheets import SheetRules, plan_sheets

log = logs.get_logger(__name__)

READY, FETCHED, ACKNOWLEDGED, CLOSING = "ready", "fetched", "acknowledged", "closing"
STATE_ORDER = {CLOSING: 0, READY: 1, FETCHED: 2, ACKNOWLEDGED: 3}
PARTS = {"pdf": ("print.pdf", "application/pdf"),
         "manifest_json": ("manifest.json", "application/json"),
         "manifest_csv": ("manifest.csv", "text/csv")}
SHEET_GRAMS = 5.0  # A4 80 g/m2
ENVELOPE_GRAMS = {"C5": 5.0, "E65": 4.0, "C4": 12.0}
WEIGHT_STEPS = (20, 50, 100, 250, 500, 1000, 2000)  # PostNord / Bring / Posti letter steps
CSV_FIELDS = ("batch_id", "sequence", "piece_id", "document_id", "first_page", "pages", "sheets",
              "sides", "blank_pages", "envelope", "inserts", "feeders", "country", "postal_code",
              "weight_class", "omr", "datamatrix")


@dataclass(frozen=True, slots=True)
class BatchInfo:
    batch_id: str
    tenant: str
    printshop: str
    profile: str
    envelope: str
    inserts: tuple[str, ...]
    state: str
    reason: str
    closed_at: datetime
    pieces: int
    sheets: int
    pages: int
    first_sequence: int
    last_sequence: int
    files: dict[str, dict[str, Any]]
    spoiled: tuple[str, ...] | None
    reprint_batch_id: str | None


def batch_key(tenant: str, printshop: str, batch_id: str, name: str) -> str:
    from archive.keys import encode_segment

    return f"print-batches/{encode_segment(tenant)}/{encode_segment(printshop)}/{batch_id}/{name}"


def weight_class(sheets: int, envelope: str, insert_grams: float) -> str:
    grams = sheets * SHEET_GRAMS + ENVELOPE_GRAMS.get(envelope, 10.0) + insert_grams
    return f"{next((s for s in WEIGHT_STEPS if grams <= s), WEIGHT_STEPS[-1])}g"


class BatchService:
    def __init__(self, queue: PrintQueue, store: ArchiveStore, *,
                 new_id: Callable[[], str] | None = None):
        from ulid import ULID

        self.queue = queue
        self.settings: PrintSettings = queue.settings
        self.engine = queue.engine
        self.store = store
        self.new_id = new_id or (lambda: str(ULID()))
        # Told, inside the acknowledgement's transaction, which documents' pieces were
        # printed: the delivery stage records the print trade's receipt (server/app.py).
        self.on_printed: Callable[[Connection, BatchInfo, list[str]], None] | None = None

    # --- closing ---------------------------------------------------------------------------

    def close_due(self, now: datetime) -> list[str]:
        """Close every group that is full or past its cut-off; finish interrupted builds."""
        closed = [self._build(b) for b in self._batch_ids(CLOSING)]
        cutoff = timedelta(minutes=self.settings.cutoff_minutes)
        for key, rows in self._groups().items():
            while len(rows) >= self.settings.batch_size:
                closed.append(self._close(key, rows[: self.settings.batch_size], "size", now))
                rows = rows[self.settings.batch_size:]
            if rows and min(r["queued_at"] for r in rows) + cutoff <= now:
                closed.append(self._close(key, rows, "cutoff", now))
        return closed

    def close_now(self, now: datetime, tenant: str | None = None) -> list[str]:
        """Close every open group (of `tenant`, or all) now, whatever its size."""
        closed = [self._build(b) for b in self._batch_ids(CLOSING)]
        for key, rows in self._groups(tenant).items():
            for start in range(0, len(rows), self.settings.batch_size):
                closed.append(self._close(
                    key, rows[start: start + self.settings.batch_size], "request", now))
        return closed

    def _groups(self, tenant: str | None = None) -> dict[tuple[str, ...], list[dict[str, Any]]]:
        groups: dict[tuple[str, ...], list[dict[str, Any]]] = defaultdict(list)
        pending = sorted(self.queue.pending(tenant), key=lambda r: (r["queued_at"], r["piece_id"]))
        for row in pending:
            key = (row["tenant"], row["printshop"], row["profile"], row["envelope"], row["inserts"])
            groups[key].append(row)
        return groups

    def _batch_ids(self, state: str) -> list[str]:
        with self.engine.begin() as conn:
            return list(conn.execute(
                select(print_batches.c.batch_id).where(print_batches.c.state == state)
            ).scalars())

    def _close(self, key: tuple[str, ...], rows: list[dict[str, Any]], reason: str,
               now: datetime) -> str:
        tenant, printshop, profile_id, envelope, inserts = key
        profile = self.settings.profiles[profile_id]
        sheets = sum(plan_sheets(r["pages"], profile.duplex, SheetRules.from_text(r["sides"])
                                 ).sheets for r in rows)
        batch_id = self.new_id()
        with self.engine.begin() as conn:
            claimed = conn.execute(
                update(print_pieces)
                .where(print_pieces.c.piece_id.in_([r["piece_id"] for r in rows]),
                       print_pieces.c.batch_id.is_(None))
                .values(batch_id=batch_id)
            ).rowcount
            if claimed != len(rows):
                raise FailedPrecondition("another closer took some of these pieces; retry")
            first = self._allocate(conn, printshop, profile_id, sheets)
            conn.execute(insert(print_batches).values(
                batch_id=batch_id, tenant=tenant, printshop=printshop, profile=profile_id,
                envelope=envelope, inserts=inserts, state=CLOSING, reason=reason,
                closed_at=now, pieces=len(rows), sheets=sheets, pages=0,
                first_sequence=first, last_sequence=first + sheets - 1, files="{}",
            ))
        return self._build(batch_id)

    @staticmethod
    def _allocate(conn: Any, printshop: str, profile: str, sheets: int) -> int:
        where = (print_sequences.c.printshop == printshop) & (print_sequences.c.profile == profile)
        current = conn.execute(
            select(print_sequences.c.next_sequence).where(where).with_for_update()
        ).scalar()
        if current is None:
            conn.execute(insert(print_sequences).values(
                printshop=printshop, profile=profile, next_sequence=sheets))
            return 0
        conn.execute(update(print_sequences).where(where).values(next_sequence=current + sheets))
        return int(current)

    def _build(self, batch_id: str) -> str:
        with self.engine.begin() as conn:
            batch = conn.execute(
                select(print_batches).where(print_batches.c.batch_id == batch_id)
            ).mappings().one()
            rows = [dict(r) for r in conn.execute(
                select(print_pieces).where(print_pieces.c.batch_id == batch_id)).mappings()]
        rows.sort(key=self.settings.sort_key)
        profile = self.settings.profiles[batch["profile"]]
        pdfs: dict[str, bytes] = {}
        pieces = []
        for row in rows:
            if row["archive_key"] not in pdfs:
                pdfs[row["archive_key"]] = self.store.get(
                    row["archive_key"], expected_sha256=row["pdf_sha256"])
            inserts = [i for i in row["inserts"].split(",") if i]
            pieces.append(MailPiece(
                piece_id=row["piece_id"], pdf=pdfs[row["archive_key"]],
                feeders=self.settings.feeders(inserts, profile.id), envelope=row["envelope"],
                sheet_rules=SheetRules.from_text(row["sides"])))
        imposed = impose(pieces, profile, first_sequence=batch["first_sequence"])
        manifest = self._manifest(batch, rows, pieces, imposed)
        pdf = finish_print_pdf(
            imposed.pdf, manifest["pieces"], [pdfs[row["archive_key"]] for row in rows],
            BatchFacts(batch_id, batch["tenant"], batch["printshop"], batch["profile"],
                       batch["closed_at"]))
        manifest["pdf_sha256"] = hashlib.sha256(pdf).hexdigest()
        manifest_json = json.dumps(manifest, indent=2, ensure_ascii=False).encode()
        files = {}
        retain = datetime.now(UTC) + timedelta(days=self.settings.retention_days)
        for part, content in (("pdf", pdf), ("manifest_json", manifest_json),
                              ("manifest_csv", manifest_csv(manifest))):
            name, media_type = PARTS[part]
            key = batch_key(batch["tenant"], batch["printshop"], batch_id, name)
            stored = self.store.put(key, content, media_type=media_type, retain_until=retain,
                                    metadata={"tenant": batch["tenant"], "batch-id": batch_id,
                                              "printshop": batch["printshop"], "part": part})
            files[part] = {"key": key, "sha256": stored.sha256, "size": stored.size}
        with self.engine.begin() as conn:
            conn.execute(update(print_batches).where(print_batches.c.batch_id == batch_id).values(
                state=READY, pages=imposed.total_pages, files=json.dumps(files)))
        log.info("print batch closed", batch_id=batch_id, printshop=batch["printshop"],
                 pieces=len(rows), sheets=imposed.total_sheets, reason=batch["reason"])
        return batch_id

    def _manifest(self, batch: Any, rows: list[dict[str, Any]], pieces: Sequence[MailPiece],
                  imposed: Any) -> dict[str, Any]:
        profile = self.settings.profiles[batch["profile"]]
        insert_counts: dict[str, int] = defaultdict(int)
        out = []
        for row, piece, placed in zip(rows, pieces, imposed.pieces, strict=True):
            inserts = [i for i in row["inserts"].split(",") if i]
            for i in inserts:
                insert_counts[i] += 1
            grams = sum(self.settings.inserts[i].grams for i in inserts)
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
            "closed_at": batch["closed_at"].isoformat(), "sort": list(self.settings.sort),
            "pdf_sha256": "",
            "counts": {"pieces": len(out), "sheets": imposed.total_sheets,
                       "pages": imposed.total_pages,
                       "inserts": dict(sorted(insert_counts.items()))},
            "first_sequence": batch["first_sequence"], "last_sequence": imposed.last_sequence,
            "pieces": out,
        }

    # --- reading and acknowledging ------------------------------------------------------------

    def list(self, tenant: str, printshop: str | None,
             states: Sequence[str] = ()) -> list[BatchInfo]:
        query = select(print_batches).where(print_batches.c.tenant == tenant,
                                            print_batches.c.state != CLOSING)
        if printshop is not None:
            query = query.where(print_batches.c.printshop == printshop)
        if states:
            query = query.where(print_batches.c.state.in_(list(states)))
        with self.engine.begin() as conn:
            rows = conn.execute(query.order_by(print_batches.c.batch_id)).mappings().all()
        return [_info(r) for r in rows]

    def get(self, tenant: str, printshop: str | None, batch_id: str) -> BatchInfo:
        """A batch the caller may see. Another tenant's or another print shop's batch is
        NOT_FOUND, exactly like an unknown id, so probing ids learns nothing."""
        with self.engine.begin() as conn:
            row = conn.execute(
                select(print_batches).where(print_batches.c.batch_id == batch_id)
            ).mappings().one_or_none()
        if (row is None or row["tenant"] != tenant or row["state"] == CLOSING
                or (printshop is not None and row["printshop"] != printshop)):
            raise NotFound(f"no print batch {batch_id!r}")
        return _info(row)

    def read(self, info: BatchInfo, part: str) -> bytes:
        meta = info.files[part]
        return self.store.get(meta["key"], expected_sha256=meta["sha256"])

    def mark_fetched(self, batch_id: str) -> None:
        with self.engine.begin() as conn:
            conn.execute(update(print_batches).where(
                print_batches.c.batch_id == batch_id, print_batches.c.state == READY
            ).values(state=FETCHED))

    def acknowledge(self, info: BatchInfo, spoiled: Sequence[str], now: datetime) -> BatchInfo:
        """Printed and handed to the post, except `spoiled` pieces, which are reprinted.
        The printed pieces' documents go to `on_printed` in the same transaction, so the
        acknowledgement and the deliveries' receipts commit together."""
        spoiled_set = tuple(sorted(set(spoiled)))
        if info.state == ACKNOWLEDGED:
            if info.spoiled != spoiled_set:
                raise FailedPrecondition(
                    f"print batch {info.batch_id} was already acknowledged with other spoilage")
            return info  # the same acknowledgement again: idempotent
        if info.state != FETCHED:
            raise FailedPrecondition(f"print batch {info.batch_id} is {info.state}: fetch it first")
        with self.engine.begin() as conn:
            pieces = {r["piece_id"]: dict(r) for r in conn.execute(
                select(print_pieces).where(print_pieces.c.batch_id == info.batch_id)).mappings()}
        for n, piece_id in enumerate(spoiled):
            if piece_id not in pieces:
                raise InvalidInput.field(f"spoiled_piece_ids[{n}]",
                                         f"{piece_id!r} is not a piece of this batch")
        reprint_id = None
        if spoiled_set:
            rows = []
            with self.engine.begin() as conn:
                for piece_id in spoiled_set:
                    original = pieces[piece_id]
                    root = original["reprint_of"] or original["document_id"]
                    count = conn.execute(select(func.count()).select_from(print_pieces).where(
                        print_pieces.c.reprint_of == root)).scalar_one()
                    row = {**original, "piece_id": f"{root}-R{count + 1}", "batch_id": None,
                           "reprint_of": root, "queued_at": now}
                    conn.execute(insert(print_pieces).values(**row))
                    rows.append(row)
            key = (info.tenant, info.printshop, info.profile, info.envelope, ",".join(info.inserts))
            reprint_id = self._close(key, rows, "reprint", now)
        printed = sorted({p["document_id"] for piece_id, p in pieces.items()
                          if piece_id not in spoiled_set})
        with self.engine.begin() as conn:
            moved = conn.execute(update(print_batches).where(
                print_batches.c.batch_id == info.batch_id, print_batches.c.state == FETCHED
            ).values(state=ACKNOWLEDGED, acknowledged_at=now, spoiled=json.dumps(spoiled_set),
                     reprint_batch_id=reprint_id))
            if moved.rowcount == 1 and self.on_printed is not None:
                self.on_printed(conn, info, printed)
        log.info("print batch acknowledged", batch_id=info.batch_id, spoiled=len(spoiled_set),
                 reprint_batch_id=reprint_id)
        return self.get(info.tenant, info.printshop, info.batch_id)


def _info(row: Any) -> BatchInfo:
    return BatchInfo(
        batch_id=row["batch_id"], tenant=row["tenant"], printshop=row["printshop"],
        profile=row["profile"], envelope=row["envelope"],
        inserts=tuple(i for i in row["inserts"].split(",") if i), state=row["state"],
        reason=row["reason"], closed_at=row["closed_at"], pieces=row["pieces"],
        sheets=row["sheets"], pages=row["pages"], first_sequence=row["first_sequence"],
        last_sequence=row["last_sequence"], files=json.loads(row["files"]),
        spoiled=tuple(json.loads(row["spoiled"])) if row["spoiled"] is not None else None,
        reprint_batch_id=row["reprint_batch_id"],
    )


# --- files ------------------------------------------------------------------------------------


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
