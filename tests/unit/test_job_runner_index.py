"""`kanal_jobs` keeps every job ever run; the runner's unfinished jobs (every scheduling
round) and the abandoned ones still receiving are found by state (`ix_kanal_jobs_state`),
not by reading them all, and a database made before the index gets it on start. Figures:
load_tests/bench_history_queries.py."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from sqlalchemy import insert

from server.jobs.store import JobStore
from server.jobs.tables import jobs
from tests.unit.query_plans import assert_added_on_start, plans_of

NOW = datetime(2026, 12, 1, tzinfo=UTC)


def job(n: int, state: str) -> dict:
    return dict(job_id=f"{n:026d}", tenant="t", job_name="", layout_id="l", layout_version="1",
                channels="", print_profile="", priority=n % 3, state=state, total=1, chunks=1,
                chunk_size=50, created_at=NOW + timedelta(seconds=n))


def test_the_runner_finds_unfinished_and_abandoned_jobs_by_state(tmp_path):
    store = JobStore(f"sqlite:///{tmp_path / 'index.db'}")
    store.create_schema()
    with store.engine.begin() as conn:
        conn.execute(insert(jobs), [job(n, "completed") for n in range(3000)])
        conn.execute(insert(jobs), [job(9000, "running"), job(9001, "queued")])
    assert [j.job_id for j in store.unfinished_jobs()] == [f"{9001:026d}", f"{9000:026d}"]
    assert "ix_kanal_jobs_state" in plans_of(store.engine, store.unfinished_jobs,
                                             "FROM kanal_jobs")
    assert "ix_kanal_jobs_state" in plans_of(
        store.engine, lambda: store.discard_abandoned(NOW), "FROM kanal_jobs")
    store.close()


def test_a_database_made_before_the_index_gets_it_on_start(tmp_path):
    store = JobStore(f"sqlite:///{tmp_path / 'index.db'}")
    store.create_schema()
    assert_added_on_start(store.engine, store.create_schema, "kanal_jobs", "ix_kanal_jobs_state")
    store.close()
