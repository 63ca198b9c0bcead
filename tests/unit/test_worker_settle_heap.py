"""A bulk worker process freezes its heap once, after its first chunk (`worker.settle_heap`):
what is alive then (layouts, compiled templates, locale data, caches) lives as long as the
process, so the cyclic garbage collector stops walking it; garbage is collected first, so
none is kept."""

from __future__ import annotations

import gc
import os

from server.jobs import worker
from server.jobs.worker import ChunkOutcome


class StandInPipeline:
    def __init__(self, calls: list[str]):
        self.calls = calls

    def archive_writes(self) -> None:  # nothing written (server.jobs.worker.Pipeline)
        return None

    def run_chunk(self, job_id: str, chunk: int) -> ChunkOutcome:
        self.calls.append(f"chunk {chunk}")
        return ChunkOutcome(job_id, chunk, True, 50, 0, os.getpid(), 1024)


def test_the_heap_is_frozen_once_after_the_first_chunk(monkeypatch) -> None:
    calls: list[str] = []
    monkeypatch.setattr(worker, "_pipeline", StandInPipeline(calls))
    monkeypatch.setattr(worker, "_heap_settled", False)
    monkeypatch.setattr(worker, "_chunks_run", 0)
    monkeypatch.setattr(gc, "collect", lambda *args: calls.append("collect") or 0)
    monkeypatch.setattr(gc, "freeze", lambda: calls.append("freeze"))
    outcomes = [worker.run_chunk("J", chunk) for chunk in range(3)]
    assert calls == ["chunk 0", "collect", "freeze", "chunk 1", "chunk 2"]
    assert [o.chunk for o in outcomes] == [0, 1, 2] and all(o.ran for o in outcomes)
