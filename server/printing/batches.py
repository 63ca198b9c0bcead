"""Print batches: queued pieces -> one sorted, marked print PDF with PDF/VT-style parts and
manifests, stored in the archive; then the print shop's fetch and acknowledgement.

Closing a batch, in two steps so that a crash in between loses nothing:

1. *claim* (one transaction): the group's pieces get the batch id, the print shop's sheet
   sequence range is allocated (it continues across all batches of that shop and profile,
   so the inserter notices a lost sheet even between batches), and the batch row is
   written in state ``closing``. A piece is claimed only while its ``batch_id`` is NULL
   (compare-and-set; on PostgreSQL the pieces are locked ``FOR UPDATE SKIP LOCKED`` first,
   so two closers never wait on each other): a claim that finds any of its pieces taken
   rolls back whole and is left to the closer that took them, so every piece is in exactly
   one batch, with several servers on one database;
2. *build* (re-runnable, deterministic): each piece's archived PDF is fetched (verified
   against its sha256), the pieces are sorted by the postage sort key, `impose()` marks
   them, `server.printing.batch_pdf` makes the result a PDF 2.0 production file (a
   ``/DPartRoot`` tree with one ``/DPart`` per mail piece, ``/DPM`` metadata and
   ``/Start``/``/End`` page references; the documents' output intents; XMP naming the
   batch, dated by its close time, so a rebuild writes the same bytes), the JSON and
   CSV manifests are written, the three files go into the archive, and the batch becomes
   ``ready`` (only from ``closing``). One builder at a time: in this process a batch being
   built is skipped; on PostgreSQL the builder holds the batch row (``FOR UPDATE SKIP
   LOCKED``) until it is ready, so another server skips it, and a builder that dies lets go
   of it with its connection. A batch left in ``closing`` is rebuilt by the next
   `close_due` or `close_now`, of any server.

A group is (tenant, print shop, profile, envelope, insert set): pieces that can run
through one inserter set-up. It closes when it reaches `batch_size` and when its oldest
piece waited `cutoff_minutes` -- both found by `close_due(now)`, which the server's
background closer (server.printing.closer) calls every `close_poll_seconds` -- or on
request (`close_now`: `kanal print close`). Listing only reads.

States only move forward: ready -> fetched -> acknowledged. Spoiled pieces in an
acknowledgement are queued again as new pieces (``<piece>-R<n>``) and closed at once into a
reprint batch with fresh sequence numbers. The acknowledgement is the print trade's
receipt: the printed pieces' print deliveries become `delivered` (`on_printed`); a spoiled
piece's stays `sent` until its reprint is acknowledged.
"""

from __future__ import annotations

import json
import threading
from collections import defaultdict
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import func, insert, select, update
from sqlalchemy.engine import Connection

from archive.store import ArchiveStore
from server import logs
from server.errors import FailedPrecondition, InvalidInput, NotFound
from server.printing.batch_files import make_batch_files
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
GROUP_COLUMNS = ("tenant", "printshop", "profile", "envelope", "inserts")
CLOSE_NOW_ROUNDS = 5  # close_now reads what is left again after losing pieces to a closer


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


class _Taken(Exception):
    """A claim found pieces another closer had claimed: its transaction rolls back."""


