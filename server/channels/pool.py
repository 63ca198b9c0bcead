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

import multiprocessing
import os
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

from server.channels import Renderers
from server.compose.layouts import Layout, LayoutRegistry
from server.compose.model import Composition, Output

# WeasyPrint's native libraries (Pango, HarfBuzz, fontconfig) keep about 60 KB per
# rendered document that no Python-level cleanup, fresh engine or malloc_trim gives back
# (measured here); a worker process is therefore replaced after this many documents,
# which bounds its memory at the cost of one warm-up (~2 s) per few minutes of work.
DOCUMENTS_PER_WORKER = 500

# One registry and one set of renderers per worker process, built by the initializer.
_layouts: LayoutRegistry | None = None
_renderers: Renderers | None = None


def _start_worker(layouts_dir: str) -> None:
    global _layouts, _renderers
    _layouts = LayoutRegistry(Path(layouts_dir))
    _renderers = Renderers()


def _render(layout_id: str, version: str, composition: Composition) -> list[Output]:
    assert _layouts is not None and _renderers is not None, "worker not initialised"
    return _renderers.render(composition, _layouts.get(layout_id, version))


def _ready() -> int:
    return os.getpid()


class RenderPool:
    """Same interface as `Renderers.render`, executed in a process pool."""

    def __init__(self, layouts_dir: Path, workers: int | None = None,
                 documents_per_worker: int = DOCUMENTS_PER_WORKER):
        self.workers = workers or os.cpu_count() or 1
        self._pool = ProcessPoolExecutor(
            max_workers=self.workers,
            mp_context=multiprocessing.get_context("spawn"),  # no forked gRPC state
            initializer=_start_worker,
            initargs=(str(layouts_dir),),
            max_tasks_per_child=documents_per_worker,
        )

    def start(self) -> None:
        """Start every worker now (each imports WeasyPrint and loads the layouts), so the
        first customer does not pay for it."""
        for future in [self._pool.submit(_ready) for _ in range(self.workers)]:
            future.result()

    def render(self, composition: Composition, layout: Layout) -> list[Output]:
        return self._pool.submit(_render, layout.id, layout.version, composition).result()

    def close(self) -> None:
        self._pool.shutdown(wait=True, cancel_futures=True)
