"""Admission control: which calls run now, which wait, which are refused, and where they run.

The gRPC server is asyncio (grpc.aio): a call that only waits (an idle stream, a slow
reader, a health check) costs a coroutine, not a thread. Work that blocks (the servicers,
which call S3, the index and the render processes) runs in *lanes*: one thread pool per
kind of call, each with a bound on the calls it holds, in all and per API key. A lane that
is full answers RESOURCE_EXHAUSTED at once, with a retry delay, instead of queueing
without bound; and since every lane has its own threads, a stuck backend or a flood of one
kind of call never starves the others:

- `render`: Compose. At most `render_workers + render_queue` calls compose and render at
  once; the rest are refused, so an admitted call waits behind at most `render_queue`
  others and its latency stays bounded. A call leaves the render queue when its render is
  done (`release_render_slot`), so calls waiting on a slow archive do not block previews.
- `read`: index and archive reads (GetDocument, GetJob, the portal, legal holds,
  ListPrintBatches).
- `quick`: calls that need no backend (ListLayouts, GetLayout).
- `print`: print-shop calls that may build a batch, which merges PDFs (ClosePrintBatches,
  AcknowledgePrintBatch with spoiled pieces).
- `stream`: SubmitBatch, WatchJob, FetchDocument, FetchPrintBatch: few, and few per key,
  each with an idle limit (no message, or the client not reading, for `stream_idle_seconds`)
  and a total limit.

Health checks and reflection run on the event loop itself and are never queued.
"""

from __future__ import annotations

import asyncio
import contextvars
import threading
import time
from collections import Counter
from collections.abc import Callable, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, fields
from typing import Any, TypeVar

from server.compose.layouts import Layout
from server.compose.model import Composition, Output
from server.errors import Overloaded

T = TypeVar("T")

LANE_OF: dict[str, str] = {
    "/kanal.v1.Documents/Compose": "render",
    "/kanal.v1.Layouts/ListLayouts": "quick",
    "/kanal.v1.Layouts/GetLayout": "quick",
    "/kanal.v1.Jobs/SubmitBatch": "stream",
    "/kanal.v1.Events/PublishEventStream": "stream",
    "/kanal.v1.Jobs/WatchJob": "stream",
    "/kanal.v1.Portal/FetchDocument": "stream",
    "/kanal.v1.Deliveries/WatchDeliveries": "stream",
    "/kanal.v1.PrintShop/FetchPrintBatch": "stream",
    "/kanal.v1.PrintShop/AcknowledgePrintBatch": "print",
    "/kanal.v1.PrintShop/ClosePrintBatches": "print",
}
DEFAULT_LANE = "read"


@dataclass(frozen=True)
class Limits:
    """The `[limits]` settings (all optional)."""

    render_queue: int = 8  # Compose calls waiting for a render process, beyond those rendering
    render_queue_per_key: int = 0  # 0: one key may use the whole queue
    reads: int = 32  # read calls in flight (8 run at once, the rest wait their turn)
    reads_per_key: int = 16
    streams: int = 16  # streaming calls open at once
    streams_per_key: int = 4
    stream_idle_seconds: float = 60.0  # no message from the client, or not reading ours
    submit_max_seconds: float = 3600.0  # one SubmitBatch stream, start to end
    stream_max_seconds: float = 6 * 3600.0  # WatchJob, FetchDocument, FetchPrintBatch

    @classmethod
    def from_dict(cls, raw: Mapping[str, Any]) -> Limits:
        known = {f.name: f.type for f in fields(cls)}
        unknown = sorted(set(raw) - set(known))
        if unknown:
            raise ValueError(f"[limits]: unknown setting(s) {', '.join(unknown)}")
        values: dict[str, Any] = {}
        for name, value in raw.items():
            kind = float if known[name] == "float" else int
            if isinstance(value, bool) or not isinstance(value, (int, float)) or value < 0:
                raise ValueError(f"[limits] {name} must be a number >= 0")
            values[name] = kind(value)
        return cls(**values)


