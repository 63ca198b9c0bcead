"""The real-time lane: Composition -> Outputs in worker processes, one per core.

WeasyPrint is CPU-bound Python. Rendered in the server's gRPC threads, concurrent
documents share one GIL and thrash: measured here, eight concurrent Compose calls got
half the throughput of one at a time. So the server hands rendering (the expensive
part) to a pool of processes, each with its own warm `Renderers` (font configuration,
parsed stylesheets, compiled templates), while composing, archiving and indexing stay in
the server. Bulk job chunks run in separate worker processes at a lower CPU priority
(server/jobs), so a real-time document never waits behind a chunk.
"""

from __future__ import annotations

import os
import threading
import time
from concurrent.futures import Future, ProcessPoolExecutor
from concurrent.futures import TimeoutError as FutureTimeout
from concurrent.futures.process import BrokenProcessPool
from pathlib import Path
from typing import Any

from archive import deadline
from server import logs, metrics, tempdirs
from server.channels import Renderers
from server.channels.fallback_check import Rendering
from server.compose.layouts import Layout, LayoutRegistry
from server.compose.model import Composition, Output
from server.errors import DeadlineExceeded, Unavailable
from server.processes import process_pool, settle_heap

log = logs.get_logger(__name__)

# WeasyPrint's native libraries (Pango, HarfBuzz, fontconfig) keep about 60 KB per
# rendered document that no Python-level cleanup, fresh engine or malloc_trim gives back
# (measured here), so the pool is replaced by a fresh one after this many documents per
# worker. Not with ProcessPoolExecutor(max_tasks_per_child=...): on Python 3.11 it
# deadlocks once workers retire with work queued (CPython gh-115634).
DOCUMENTS_PER_WORKER = 500

# A render not finished this long after it was handed to the pool is taken for a hung
# render process (frozen, or looping in a native library): a card invoice renders in
# 0.06 s and the longest layouts in seconds. Without a limit a Compose without a gRPC
# deadline (the README's own examples set none) waited for ever, and every later one
# queued behind it, while health said SERVING. The pool's processes are then killed and
# a fresh pool takes over, as when one dies.
HANG_SECONDS = 120.0

# One registry and one set of renderers per worker process, built by the initializer.
_layouts: LayoutRegistry | None = None
_renderers: Renderers | None = None
_rendered = 0  # documents rendered by this worker process


def _start_worker(layouts_dir: str, state_dir: str | None) -> None:
    """Pool initializer, once tied to the server (server.processes.process_pool)."""
    global _layouts, _renderers
    if state_dir is not None:  # first: WeasyPrint's font folder goes in it (server.tempdirs)
        tempdirs.claim(Path(state_dir))
    logs.configure_worker()
    metrics.buffer_observations()  # handed back with each result, see server.metrics
    _layouts = LayoutRegistry(Path(layouts_dir))
    _renderers = Renderers()
    settle_heap()  # the modules and layouts: never walked by a collection again


def _settle_once_warm() -> None:
    """As the second document begins (never delaying a result): what the first render
    made long-lived (the engine's modules and caches) is frozen too (server.processes).
    Without it a full collection walked them every few hundred documents: 75-85 ms CPU
    in one call, and the calls queued behind it waited as long."""
    global _rendered
    _rendered += 1
    if _rendered == 2:
        settle_heap()


def _render(layout_id: str, version: str, composition: Composition
            ) -> tuple[list[Output], tuple[metrics.Observation, ...]]:
    assert _layouts is not None and _renderers is not None, "worker not initialised"
    _settle_once_warm()
    outputs = _renderers.render(composition, _layouts.get(layout_id, version))
    return outputs, metrics.drain()


def _render_planned(layout_id: str, version: str, composition: Composition
                    ) -> tuple[Rendering, tuple[metrics.Observation, ...]]:
    assert _layouts is not None and _renderers is not None, "worker not initialised"
    _settle_once_warm()
    rendering = _renderers.render_planned(composition, _layouts.get(layout_id, version))
    return rendering, metrics.drain()


def _ready() -> int:
    return os.getpid()


def _warm(pool: ProcessPoolExecutor, workers: int) -> None:
    """Start every worker now (each imports WeasyPrint and loads the layouts)."""
    for future in [pool.submit(_ready) for _ in range(workers)]:
        future.result()