class BatchService:
    def __init__(self, queue: PrintQueue, store: ArchiveStore, *,
                 new_id: Callable[[], str] | None = None):
        from ulid import ULID

        self.queue = queue
        self.settings: PrintSettings = queue.settings
        self.engine = queue.engine
        self.store = store
        self.new_id = new_id or (lambda: str(ULID()))
        self.postgres = self.engine.dialect.name == "postgresql"
        self._guard = threading.Lock()
        self._building: set[str] = set()  # batch ids this process is building now
        # Told, inside the acknowledgement's transaction, which documents' pieces were
        # printed: the delivery stage records the print trade's receipt (server/app.py).
        self.on_printed: Callable[[Connection, BatchInfo, list[str]], None] | None = None

    # --- closing ---------------------------------------------------------------------------

    def close_due(self, now: datetime,
                  stopping: Callable[[], bool] = lambda: False) -> list[str]:
        """Finish the builds left ``closing``, then close every group that is full (as many
        batches of `batch_size` as it fills) or whose oldest piece has waited
        `cutoff_minutes` at `now` (UTC). -> the ids of the batches this call built.

        `stopping` is asked between batches: a stopping server ends its round early, and
        what it leaves is closed by the next round (of any server). Pieces another closer
        claimed first are its batch; the group is looked at again next round. Raises what
        the archive or the index raise (ArchiveError, SQLAlchemyError): a batch whose build
        failed stays ``closing`` and is built again next time."""
        closed = self._finish_interrupted(stopping)
        cutoff = timedelta(minutes=self.settings.cutoff_minutes)
        size = self.settings.batch_size
        for key, count, oldest in self._pending_groups():
            if count < size and oldest + cutoff > now:
                continue
            rows = self._group_rows(key)
            while rows and not stopping():
                if len(rows) < size and min(r["queued_at"] for r in rows) + cutoff > now:
                    break
                batch_id = self._close(key, rows[:size], "size" if len(rows) >= size
                                       else "cutoff", now)
                if batch_id is None:
                    break  # another closer took some: look again next round
                closed.append(batch_id)
                rows = rows[size:]
        return closed

    def close_now(self, now: datetime, tenant: str | None = None) -> list[str]:
        """Close every open group (of `tenant`, or all) now, whatever its size -> the ids of
        the batches this call closed. Pieces a background closer took meanwhile are in its
        batch (ready moments later), not in this call's answer."""
        closed = self._finish_interrupted()
        for _ in range(CLOSE_NOW_ROUNDS):
            lost = False
            for key, rows in self._groups(tenant).items():
                for start in range(0, len(rows), self.settings.batch_size):
                    batch_id = self._close(
                        key, rows[start: start + self.settings.batch_size], "request", now)
                    if batch_id is None:
                        lost = True  # read again what is left
                        break
                    closed.append(batch_id)
            if not lost:
                break
        return closed

    def _finish_interrupted(self, stopping: Callable[[], bool] = lambda: False) -> list[str]:
        """Build the batches left ``closing`` that no one is building -> those built. One
        that fails (a piece's PDF gone from the archive, S3 away) is logged and left for
        the next round: it holds up no other group."""
        built = []
        for batch_id in self._batch_ids(CLOSING):
            if stopping():
                break
            try:
                if self._build(batch_id):
                    built.append(batch_id)
            except Exception as exc:  # noqa: BLE001 - logged; built again next round
                log.error("print batch build failed; trying again later", batch_id=batch_id,
                          error=repr(exc)[:500])
        return built

    def _pending_groups(self) -> list[tuple[tuple[str, ...], int, datetime]]:
        """[(group key, pieces waiting, oldest queued_at)]: one aggregate over the waiting
        pieces (found by `ix_print_pieces_batch`), so a round with nothing due reads no
        piece rows."""
        key = [print_pieces.c[c] for c in GROUP_COLUMNS]
        query = (select(*key, func.count(), func.min(print_pieces.c.queued_at))
                 .where(print_pieces.c.batch_id.is_(None)).group_by(*key))
        with self.engine.begin() as conn:
            return [(tuple(r[:-2]), int(r[-2]), r[-1]) for r in conn.execute(query)]

    def _group_rows(self, key: tuple[str, ...]) -> list[dict[str, Any]]:
        """The group's waiting pieces, oldest first (queued_at, piece id)."""
        query = select(print_pieces).where(
            print_pieces.c.batch_id.is_(None),
            *(print_pieces.c[c] == v for c, v in zip(GROUP_COLUMNS, key, strict=True)))
        with self.engine.begin() as conn:
            rows = [dict(r) for r in conn.execute(query).mappings()]
        return sorted(rows, key=lambda r: (r["queued_at"], r["piece_id"]))

    def _groups(self, tenant: str | None = None) -> dict[tuple[str, ...], list[dict[str, Any]]]:
        groups: dict[tuple[str, ...], list[dict[str, Any]]] = defaultdict(list)
        pending = sorted(self.queue.pending(tenant), key=lambda r: (r["queued_at"], r["piece_id"]))
        for row in pending:
            groups[tuple(row[c] for c in GROUP_COLUMNS)].append(row)
        return groups

    def _batch_ids(self, state: str) -> list[str]:
        with self.engine.begin() as conn:
            return list(conn.execute(
                select(print_batches.c.batch_id).where(print_batches.c.state == state)
            ).scalars())

    def _close(self, key: tuple[str, ...], rows: list[dict[str, Any]], reason: str,
               now: datetime) -> str | None:
        """Claim `rows` into a new batch and build it -> its id; None (nothing changed) when
        another closer claimed any of them first."""
        batch_id = self.new_id()
        try:
            with self.engine.begin() as conn:
                if not self._claim(conn, batch_id, [r["piece_id"] for r in rows]):
                    raise _Taken  # roll the partial claim back
                self._open(conn, batch_id, key, rows, reason, now)
        except _Taken:
            log.info("print pieces taken by another closer", printshop=key[1],
                     pieces=len(rows), reason=reason)
            return None
        self._build(batch_id)
        return batch_id

    def _claim(self, conn: Connection, batch_id: str, piece_ids: list[str]) -> bool:
        """Give every one of `piece_ids` still waiting the batch id -> whether all were."""
        waiting = (print_pieces.c.piece_id.in_(piece_ids), print_pieces.c.batch_id.is_(None))
        if self.postgres:  # skip what another claim holds instead of waiting for it
            free = conn.execute(select(print_pieces.c.piece_id).where(*waiting)
                                .with_for_update(skip_locked=True)).all()
            if len(free) != len(piece_ids):
                return False
        claimed = conn.execute(
            update(print_pieces).where(*waiting).values(batch_id=batch_id)).rowcount
        return claimed == len(piece_ids)

    def _open(self, conn: Connection, batch_id: str, key: tuple[str, ...],
              rows: list[dict[str, Any]], reason: str, now: datetime) -> None:
        """The batch row of claimed `rows`, ``closing``, with its sheet sequence range."""
        tenant, printshop, profile_id, envelope, inserts = key
        profile = self.settings.profiles[profile_id]
        sheets = sum(plan_sheets(r["pages"], profile.duplex, SheetRules.from_text(r["sides"])
                                 ).sheets for r in rows)
        first = self._allocate(conn, printshop, profile_id, sheets)
        conn.execute(insert(print_batches).values(
            batch_id=batch_id, tenant=tenant, printshop=printshop, profile=profile_id,
            envelope=envelope, inserts=inserts, state=CLOSING, reason=reason,
            closed_at=now, pieces=len(rows), sheets=sheets, pages=0,
            first_sequence=first, last_sequence=first + sheets - 1, files="{}",
        ))

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

    def _build(self, batch_id: str) -> bool:
        """Build a ``closing`` batch and make it ``ready`` -> False when it is not
        ``closing`` any more or someone else is building it (this process, or on PostgreSQL
        another holding its row)."""
        with self._guard:
            if batch_id in self._building:
                return False
            self._building.add(batch_id)
        try:
            with self.engine.begin() as conn:  # on PostgreSQL: holds the row until ready
                query = select(print_batches).where(print_batches.c.batch_id == batch_id,
                                                    print_batches.c.state == CLOSING)
                if self.postgres:
                    query = query.with_for_update(skip_locked=True)
                batch = conn.execute(query).mappings().one_or_none()
                if batch is None:
                    return False
                rows = [dict(r) for r in conn.execute(
                    select(print_pieces).where(print_pieces.c.batch_id == batch_id)).mappings()]
                pages, sheets, files = make_batch_files(batch, rows, self.settings, self.store)
                conn.execute(update(print_batches).where(
                    print_batches.c.batch_id == batch_id, print_batches.c.state == CLOSING
                ).values(state=READY, pages=pages, files=json.dumps(files)))
        finally:
            with self._guard:
                self._building.discard(batch_id)
        log.info("print batch closed", batch_id=batch_id, printshop=batch["printshop"],
                 pieces=len(rows), sheets=sheets, reason=batch["reason"])
        return True

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

        One transaction moves the batch ``fetched -> acknowledged`` (compare-and-set), queues
        the spoiled pieces again in a reprint batch (``closing``) and tells `on_printed` the
        printed pieces' documents, so the acknowledgement, the reprint and the deliveries'
        receipts commit together, once: a second acknowledgement (a retry after a lost
        answer or a timeout, sent while the first is still building its reprint) finds the
        batch acknowledged and answers as the first did, never queueing the spoiled pieces
        a second time. The reprint batch is built after the commit; a build that fails
        (S3 away) leaves it ``closing`` for the closer's next round, as any batch."""
        spoiled_set = tuple(sorted(set(spoiled)))
        if info.state == ACKNOWLEDGED:
            return _acknowledged_again(info, spoiled_set)
        if info.state != FETCHED:
            raise FailedPrecondition(f"print batch {info.batch_id} is {info.state}: fetch it first")
        with self.engine.begin() as conn:
            pieces = {r["piece_id"]: dict(r) for r in conn.execute(
                select(print_pieces).where(print_pieces.c.batch_id == info.batch_id)).mappings()}
        for n, piece_id in enumerate(spoiled):
            if piece_id not in pieces:
                raise InvalidInput.field(f"spoiled_piece_ids[{n}]",
                                         f"{piece_id!r} is not a piece of this batch")
        reprint_id = self.new_id() if spoiled_set else None
        printed = sorted({p["document_id"] for piece_id, p in pieces.items()
                          if piece_id not in spoiled_set})
        with self.engine.begin() as conn:
            moved = conn.execute(update(print_batches).where(
                print_batches.c.batch_id == info.batch_id, print_batches.c.state == FETCHED
            ).values(state=ACKNOWLEDGED, acknowledged_at=now, spoiled=json.dumps(spoiled_set),
                     reprint_batch_id=reprint_id)).rowcount == 1
            if moved:
                if reprint_id is not None:
                    self._queue_reprint(conn, info, reprint_id, [pieces[p] for p in spoiled_set],
                                        now)
                if self.on_printed is not None:
                    self.on_printed(conn, info, printed)
        if not moved:  # acknowledged meanwhile, by a call that was not done when this began
            return _acknowledged_again(self.get(info.tenant, info.printshop, info.batch_id),
                                       spoiled_set)
        if reprint_id is not None:
            try:
                self._build(reprint_id)
            except Exception as exc:  # noqa: BLE001 - committed: the closer builds it later
                log.error("print batch build failed; trying again later", batch_id=reprint_id,
                          error=repr(exc)[:500])
        log.info("print batch acknowledged", batch_id=info.batch_id, spoiled=len(spoiled_set),
                 reprint_batch_id=reprint_id)
        return self.get(info.tenant, info.printshop, info.batch_id)

    def _queue_reprint(self, conn: Connection, info: BatchInfo, reprint_id: str,
                       originals: list[dict[str, Any]], now: datetime) -> None:
        """Spoiled pieces queued again as ``<document>-R<n>``, claimed at once by the reprint
        batch's ``closing`` row (no closer can take them apart), with fresh sequence numbers."""
        rows = []
        for original in originals:
            root = original["reprint_of"] or original["document_id"]
            count = conn.execute(select(func.count()).select_from(print_pieces).where(
                print_pieces.c.reprint_of == root)).scalar_one()
            row = {**original, "piece_id": f"{root}-R{count + 1}", "batch_id": reprint_id,
                   "reprint_of": root, "queued_at": now}
            conn.execute(insert(print_pieces).values(**row))
            rows.append(row)
        key = (info.tenant, info.printshop, info.profile, info.envelope, ",".join(info.inserts))
        self._open(conn, reprint_id, key, rows, "reprint", now)


def _acknowledged_again(info: BatchInfo, spoiled: tuple[str, ...]) -> BatchInfo:
    """An acknowledgement of a batch acknowledged already: the same one is answered as the
    first was (idempotent); other spoilage is FAILED_PRECONDITION."""
    if info.spoiled != spoiled:
        raise FailedPrecondition(
            f"print batch {info.batch_id} was already acknowledged with other spoilage")
    return info


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
