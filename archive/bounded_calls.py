"""S3 requests that never hang their caller: each runs in the store's own threads, and the
caller waits at most its call's time left (archive.deadline) or the store's `call_timeout`.

Why: a paused or wedged S3 accepts connections and then says nothing, which socket timeouts
only notice per read. At most `max_inflight` requests wait on S3 at once; beyond that a
request fails at once with `ArchiveUnavailable` rather than queueing behind a dead endpoint.
An abandoned request ends on its own, at the latest after the client's read timeout.

Shape: `BoundedCalls(where, call_timeout s, max_inflight)`; calling it with
`(request, *args, _timeout=None, **kwargs)` returns `request(*args, **kwargs)`'s result or
raises what it raised; `ArchiveUnavailable` when too many requests wait or the answer does
not come in time; `ArchiveDeadline` (a kind of it) when the call's deadline, not the store's
timeout, left the request less than `MIN_REQUEST_SECONDS`: the caller's deadline was too
short for the call, which says nothing about S3 (a QA caller's 0.3 s Compose was answered
"S3 did not answer within 0.0 s" while S3 was healthy). Used by archive.store.ArchiveStore.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from concurrent.futures import TimeoutError as FutureTimeout
from typing import Any, TypeVar

from archive import deadline
from archive.errors import ArchiveDeadline, ArchiveUnavailable

T = TypeVar("T")

# seconds: a request to S3 given less than this by its call's deadline was cut by the
# deadline (a healthy S3 answers a put or head in milliseconds; a paused one in none)
MIN_REQUEST_SECONDS = 0.25


class BoundedCalls:
    """Requests to one S3 endpoint (`where`, for messages) in up to `max_inflight` threads."""

    def __init__(self, where: str, call_timeout: float, max_inflight: int) -> None:
        self.where = where
        self.call_timeout = call_timeout
        self.max_inflight = max_inflight
        self._threads = ThreadPoolExecutor(max_inflight, thread_name_prefix="s3")
        self._inflight = 0
        self._lock = threading.Lock()

    def __call__(self, request: Callable[..., T], *args: Any, _timeout: float | None = None,
                 **kwargs: Any) -> T:
        """`request(*args, **kwargs)` in these threads; the caller waits at most the call's
        time left, `call_timeout` (or `_timeout`) without a deadline."""
        limit = _timeout or self.call_timeout
        budget = deadline.remaining(limit)
        if not budget:
            raise ArchiveDeadline(f"the call's deadline left no time for a request to "
                                  f"{self.where}")
        with self._lock:
            if self._inflight >= self.max_inflight:
                raise ArchiveUnavailable(f"{self.where} is not keeping up: "
                                         f"{self._inflight} requests already waiting")
            self._inflight += 1
        future = self._threads.submit(request, *args, **kwargs)
        future.add_done_callback(self._done)
        try:
            return future.result(timeout=budget)
        except FutureTimeout:
            if budget < min(limit, MIN_REQUEST_SECONDS):
                raise ArchiveDeadline(
                    f"the call's deadline left {budget:.2f} s for a request to {self.where}, "
                    "too little for an answer") from None
            raise ArchiveUnavailable(
                f"{self.where} did not answer within {budget:.1f} s") from None

    @property
    def in_flight(self) -> int:
        """Requests sent and not answered yet (including abandoned ones)."""
        return self._inflight

    def _done(self, _future: object) -> None:
        with self._lock:
            self._inflight -= 1