class RenderPool:
    """Same interface as `Renderers.render`, executed in a process pool that is replaced,
    warm, every `documents_per_worker` documents per worker.

    With a `state_dir`, each render process keeps its temporary files (WeasyPrint's font
    folder) in its own folder under it, and every new pool first removes the folders of
    render processes that ended without removing theirs (killed, or ended with their
    server: server.processes): see server.tempdirs. Without one they go to the system's."""

    def __init__(self, layouts_dir: Path, workers: int | None = None,
                 documents_per_worker: int = DOCUMENTS_PER_WORKER,
                 state_dir: Path | None = None, hang_seconds: float | None = None):
        self.layouts_dir = layouts_dir
        self.hang_seconds = HANG_SECONDS if hang_seconds is None else hang_seconds
        # futures handed to a pool and not done yet -> (that pool, monotonic time handed)
        self._in_flight: dict[Future[Any], tuple[ProcessPoolExecutor, float]] = {}
        self.state_dir = state_dir
        self.workers = workers or os.cpu_count() or 1
        self.documents_per_worker = documents_per_worker
        self._lock = threading.Lock()
        self._rendered = 0
        self._replacing = False
        self._pool = self._new_pool()

    def _new_pool(self) -> ProcessPoolExecutor:
        if self.state_dir is not None:
            tempdirs.sweep(self.state_dir)
        # 'spawn' processes (no forked gRPC state) that die with the server, however it
        # dies (server.processes)
        return process_pool(self.workers, _start_worker,
                            (str(self.layouts_dir),
                             None if self.state_dir is None else str(self.state_dir)))

    def start(self) -> None:
        """Warm the workers now, so the first customer does not pay for it."""
        _warm(self._pool, self.workers)

    def render(self, composition: Composition, layout: Layout) -> list[Output]:
        outputs: list[Output] = self._run(_render, composition, layout)
        return outputs

    def render_planned(self, composition: Composition, layout: Layout) -> Rendering:
        rendering: Rendering = self._run(_render_planned, composition, layout)
        return rendering

    def _run(self, work: Any, composition: Composition, layout: Layout) -> Any:
        """`work(layout id, version, composition)` in a worker -> its result.

        A render process that dies (the OOM killer, an operator's SIGKILL, a crash in a
        native library) breaks its whole pool: every document in flight in it fails with
        `BrokenProcessPool`, and so would every later one. The broken pool is replaced by
        a fresh one at once, and a document that was in flight is rendered once more
        there: it is most likely not the cause. If the fresh pool breaks too, the call
        fails with `BrokenProcessPool` (gRPC UNAVAILABLE: retryable) and later calls get
        yet another pool. Raises `DeadlineExceeded` when the call's deadline passes, and
        `Unavailable` when the document is not rendered within `hang_seconds` (the pool's
        processes are then replaced: see HANG_SECONDS)."""
        for attempt in (1, 2):
            with self._lock:  # submit under the lock: the pool may be swapped right after
                pool = self._replace_hung()
                try:
                    future = pool.submit(work, layout.id, layout.version, composition)
                except BrokenProcessPool:  # broken by an earlier document's process
                    pool = self._replace_broken(pool)
                    future = pool.submit(work, layout.id, layout.version, composition)
                self._in_flight[future] = (pool, time.monotonic())
                future.add_done_callback(self._forget)
                self._rendered += 1
                if (self._rendered >= self.workers * self.documents_per_worker
                        and not self._replacing):
                    self._replacing = True
                    threading.Thread(target=self._replace, name="render-pool-replace",
                                     daemon=True).start()
            left = deadline.remaining()
            try:
                result, observed = future.result(
                    timeout=self.hang_seconds if left is None else min(left, self.hang_seconds))
            except FutureTimeout:  # the caller's deadline passed while it waited for a worker
                future.cancel()
                if left is None or left > self.hang_seconds:  # our limit, not the caller's
                    with self._lock:
                        self._replace_hung()
                    raise Unavailable(
                        f"no render process finished the document within "
                        f"{self.hang_seconds:g} s; the render processes were replaced, "
                        "retry") from None
                raise DeadlineExceeded("the document was not rendered within the call's "
                                       "deadline (waiting for a render process included); a "
                                       "retry needs a longer deadline") from None
            except BrokenProcessPool:  # a render process died with this document in flight
                with self._lock:
                    self._replace_broken(pool)
                log.warning("render process ended with a document in flight",
                            document_id=composition.document_id, attempt=attempt)
                if attempt == 2:
                    raise
                continue
            metrics.replay(observed)
            return result
        raise AssertionError("unreachable")

    def _forget(self, future: Future[Any]) -> None:
        self._in_flight.pop(future, None)  # no lock: may run inside `submit`, under it

    def _replace_hung(self) -> ProcessPoolExecutor:
        """Under `_lock`: when a document handed to the current pool more than
        `hang_seconds` ago is still not done, its processes are killed and a fresh pool
        takes over (the documents in flight there are rendered once more, see `_run`)
        -> the current pool. Checked at every submit, so callers whose own deadlines are
        shorter than `hang_seconds` bring the lane back too."""
        pool, now = self._pool, time.monotonic()
        if any(owner is pool and now - handed > self.hang_seconds and not future.done()
               for future, (owner, handed) in list(self._in_flight.items())):
            log.warning("render pool hung: a document was not rendered in time",
                        seconds=self.hang_seconds)
            for process in list((getattr(pool, "_processes", None) or {}).values()):
                process.kill()
            pool = self._replace_broken(pool)
        return pool

    def _replace_broken(self, broken: ProcessPoolExecutor) -> ProcessPoolExecutor:
        """Under `_lock`: a fresh pool instead of `broken` (unless another call replaced it
        already) -> the current pool. Not warmed: its processes start with the next
        document, which pays for it once (about a second)."""
        if self._pool is broken:
            self._pool = self._new_pool()
            self._rendered = 0
            broken.shutdown(wait=False)
            log.warning("render pool replaced: one of its processes ended")
        return self._pool

    def _replace(self) -> None:
        """A fresh, warmed pool takes over; the old one finishes what it has, then exits."""
        fresh = self._new_pool()
        _warm(fresh, self.workers)
        with self._lock:
            old, self._pool = self._pool, fresh
            self._rendered = 0
            self._replacing = False
        old.shutdown(wait=False)

    def worker_pids(self) -> list[int]:
        """The current render processes' ids (started ones)."""
        return list(getattr(self._pool, "_processes", {}) or {})

    def close(self) -> None:
        with self._lock:
            pool = self._pool
        pool.shutdown(wait=True, cancel_futures=True)