class Lane:
    """A thread pool with a bound on the calls it holds (`capacity`, and `per_key` for one
    API key) and on the calls running in its threads (`threads`)."""

    def __init__(self, name: str, *, threads: int, capacity: int, per_key: int,
                 slot_seconds: float = 1.0, parallel: int | None = None):
        self.name = name
        self.threads = threads
        self.parallel = parallel or threads  # calls that make progress at once
        self.capacity = capacity
        self.per_key = per_key or capacity
        self.executor = ThreadPoolExecutor(threads, thread_name_prefix=f"rpc-{name}")
        self._lock = threading.Lock()
        self._held = 0  # admitted calls that still hold their place in the lane
        self._running = 0  # jobs in this lane's threads or waiting for one
        self._by_key: Counter[str] = Counter()
        self._slot_seconds = slot_seconds  # moving average of a call's time in the lane

    def admit(self, key: str) -> Ticket:
        """A place in the lane for one call of `key`, or Overloaded (RESOURCE_EXHAUSTED)."""
        with self._lock:
            if self._by_key[key] >= self.per_key:
                raise Overloaded(
                    f"this API key already has {self.per_key} {self.name} calls in flight",
                    retry_after=self._retry_after())
            # A render call released early may still hold a thread (archiving): admit only
            # when a thread is free for it, so an admitted call never waits for one.
            if self._held >= self.capacity or self._running >= max(self.threads,
                                                                   self.capacity):
                raise Overloaded(
                    f"the server's {self.name} queue is full ({self.capacity} calls); "
                    "retry later", retry_after=self._retry_after())
            self._held += 1
            self._by_key[key] += 1
        return Ticket(self, key)

    def run(self, context: contextvars.Context, fn: Callable[..., T], *args: Any
            ) -> asyncio.Future[T]:
        """`fn(*args)` in one of this lane's threads, in `context` (the call's log fields,
        caller and deadline), as an awaitable."""
        with self._lock:
            self._running += 1
        future = self.executor.submit(context.run, fn, *args)
        future.add_done_callback(self._job_done)
        return asyncio.wrap_future(future)

    def _job_done(self, _future: object) -> None:
        with self._lock:
            self._running -= 1

    def _retry_after(self) -> float:
        """About when a place frees up: the calls ahead, `parallel` at a time."""
        return round(max(0.1, self._held / max(self.parallel, 1) * self._slot_seconds), 2)

    def _release(self, key: str, seconds: float | None) -> None:
        with self._lock:
            self._held -= 1
            self._by_key[key] -= 1
            if not self._by_key[key]:
                del self._by_key[key]
            if seconds is not None:
                self._slot_seconds = 0.8 * self._slot_seconds + 0.2 * seconds

    @property
    def held(self) -> int:
        return self._held

    def close(self) -> None:
        self.executor.shutdown(wait=False, cancel_futures=True)


class Ticket:
    """One admitted call's place in its lane: released when the call ends, or earlier."""

    def __init__(self, lane: Lane, key: str):
        self.lane = lane
        self.key = key
        self._released = False
        self._lock = threading.Lock()

    def release(self, seconds: float | None = None) -> None:
        """Give the place back (idempotent); `seconds` feeds the lane's retry estimate."""
        with self._lock:
            if self._released:
                return
            self._released = True
        self.lane._release(self.key, seconds)


_current_ticket: contextvars.ContextVar[Ticket | None] = contextvars.ContextVar(
    "admission_ticket", default=None)


def set_ticket(ticket: Ticket | None) -> None:
    _current_ticket.set(ticket)


def release_render_slot(seconds: float) -> None:
    """Called by the renderer when a document is rendered: the call leaves the render
    queue (it may still archive and index)."""
    ticket = _current_ticket.get()
    if ticket is not None and ticket.lane.name == "render":
        ticket.release(seconds)


class RenderQueueExit:
    """A DocumentRenderer (server.channels) that tells admission when a render is done."""

    def __init__(self, inner: Any):
        self.inner = inner

    def render(self, composition: Composition, layout: Layout) -> list[Output]:
        started = time.perf_counter()
        try:
            return self.inner.render(composition, layout)
        finally:
            release_render_slot(time.perf_counter() - started)

    def render_planned(self, composition: Composition, layout: Layout) -> Any:
        """`render`, and the plan's fallbacks checked (server.channels.Renderers)."""
        started = time.perf_counter()
        try:
            return self.inner.render_planned(composition, layout)
        finally:
            release_render_slot(time.perf_counter() - started)


class Lanes:
    """The server's lanes, sized from its limits and its render processes."""

    def __init__(self, limits: Limits, render_workers: int):
        render_capacity = render_workers + limits.render_queue
        self.by_name = {
            # threads beyond the queue: calls that have rendered and now wait on the archive
            "render": Lane("render", threads=render_capacity + 16, capacity=render_capacity,
                           per_key=limits.render_queue_per_key, slot_seconds=0.3,
                           parallel=render_workers),
            "read": Lane("read", threads=8, capacity=limits.reads,
                         per_key=limits.reads_per_key, slot_seconds=0.05),
            "quick": Lane("quick", threads=2, capacity=32, per_key=16, slot_seconds=0.01),
            "print": Lane("print", threads=2, capacity=8, per_key=4),
            "stream": Lane("stream", threads=limits.streams, capacity=limits.streams,
                           per_key=limits.streams_per_key, slot_seconds=5.0),
        }
        self.render_workers = render_workers

    def for_method(self, method: str) -> Lane:
        return self.by_name[LANE_OF.get(method, DEFAULT_LANE)]

    def close(self) -> None:
        for lane in self.by_name.values():
            lane.close()
