"""Planned journey sends -> bulk jobs, so the communications take the normal bulk path.

A `journey_sends` row is a step's promise to communicate once. Turning rows into documents
is the jobs' work (server/jobs: chunks on local worker processes or on RabbitMQ `kanal
worker`s; each record composed by `DocumentService.compose_as`: plan, fallbacks, archive,
outbox). The hand-over is crash safe in three commits:

1. `planned` -> `submitting`: the rows get a job id and creation time *before* the job
   exists (compare-and-set on `planned`, so two servers never take the same row), and
   with them their document id (server.jobs.worker.document_id_for(job, time, send id)).
2. The job is created with that id, its records (record key = send id) stored, sealed.
3. `submitting` -> `submitted`.

Before step 1, a planned row whose data names another customer than the row's
(`profiles.other_customer`; the engine refuses those when it plans, so only a row planned
by an older server) is set `refused` and recorded as a suppression, never a job record.

A crash after 1 or 2 leaves `submitting` rows; `flush` finds them (once RECOVER_AFTER has
passed, so it never takes over another server's hand-over in progress), discards a job that
was half stored and creates it again with the same id, so every document id stays what
step 1 promised and no send becomes two documents.
"""

from __future__ import annotations

import threading
from collections import defaultdict
from collections.abc import Callable, Sequence
from datetime import UTC, datetime, timedelta

from sqlalchemy import delete, select, update
from sqlalchemy.engine import Engine, RowMapping
from ulid import ULID

from server import logs
from server.compose.data import read_stored_json
from server.errors import NotFound
from server.jobs.model import JobHeader, RecordOptions
from server.jobs.store import JobStore
from server.jobs.tables import RECEIVING
from server.jobs.worker import document_id_for
from server.journeys.policy import ContactPolicy, ContactRequest
from server.journeys.profiles import other_customer
from server.journeys.tables import contact_log, sends

log = logs.get_logger(__name__)

FLUSH_LIMIT = 5000
# A hand-over still `submitting` this long after its job id was reserved was interrupted
# (a live one takes seconds); younger ones may be another server's, in progress.
RECOVER_AFTER = timedelta(minutes=5)
REFUSED = "refused"  # its document would name another customer: never a job record


