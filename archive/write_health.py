"""Whether S3 is taking the archive's writes: consecutive server-side write failures, counted
by `ArchiveStore.put` and reported by `ArchiveStore.ping`, so a health check sees an S3 that
answers a HEAD but refuses every PUT.

Why: after the state dir's disk had been full, the embedded SeaweedFS answered HEAD of the
bucket (the health probe) while its filer refused every upload with 500 InternalError
("persisting ... filerldb2/.../000001.log: no space left on device") for as long as the
process lived, though the disk had room again; gRPC health said SERVING and every Compose
failed UNAVAILABLE. A restart of `weed` cleared it at once.

Shape: `WriteFailures(threshold, on_failing)`. `failed(exc)` after a put raised, `succeeded()`
after one returned. Only a *server-side* failure counts: an S3 error response with HTTP
status >= 500 or code `InternalError` (`server_side`), not a timeout or a refused
connection (the HEAD probe sees those already), a conflict, a bad digest or refused
credentials, and not `SlowDown` (throttling: AWS asks the caller to slow down, the service
is fine). Any successful write resets the count; other failures leave it as it is.

Threshold: `THRESHOLD` = 3 consecutive server-side failures, no time window. Each counted
failure is already a put that botocore retried (max_attempts), so 3 are 6 refused requests
with no success between; a healthy SeaweedFS or AWS S3 returns no 5xx to a put at all, so
this is a persistent fault, and under load it is found within a few puts (a window of N
seconds would keep a failing archive reported SERVING for N seconds while every Compose
fails). One good write among concurrent puts resets it: an S3 that takes some writes is
degraded, not down. From the threshold on, `failing` is true and `reason` names the count
and the last error, until a write succeeds.

`on_failing()` is called on the failure that reaches the threshold and on every failure
after it (from the thread of the put, so it must return at once). The server wires it to
the embedded SeaweedFS's `EmbeddedS3.restart_soon` (which honours at most one request per
back-off period, archive.embedded) and to a health probe now; a production S3 gets only the
health signal. An exception it raises is logged and swallowed: the put's own error matters
more.

Other processes' writes: a bulk job's worker processes (server.jobs.worker) have stores of
their own. Each store also keeps what its writes came to since it was last asked: `drain()`
returns it as a `WriteReport` (None when nothing was written), which the worker sends to the
server with the chunk's outcome (or with the chunk's error), and `replay(report)` counts it
into the server's store, as if the server had made those writes: a success resets the count,
the failures after it add up, and `on_failing` is called once if the count is then at the
threshold. So a worker's refused writes reach the server's `kanal.archive` health and the
embedded SeaweedFS's restart as the server's own do.

Coming back: while `failing`, each `ArchiveStore.ping` also writes (and deletes again) one
small object under WRITE_PROBE_KEY itself (`probe_write`), so the archive is reported up as
soon as S3 takes writes, even when nobody sends documents to an archive reported down.
"""

from __future__ import annotations

import contextlib
import logging
import threading
from collections.abc import Callable
from contextlib import AbstractContextManager
from dataclasses import dataclass
from typing import Any

from botocore.exceptions import ClientError

from archive.errors import ArchiveError

log = logging.getLogger(__name__)

THRESHOLD = 3  # consecutive server-side write failures (see the module docstring)
# where a health probe checks that S3 takes writes again (probe_write); not a document key,
# so an index rebuild that finds one left behind reports it among the foreign keys
WRITE_PROBE_KEY = "kanal-health/write-probe"

_NOT_A_FAULT = {"SlowDown"}  # 503 throttling: the caller should slow down, S3 is fine


def server_side(exc: BaseException) -> bool:
    """Whether `exc` (an archive error raised from a botocore ClientError, or that error
    itself) is S3's own failure: HTTP status >= 500 or code InternalError, not SlowDown."""
    cause: BaseException | None = exc
    while cause is not None and not isinstance(cause, ClientError):
        cause = cause.__cause__
    if cause is None:
        return False
    error = cause.response.get("Error", {})
    code = str(error.get("Code", ""))
    status = cause.response.get("ResponseMetadata", {}).get("HTTPStatusCode")
    if code in _NOT_A_FAULT:
        return False
    return code == "InternalError" or (isinstance(status, int) and status >= 500)


