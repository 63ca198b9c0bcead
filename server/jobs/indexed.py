"""What the document index already holds for a job's records: a chunk's committed documents.

A record's index row is its commit point (server.jobs.worker), so the index, not the chunk's
state, says which documents of a chunk exist. Two uses:

- progress of a running chunk: how many of its documents are committed already;
- settling a chunk of a cancelled job (server.jobs.chunks.JobChunks.settle_chunk): its summary
  (documents, pages, documents and pages per channel) counted from the index rows, so a
  cancelled job reports exactly the documents that exist, whichever run made them.

The job tables live in the index's database, so these are plain queries on one connection.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime

from sqlalchemy import func, select
from sqlalchemy.engine import Connection

IN_BATCH = 500  # ids per IN (...) list


def document_ids(conn: Connection, records_table, job_id: str, created_at: datetime,  # type: ignore[no-untyped-def]
                 chunk_size: int, chunks: Iterable[int]) -> list[str]:
    """The document ids the records of these chunks get (server.jobs.worker.document_id_for)."""
    from server.jobs.worker import document_id_for

    seqs = [c * chunk_size + n for c in chunks for n in range(chunk_size)]
    keys: list[str] = []
    for start in range(0, len(seqs), IN_BATCH):
        keys += conn.execute(select(records_table.c.record_key).where(
            records_table.c.job_id == job_id,
            records_table.c.seq.in_(seqs[start:start + IN_BATCH]))).scalars()
    return [document_id_for(job_id, created_at, key) for key in keys]


def committed_count(conn: Connection, tenant: str, ids: list[str]) -> int:
    """How many of these documents have their index row."""
    from archive.tables import documents

    total = 0
    for start in range(0, len(ids), IN_BATCH):
        total += int(conn.execute(select(func.count()).select_from(documents).where(
            documents.c.tenant == tenant,
            documents.c.document_id.in_(ids[start:start + IN_BATCH]))).scalar() or 0)
    return total


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
