"""Idempotent job submission: a job header's `idempotency_key` -> the job it first made.

A core system that loses the SubmitBatch response has no other way to know whether its
job was taken; with a key it can simply send the job again. Same semantics and wording as
real-time Compose (server.documents): the same key with the same content answers with the
first result (`replayed`) and makes nothing new; the same key with different content is
`Conflict` (ALREADY_EXISTS) naming the key and the first job.

Content: `JobDigest`, a sha256 over the header as the caller sent it (layout id, the
version asked for or "" for the newest, job name, channels, print profile, priority) and
every record (key and data, in order), computed while the records stream in, so nothing is
held in memory. A resubmission that leaves the version empty replays the first job even
after a new layout version was published (as Compose does); naming another version is a
different job.

Table `kanal_job_keys` (server.jobs.tables, created with the other job tables): one row per
keyed job, `(tenant, idempotency_key)` unique. The row is written in the same
transaction that seals the job (`JobStore.seal(claim=...)`), so a key names a job only once
every record is stored and its chunks exist: a submission that broke off half-way leaves no
key behind, and of two submissions racing with one key the database lets exactly one seal;
the other discards what it stored and answers as a resubmission.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import exc as sa_exc
from sqlalchemy import insert, select
from sqlalchemy.engine import Connection

from server.errors import Conflict, InvalidInput
from server.jobs.store import JobStore
from server.jobs.tables import job_keys

MAX_KEY = 200  # characters, as Compose's idempotency_key (the column's length)


def check_key(key: str) -> None:
    """InvalidInput (`header.idempotency_key`) for a key over MAX_KEY characters."""
    if len(key) > MAX_KEY:
        raise InvalidInput.field("header.idempotency_key",
                                 f"must be at most {MAX_KEY} characters")


class JobDigest:
    """sha256 of a job's content: the header fields given, then each record as it passes
    through `records` (length-prefixed, so no two different jobs hash alike)."""

    def __init__(self, layout_id: str, layout_version: str, job_name: str,
                 channels: Sequence[int], print_profile: str, priority: int):
        self._sha = hashlib.sha256(b"kanal-job-1\n")
        self._put(json.dumps([layout_id, layout_version, job_name, list(channels),
                              print_profile, priority], ensure_ascii=False))

    def _put(self, text: str) -> None:
        data = text.encode("utf-8")
        self._sha.update(len(data).to_bytes(8, "big"))
        self._sha.update(data)

    def records(self, records: Iterable[tuple[str, str]]) -> Iterator[tuple[str, str]]:
        """Pass (record_key, data_json) pairs through, hashing each."""
        for key, data in records:
            self._put(key)
            self._put(data)
            yield key, data

    def hexdigest(self) -> str:
        return self._sha.hexdigest()


@dataclass(frozen=True, slots=True)
class KeyedJob:
    """The job a key first made: its id, content digest (hex) and record count."""

    job_id: str
    content_sha256: str
    records: int


class JobKeys:
    """Idempotency keys of jobs, beside the job store's tables (its engine)."""

    def __init__(self, store: JobStore):
        self.store = store

    def find(self, tenant: str, key: str) -> KeyedJob | None:
        """The job this tenant's key made, or None."""
        with self.store._connect() as conn:
            row = conn.execute(select(job_keys.c.job_id, job_keys.c.content_sha256,
                                      job_keys.c.records)
                               .where(job_keys.c.tenant == tenant,
                                      job_keys.c.idempotency_key == key)).first()
        return KeyedJob(row.job_id, row.content_sha256, row.records) if row else None

    def seal(self, job_id: str, total: int, tenant: str, key: str, digest: str,
             created_at: datetime) -> KeyedJob | None:
        """Seal the job (JobStore.seal) and record its key in the same transaction.
        -> None when this job now holds the key; the job that holds it when another
        submission sealed first with the same key (nothing of this one was sealed: the
        caller discards it and answers with `replay`)."""
        try:
            self.store.seal(job_id, total, claim=self._claim(
                job_id, total, tenant, key, digest, created_at))
        except sa_exc.IntegrityError:
            winner = self.find(tenant, key)
            if winner is None:  # not the key's constraint after all
                raise
            return winner
        return None

    @staticmethod
    def _claim(job_id: str, total: int, tenant: str, key: str, digest: str,
               created_at: datetime) -> Callable[[Connection], None]:
        def claim(conn: Connection) -> None:
            conn.execute(insert(job_keys), [{
                "job_id": job_id, "tenant": tenant, "idempotency_key": key,
                "content_sha256": digest, "records": total, "created_at": created_at}])
        return claim


    def replay(self, first: KeyedJob, key: str, digest: str) -> KeyedJob:
        """The first job when the content is the same, else Conflict (ALREADY_EXISTS)
        naming the key, the job and its layout, in Compose's words."""
        if digest != first.content_sha256:
            header = self.store.get(first.job_id).header
            raise Conflict(
                f"idempotency key {key!r} was already used for job {first.job_id} "
                f"({header.layout_id}@{header.layout_version}) with a different layout, "
                f"layout version, job name, channels, print profile, priority or records; "
                f"use a new key for a new job")
        return first