@dataclass(frozen=True, slots=True)
class WriteReport:
    """What one store's writes came to since its last `WriteFailures.drain` (picklable, for
    another process's counter): `succeeded`, whether any write succeeded; `failures`, the
    server-side failures after the last success (all of them when none did); `last_error`,
    the last of those failures ("" when none)."""

    succeeded: bool
    failures: int
    last_error: str = ""


class WriteFailures:
    """Consecutive server-side write failures of one store; thread-safe."""

    def __init__(self, threshold: int = THRESHOLD,
                 on_failing: Callable[[], None] | None = None) -> None:
        if threshold < 1:
            raise ValueError(f"threshold must be at least 1, not {threshold}")
        self.threshold = threshold
        self.on_failing = on_failing
        self.consecutive = 0
        self.last_error = ""
        self._lock = threading.Lock()
        # since the last drain(): a write succeeded; server-side failures after it
        self._drained_success = False
        self._drained_failures = 0
        self._drained_error = ""

    @property
    def failing(self) -> bool:
        """Whether the last `threshold` or more writes all failed on S3's side."""
        return self.consecutive >= self.threshold

    @property
    def reason(self) -> str:
        """Why the archive is not taking writes ("" while it is)."""
        if not self.failing:
            return ""
        return (f"the last {self.consecutive} writes failed on the S3 server's side "
                f"(last: {self.last_error})")

    def succeeded(self) -> None:
        self._drained_success = True  # no lock on the hot path while all is well
        if self.consecutive or self._drained_failures:
            with self._lock:
                if self.consecutive >= self.threshold:
                    log.warning("archive writes succeed again after %d server-side failures",
                                self.consecutive)
                self.consecutive = 0
                self._drained_failures = 0

    def failed(self, exc: BaseException) -> None:
        """Count `exc` if it is a server-side failure (`server_side`); call `on_failing`
        once the count has reached the threshold."""
        if server_side(exc):
            self._count(1, str(exc)[:300])

    def _count(self, failures: int, error: str) -> None:
        with self._lock:
            before = self.consecutive
            self.consecutive += failures
            self.last_error = error
            self._drained_failures += failures
            self._drained_error = error
            failing = self.consecutive >= self.threshold
            if before < self.threshold <= self.consecutive:
                log.warning("archive writes failing: %s", self.reason)
        if failing and self.on_failing is not None:
            try:
                self.on_failing()
            except Exception:  # noqa: BLE001 - the put's own error is what the caller needs
                log.exception("on_write_failures callback failed")

    def drain(self) -> WriteReport | None:
        """What this store's writes came to since the last drain (None: no write
        succeeded and none failed on S3's side), and start again."""
        with self._lock:
            if not self._drained_success and not self._drained_failures:
                return None
            report = WriteReport(self._drained_success, self._drained_failures,
                                 self._drained_error if self._drained_failures else "")
            self._drained_success, self._drained_failures = False, 0
            self._drained_error = ""
        return report

    def replay(self, report: WriteReport | None) -> None:
        """Count another store's writes (its `drain()`) as this store's: a success resets
        the count, then its failures add up (`on_failing` is called once, if the count is
        then at the threshold)."""
        if report is None:
            return
        if report.succeeded:
            self.succeeded()
        if report.failures:
            self._count(report.failures, report.last_error)


def probe_write(call: Callable[..., Any], client: Any, bucket: str,
                errors: Callable[[str], AbstractContextManager[None]],
                failures: WriteFailures, timeout: float) -> None:
    """Put a small object under WRITE_PROBE_KEY in `bucket` (no retention) and delete that
    version again, within `timeout` s per request; counted in `failures` like any put.
    `ArchiveStore.ping` calls it only while writes are failing, so at most one version per
    health probe is left while S3 is down, none once it is up. `errors(key)` translates
    botocore's errors (archive.s3_errors.translated); nothing is raised."""
    try:
        with errors(WRITE_PROBE_KEY):
            response = call(client.put_object, Bucket=bucket, Key=WRITE_PROBE_KEY,
                            Body=b"kanal write probe\n", _timeout=timeout)
    except ArchiveError as exc:
        failures.failed(exc)
        return
    failures.succeeded()
    version = response.get("VersionId")
    if version:
        with contextlib.suppress(ArchiveError), errors(WRITE_PROBE_KEY):
            call(client.delete_object, Bucket=bucket, Key=WRITE_PROBE_KEY, VersionId=version,
                 _timeout=timeout)