class SendSubmitter:
    def __init__(self, engine: Engine, jobs: JobStore, *, latest_version: Callable[[str], str],
                 notify: Callable[[], None] = lambda: None,
                 clock: Callable[[], datetime] = lambda: datetime.now(UTC)):
        self.engine = engine
        self.jobs = jobs
        self.latest_version = latest_version
        self.notify = notify
        self.clock = clock
        self._lock = threading.Lock()  # one hand-over at a time in this process

    def flush(self) -> int:
        """Submit every planned send (and finish interrupted submissions) -> sends submitted."""
        with self._lock:
            return self._flush()

    def _flush(self) -> int:
        submitted = self._recover()
        while True:
            with self.engine.begin() as conn:
                rows = conn.execute(select(sends).where(sends.c.state == "planned")
                                    .order_by(sends.c.planned_at).limit(FLUSH_LIMIT)
                                    ).mappings().all()
            if not rows:
                break
            rows = self._refuse_other_customers(rows)
            groups: dict[tuple[str, str, str, str, int], list[str]] = defaultdict(list)
            for row in rows:
                version = row["layout_version"] or self.latest_version(row["layout_id"])
                groups[(row["tenant"], row["layout_id"], version, row["channels"],
                        row["priority"])].append(row["send_id"])
            for (tenant, layout_id, version, channels, priority), ids in groups.items():
                job_id = self._reserve(ids, version)
                if job_id is not None:
                    submitted += self._submit(job_id, JobHeader(
                        tenant=tenant, layout_id=layout_id, layout_version=version,
                        job_name="journeys", channels=tuple(c for c in channels.split(",") if c),
                        priority=priority))
        if submitted:
            self.notify()
        return submitted

    def _refuse_other_customers(self, rows: Sequence[RowMapping]) -> list[RowMapping]:
        """`rows` without those whose document would name another customer than the
        send's: each of those `planned` -> `refused`, recorded as a suppression (as the
        contact policy's are) and taken off the contact log, so it caps nothing."""
        kept: list[RowMapping] = []
        for row in rows:
            why = other_customer(read_stored_json(row["data"]), row["customer_id"], None)
            if why is None:
                kept.append(row)
                continue
            request = ContactRequest(row["tenant"], row["customer_id"], row["category"],
                                     f"journey:{row['journey']}@{row['version']}:{row['step']}")
            with self.engine.begin() as conn:
                if conn.execute(update(sends).where(
                        sends.c.send_id == row["send_id"], sends.c.state == "planned").values(
                        state=REFUSED)).rowcount:
                    ContactPolicy.suppress(conn, request, why, self.clock())
                    conn.execute(delete(contact_log).where(
                        contact_log.c.tenant == row["tenant"],
                        contact_log.c.customer_id == row["customer_id"],
                        contact_log.c.ref == row["send_id"]))
            log.warning("journey send refused: its document names another customer",
                        tenant=row["tenant"], send_id=row["send_id"],
                        field="$.customer.customer_id")
        return kept

    def _reserve(self, ids: list[str], version: str) -> str | None:
        job_id = str(ULID())
        now = self.clock()
        created = now.replace(microsecond=now.microsecond // 1000 * 1000)  # as jobs keep it
        with self.engine.begin() as conn:
            taken = 0
            for send_id in ids:
                taken += conn.execute(update(sends).where(
                    sends.c.send_id == send_id, sends.c.state == "planned").values(
                    state="submitting", job_id=job_id, job_created_at=created,
                    layout_version=version,
                    document_id=document_id_for(job_id, created, send_id))).rowcount
        return job_id if taken else None

    def _submit(self, job_id: str, header: JobHeader) -> int:
        with self.engine.begin() as conn:
            rows = conn.execute(select(sends.c.send_id, sends.c.data, sends.c.options,
                                       sends.c.job_created_at)
                                .where(sends.c.job_id == job_id,
                                       sends.c.state == "submitting")
                                .order_by(sends.c.send_id)).all()
        if not rows:
            return 0
        try:
            existing = self.jobs.get(job_id)
        except NotFound:
            existing = None
        if existing is not None and existing.state == RECEIVING:
            self.jobs.discard(job_id)  # half stored before a crash: store it again
            existing = None
        if existing is None:
            self.jobs.create_job(job_id, header, rows[0].job_created_at)
            total = self.jobs.add_records(job_id, (
                (r.send_id, r.data, RecordOptions.from_json(r.options)) for r in rows))
            self.jobs.seal(job_id, total)
        with self.engine.begin() as conn:
            conn.execute(update(sends).where(sends.c.job_id == job_id,
                                             sends.c.state == "submitting").values(
                state="submitted"))
        log.info("journey sends submitted", job_id=job_id, sends=len(rows),
                 layout=f"{header.layout_id}@{header.layout_version}")
        return len(rows)

    def _recover(self) -> int:
        with self.engine.begin() as conn:
            rows = conn.execute(select(sends.c.job_id, sends.c.tenant, sends.c.layout_id,
                                       sends.c.layout_version, sends.c.channels,
                                       sends.c.priority)
                                .where(sends.c.state == "submitting",
                                       sends.c.job_created_at < self.clock() - RECOVER_AFTER)
                                .distinct()).all()
        done = 0
        for row in rows:
            done += self._submit(row.job_id, JobHeader(
                tenant=row.tenant, layout_id=row.layout_id,
                layout_version=row.layout_version or self.latest_version(row.layout_id),
                job_name="journeys", channels=tuple(c for c in row.channels.split(",") if c),
                priority=row.priority))
        return done
