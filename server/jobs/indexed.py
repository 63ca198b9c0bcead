"""What the document index already holds for a job's records: a chunk's committed documents.

A record's index row is its commit point (server.jobs.worker), so the index, not the chunk's
state, says which documents of a chunk exist. Three uses:

- progress of a running chunk: how many of its documents are committed already;
- settling a chunk of a cancelled job (server.jobs.chunks.JobChunks.settle_chunk): its summary
  (documents, pages, documents and pages per channel) counted from the index rows, so a
  cancelled job reports exactly the documents that exist, whichever run made them;
- listing a cancelled job's records never composed (server.jobs.resuming): those without one.

The job tables live in the index's database, so these are plain queries on one connection.

A running chunk's document ids are asked for again at every progress poll (WatchJob: twice
a second per watcher, for as long as the chunk runs), and they never change once the job is
sealed (its chunks exist only then): the ids of the last `REMEMBERED_CHUNKS` chunks are kept,
so a poll costs the count query alone, not reading the chunk's record keys back and hashing
each into its id again.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Iterable
from datetime import datetime

from sqlalchemy import func, select
from sqlalchemy.engine import Connection

IN_BATCH = 500  # ids per IN (...) list
REMEMBERED_CHUNKS = 256  # (job, chunk) -> ids; a few per worker are running at any time

# (database, job, its creation time, chunk size, chunk) -> the chunk's document ids
_remembered: OrderedDict[tuple[str, str, datetime, int, int], list[str]] = OrderedDict()
_remembered_lock = threading.Lock()


def document_ids(conn: Connection, records_table, job_id: str, created_at: datetime,  # type: ignore[no-untyped-def]
                 chunk_size: int, chunks: Iterable[int]) -> list[str]:
    """The document ids the records of these chunks get (server.jobs.worker.document_id_for),
    chunk by chunk in the order given. The chunks are a sealed job's."""
    from server.jobs.worker import document_id_for

    chunks = list(chunks)
    database = str(conn.engine.url)

    def slot(chunk: int) -> tuple[str, str, datetime, int, int]:
        return database, job_id, created_at, chunk_size, chunk

    with _remembered_lock:
        known = {c: _remembered.get(slot(c)) for c in chunks}
    missing = [c for c in chunks if known[c] is None]
    seqs = [c * chunk_size + n for c in missing for n in range(chunk_size)]
    per_chunk: dict[int, list[tuple[int, str]]] = {c: [] for c in missing}
    for start in range(0, len(seqs), IN_BATCH):
        for seq, key in conn.execute(select(records_table.c.seq, records_table.c.record_key)
                                     .where(records_table.c.job_id == job_id,
                                            records_table.c.seq.in_(
                                                seqs[start:start + IN_BATCH]))):
            per_chunk[seq // chunk_size].append((seq, key))
    with _remembered_lock:
        for c, rows in per_chunk.items():
            known[c] = _remembered[slot(c)] = [
                document_id_for(job_id, created_at, key) for _, key in sorted(rows)]
        for c in chunks:
            _remembered.move_to_end(slot(c))
        while len(_remembered) > REMEMBERED_CHUNKS:
            _remembered.popitem(last=False)
    return [document_id for c in chunks for document_id in known[c] or ()]


def committed_count(conn: Connection, tenant: str, ids: list[str]) -> int:
    """How many of these documents have their index row."""
    from archive.tables import documents

    total = 0
    for start in range(0, len(ids), IN_BATCH):
        total += int(conn.execute(select(func.count()).select_from(documents).where(
            documents.c.tenant == tenant,
            documents.c.document_id.in_(ids[start:start + IN_BATCH]))).scalar() or 0)
    return total


def committed_ids(conn: Connection, tenant: str, ids: list[str]) -> set[str]:
    """Which of these documents have their index row."""
    from archive.tables import documents

    found: set[str] = set()
    for start in range(0, len(ids), IN_BATCH):
        found.update(conn.execute(select(documents.c.document_id).where(
            documents.c.tenant == tenant,
            documents.c.document_id.in_(ids[start:start + IN_BATCH]))).scalars())
    return found


def committed_outputs(conn: Connection, tenant: str, ids: list[str]
                      ) -> tuple[int, list[tuple[str, int]]]:
    """(documents indexed, [(channel, pages) per output of them])."""
    from archive.tables import outputs

    found = committed_count(conn, tenant, ids)
    rows: list[tuple[str, int]] = []
    for start in range(0, len(ids), IN_BATCH):
        rows += [(channel, pages or 0) for channel, pages in conn.execute(
            select(outputs.c.channel, outputs.c.pages).where(
                outputs.c.tenant == tenant,
                outputs.c.document_id.in_(ids[start:start + IN_BATCH])))]
    return found, rows
