"""The archive counts S3's own write failures (archive.write_health): 3 puts in a row refused
with a 5xx make `ping` (the health probe) fail with the last error and call
`on_write_failures`, until a put succeeds (the probe's own or a document's). Here against
a small HTTP server that answers like S3: HEAD of the bucket 200, PUT what the test sets."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from archive.errors import AccessDenied, ArchiveError, ArchiveUnavailable
from archive.store import ArchiveStore

INTERNAL = (500, "InternalError", "We encountered an internal error, please try again.")
SLOW_DOWN = (503, "SlowDown", "Please reduce your request rate.")
DENIED = (403, "AccessDenied", "Access Denied")
OK = (200, "", "")


class FakeS3(ThreadingHTTPServer):
    put_answer = INTERNAL
    deleted: list[str]


class Handler(BaseHTTPRequestHandler):
    server: FakeS3
    protocol_version = "HTTP/1.1"  # answers botocore's `Expect: 100-continue` at once

    def log_message(self, *args: object) -> None:
        pass

    def do_HEAD(self) -> None:  # noqa: N802 - http.server's naming
        self.send_response(200)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def do_DELETE(self) -> None:  # noqa: N802
        self.server.deleted.append(self.path)
        self.send_response(204)
        self.end_headers()

    def do_PUT(self) -> None:  # noqa: N802
        self.rfile.read(int(self.headers.get("Content-Length", "0")))
        status, code, message = self.server.put_answer
        body = b"" if status == 200 else (
            f"<?xml version='1.0' encoding='UTF-8'?><Error><Code>{code}</Code>"
            f"<Message>{message}</Message></Error>").encode()
        self.send_response(status)
        if status == 200:
            self.send_header("ETag", '"0123456789abcdef0123456789abcdef"')
            self.send_header("x-amz-version-id", "v1")
        else:
            self.send_header("Content-Type", "application/xml")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)


@pytest.fixture
def fake_s3() -> Iterator[FakeS3]:
    server = FakeS3(("127.0.0.1", 0), Handler)
    server.deleted = []
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server
    server.shutdown()
    server.server_close()


@pytest.fixture
def calls() -> list[int]:
    return []


@pytest.fixture
def store(fake_s3: FakeS3, calls: list[int]) -> ArchiveStore:
    # one attempt per put: botocore's retry back-off would only slow the test
    return ArchiveStore(endpoint_url=f"http://127.0.0.1:{fake_s3.server_address[1]}",
                        bucket="b", access_key="k", secret_key="s", max_attempts=1,
                        on_write_failures=lambda: calls.append(1))


def put(store: ArchiveStore, key: str = "a/b.pdf") -> None:
    store.put(key, b"%PDF-1.7 ...", media_type="application/pdf", metadata={},
              retain_until=datetime.now(UTC) + timedelta(days=1))


def failing_put(store: ArchiveStore, error: type[ArchiveError] = ArchiveUnavailable) -> None:
    with pytest.raises(error):
        put(store)


def test_three_server_side_failures_in_a_row_make_the_archive_unhealthy_until_a_put_succeeds(
        fake_s3: FakeS3, store: ArchiveStore, calls: list[int]) -> None:
    for _ in range(2):
        failing_put(store)
    store.ping()  # two are not enough
    assert not calls
    failing_put(store)
    assert calls == [1]
    # the probe's own write fails too: a fourth failure, and the callback is asked again
    with pytest.raises(ArchiveUnavailable, match="last 4 writes failed.*InternalError"):
        store.ping()
    assert calls == [1, 1]
    failing_put(store)  # every further failure asks again (the callee rate-limits)
    assert calls == [1, 1, 1]

    fake_s3.put_answer = OK
    put(store)
    store.ping()
    assert store.write_failures.consecutive == 0 and store.write_failures.reason == ""


def test_the_health_probe_finds_writes_working_again_without_other_traffic(
        fake_s3: FakeS3, store: ArchiveStore) -> None:
    """An archive reported down may get no documents (a load balancer drains it), so the
    probe itself tries a write while writes are failing, and deletes what it wrote."""
    for _ in range(3):
        failing_put(store)
    with pytest.raises(ArchiveUnavailable):
        store.ping()
    fake_s3.put_answer = OK
    store.ping()
    assert store.write_failures.consecutive == 0
    assert fake_s3.deleted == ["/b/kanal-health/write-probe?versionId=v1"]
    store.ping()  # all well: no probe write
    assert len(fake_s3.deleted) == 1


def test_a_success_between_failures_starts_the_count_again(
        fake_s3: FakeS3, store: ArchiveStore, calls: list[int]) -> None:
    for answer in (INTERNAL, INTERNAL, OK, INTERNAL, INTERNAL):
        fake_s3.put_answer = answer
        if answer is OK:
            put(store)
        else:
            failing_put(store)
    store.ping()
    assert store.write_failures.consecutive == 2 and not calls


@pytest.mark.parametrize(("answer", "error"), [(SLOW_DOWN, ArchiveUnavailable),
                                               (DENIED, AccessDenied)])
def test_throttling_and_refusals_are_not_server_faults(
        fake_s3: FakeS3, store: ArchiveStore, calls: list[int], answer: tuple[int, str, str],
        error: type[ArchiveError]) -> None:
    fake_s3.put_answer = answer
    for _ in range(5):
        failing_put(store, error)
    store.ping()
    assert store.write_failures.consecutive == 0 and not calls


def test_a_timeout_is_not_counted(store: ArchiveStore, calls: list[int]) -> None:
    """A hung S3 is the HEAD probe's to find (it times out too); only S3's answers count."""
    store.call_timeout = 0.001
    for _ in range(4):
        failing_put(store)
    store.call_timeout = 15.0
    store.ping()
    assert not calls


def test_a_callback_that_raises_does_not_hide_the_puts_error(fake_s3: FakeS3) -> None:
    def broken() -> None:
        raise RuntimeError("callback broke")

    store = ArchiveStore(endpoint_url=f"http://127.0.0.1:{fake_s3.server_address[1]}",
                         bucket="b", access_key="k", secret_key="s", max_attempts=1,
                         on_write_failures=broken, write_failure_threshold=1)
    failing_put(store)
    with pytest.raises(ArchiveUnavailable, match="last 2 writes failed"):
        store.ping()


class StubEmbeddedS3:
    running = True

    def __init__(self) -> None:
        self.reasons: list[str] = []

    def restart_soon(self, reason: str = "") -> bool:
        self.reasons.append(reason)
        return True


@pytest.mark.parametrize("embedded", [True, False])
def test_the_server_reports_the_archive_down_and_restarts_only_an_embedded_s3(
        fake_s3: FakeS3, embedded: bool) -> None:
    """server/app.py's wiring: the store's callback restarts the embedded SeaweedFS (a
    production S3 gets only the health signal) and probes at once; the probe (ping) makes
    `kanal.archive` and what needs it NOT_SERVING, until a write succeeds."""
    from server.app import KanalServer
    from server.health import ARCHIVE, INDEX, QUEUE, DependencyMonitor

    server = KanalServer.__new__(KanalServer)  # only the archive's part of a started server
    server.embedded_s3 = StubEmbeddedS3() if embedded else None  # type: ignore[assignment]
    server.store = ArchiveStore(  # type: ignore[assignment]
        endpoint_url=f"http://127.0.0.1:{fake_s3.server_address[1]}", bucket="b",
        access_key="k", secret_key="s", max_attempts=1,
        on_write_failures=server._archive_writes_failing)
    published: dict[str, bool] = {}
    server.monitor = DependencyMonitor(
        {ARCHIVE: server._archive_probe, INDEX: lambda: None, QUEUE: lambda: None},
        published.__setitem__, interval=3600)  # not started: the test calls check()
    try:
        for _ in range(3):
            failing_put(server.store)
        assert server.monitor._poked.is_set()  # probed now, not at the next interval
        if embedded:
            assert len(server.embedded_s3.reasons) == 1  # type: ignore[union-attr]
            assert "InternalError" in server.embedded_s3.reasons[0]  # type: ignore[union-attr]
        server.monitor.check()
        assert published[ARCHIVE] is False and published["kanal.v1.Documents"] is False
        assert published["kanal.v1.Layouts"] is True

        fake_s3.put_answer = OK
        server.monitor.check()  # the probe's own write succeeds
        assert published[ARCHIVE] is True and published[""] is True
    finally:
        server.monitor.stop()


def test_another_stores_writes_count_as_this_stores(fake_s3: FakeS3, store: ArchiveStore,
                                                     calls: list[int]) -> None:
    """A bulk worker process has a store of its own (server.jobs.worker); what its writes came
    to since it was last asked (`drain`) is counted into the server's (`replay`)."""
    worker = ArchiveStore(endpoint_url=f"http://127.0.0.1:{fake_s3.server_address[1]}",
                          bucket="b", access_key="k", secret_key="s", max_attempts=1)
    assert worker.write_failures.drain() is None  # nothing written
    for _ in range(3):
        failing_put(worker)
    report = worker.write_failures.drain()
    assert (report.succeeded, report.failures) == (False, 3)
    assert "InternalError" in report.last_error
    assert worker.write_failures.drain() is None  # drained
    failing_put(store)  # the server's own failure and the worker's add up
    store.write_failures.replay(report)
    assert store.write_failures.consecutive == 4 and calls == [1]  # told once per report
    with pytest.raises(ArchiveUnavailable, match="InternalError"):
        store.ping()

    # a worker's failures after its success: the success resets the count first
    fake_s3.put_answer = OK
    put(worker)
    fake_s3.put_answer = INTERNAL
    failing_put(worker)
    store.write_failures.replay(worker.write_failures.drain())
    assert store.write_failures.consecutive == 1 and not store.write_failures.failing
    # throttling is no failure, and no success either: nothing to report
    fake_s3.put_answer = SLOW_DOWN
    failing_put(worker)
    assert worker.write_failures.drain() is None
