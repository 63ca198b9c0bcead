"""Backends never hold a caller past its deadline: an S3 endpoint that accepts connections
and never answers (a paused SeaweedFS, here a bare TCP listener), and an index whose
database is locked by someone else. Both answer ArchiveUnavailable by the call's deadline
(archive.deadline), or by their own timeout when the call has none."""

from __future__ import annotations

import socket
import sqlite3
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from archive import deadline
from archive.errors import ArchiveUnavailable
from archive.index import DocumentIndex
from archive.records import DocumentRecord
from archive.store import ArchiveStore


@pytest.fixture
def silent_endpoint() -> Iterator[str]:
    """Accepts TCP connections and reads the requests, never answers."""
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(64)
    held: list[socket.socket] = []
    stop = threading.Event()

    def accept() -> None:
        listener.settimeout(0.1)
        while not stop.is_set():
            try:
                held.append(listener.accept()[0])
            except OSError:
                continue
    thread = threading.Thread(target=accept, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{listener.getsockname()[1]}"
    stop.set()
    thread.join()
    for conn in held:
        conn.close()
    listener.close()


def store(endpoint: str, **kwargs) -> ArchiveStore:
    return ArchiveStore(endpoint_url=endpoint, bucket="b", access_key="k", secret_key="s",
                        **kwargs)


def timed_failure(call) -> tuple[float, BaseException]:
    started = time.monotonic()
    with pytest.raises(ArchiveUnavailable) as info:
        call()
    return time.monotonic() - started, info.value


def test_a_silent_s3_answers_unavailable_by_the_calls_deadline(silent_endpoint):
    s3 = store(silent_endpoint, call_timeout=30, read_timeout=60)

    def put_within(seconds: float) -> None:
        deadline.set_timeout(seconds)
        s3.put("t/c/2026/doc/print.pdf", b"%PDF", media_type="application/pdf",
               metadata={}, retain_until=datetime.now(UTC) + timedelta(days=1))
    seconds, error = timed_failure(lambda: threading_run(put_within, 1.0))
    assert 0.5 < seconds < 2.0 and "did not answer" in str(error)


def test_without_a_deadline_the_stores_own_timeout_applies(silent_endpoint):
    s3 = store(silent_endpoint, call_timeout=1.0, read_timeout=60)
    seconds, _ = timed_failure(lambda: s3.get("t/c/2026/doc/print.pdf"))
    assert 0.8 < seconds < 2.5


def test_requests_waiting_on_a_silent_s3_are_bounded(silent_endpoint):
    s3 = store(silent_endpoint, call_timeout=3.0, read_timeout=60, max_inflight=2)
    with ThreadPoolExecutor(2) as pool:
        stuck = [pool.submit(lambda: timed_failure(lambda: s3.head("k"))) for _ in range(2)]
        for _ in range(200):  # until both requests are on their way to S3
            if s3.requests_in_flight == 2:
                break
            time.sleep(0.01)
        seconds, error = timed_failure(lambda: s3.head("k"))  # a third fails at once
        assert seconds < 0.5 and "not keeping up" in str(error)
        assert all(f.result()[1] for f in stuck)


def threading_run(fn, *args) -> None:
    """Run in a fresh thread, as a call's lane thread would (its own context)."""
    errors: list[BaseException] = []

    def target() -> None:
        try:
            fn(*args)
        except BaseException as exc:  # noqa: BLE001 - handed back to the caller
            errors.append(exc)
    thread = threading.Thread(target=target)
    thread.start()
    thread.join()
    if errors:
        raise errors[0]


def test_a_locked_index_answers_unavailable_by_the_calls_deadline(tmp_path: Path):
    index = DocumentIndex(f"sqlite:///{tmp_path / 'index.db'}")
    index.create_schema()
    blocker = sqlite3.connect(tmp_path / "index.db")
    blocker.execute("BEGIN IMMEDIATE")  # another writer holds the lock
    record = DocumentRecord(
        tenant="t", document_id="d1", customer_id="c", kind="letter", layout_ref="l@1",
        locale="nb-NO", created_at=datetime.now(UTC), input_sha256="0" * 64,
        idempotency_key=None, channel_plan="print", retain_until=None, outputs=())
    try:
        def add_within(seconds: float) -> None:
            deadline.set_timeout(seconds)
            index.add(record)
        seconds, _ = timed_failure(lambda: threading_run(add_within, 1.0))
        assert seconds < 2.5  # not the 10 s busy timeout
    finally:
        blocker.rollback()
        blocker.close()
        index.close()
