"""Job gauges for server.metrics, read from the job store when scraped:

- `kanal_jobs{state}`: jobs per state (receiving, queued, running, completed, ...);
- `kanal_job_chunks{state}`: chunks of unfinished jobs that are pending or running -- the
  depth of the bulk queue, the same whether chunks run locally or through RabbitMQ; and
  `stalled`: those running chunks whose worker finished no document for `[jobs]
  stall_seconds` (server.jobs.stalls; also counted in `running`): alert when above 0.
"""

from __future__ import annotations

from sqlalchemy import func, select

from server.jobs.store import JobStore
from server.jobs.tables import ACTIVE_STATES, job_chunks, jobs

DESCRIBED = {
    "kanal_jobs": ("Bulk jobs, per state", "state"),
    "kanal_job_chunks": ("Chunks of unfinished jobs waiting or running (the queue depth), "
                         "and running ones stalled",
                         "state"),
}


def job_gauges(store: JobStore):  # type: ignore[no-untyped-def]
    """A gauge source for `metrics.gauges.add(source, DESCRIBED)`."""

    def read() -> dict[str, dict[str, float]]:
        with store.engine.connect() as conn:
            by_state = dict(conn.execute(
                select(jobs.c.state, func.count()).group_by(jobs.c.state)).all())
            unfinished = select(jobs.c.job_id).where(jobs.c.state.in_(ACTIVE_STATES))
            # per state: the chunks, and those with a stalled mark (count of a column:
            # its non-NULL values), in one read
            chunks = {state: (count, stalled) for state, count, stalled in conn.execute(
                select(job_chunks.c.state, func.count(), func.count(job_chunks.c.stalled))
                .where(job_chunks.c.job_id.in_(unfinished),
                       job_chunks.c.state.in_(("pending", "running")))
                .group_by(job_chunks.c.state)).all()}
        pending, _ = chunks.get("pending", (0, 0))
        running, stalled = chunks.get("running", (0, 0))
        return {"kanal_jobs": {k: float(v) for k, v in by_state.items()},
                "kanal_job_chunks": {"pending": float(pending), "running": float(running),
                                     "stalled": float(stalled)}}

    return read
