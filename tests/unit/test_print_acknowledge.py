"""A print shop's acknowledgement with spoiled pieces (server.printing.batches.acknowledge) on
SQLite with an archive in memory: the spoiled pieces are queued again once, in one reprint
batch, however often the acknowledgement arrives: a retry sent while the first call is still
building its reprint batch (the print shop's client timed out), or after a first call whose
reprint build failed (S3 away), answers as the first did and queues nothing more."""

from __future__ import annotations

import threading
from datetime import timedelta

import pytest
from sqlalchemy import func, select

from server.errors import FailedPrecondition
from server.printing.batches import BatchService
from server.printing.queue import print_batches, print_pieces
from tests.unit.test_print_closer_rounds import NOW, enqueue, service  # noqa: F401


def fetched_batch(service: BatchService) -> tuple[str, list[str]]:  # noqa: F811
    pieces = enqueue(service, "nordkort", 3)
    [batch_id] = service.close_now(NOW)
    service.mark_fetched(batch_id)
    return batch_id, pieces


def reprints(service: BatchService) -> tuple[int, int]:  # noqa: F811
    """(reprint batches, reprinted pieces) in the database."""
    with service.engine.begin() as conn:
        batches = conn.execute(select(func.count()).select_from(print_batches).where(
            print_batches.c.reason == "reprint")).scalar_one()
        pieces = conn.execute(select(func.count()).select_from(print_pieces).where(
            print_pieces.c.reprint_of.is_not(None))).scalar_one()
    return batches, pieces


def test_a_retry_while_the_first_builds_its_reprint_queues_nothing_twice(service):  # noqa: F811
    batch_id, pieces = fetched_batch(service)
    info = service.get("nordkort", "demo-print", batch_id)
    first_building, second_done = threading.Event(), threading.Event()
    build = service._build

    def slow_first_build(reprint_id: str) -> bool:
        if not first_building.is_set():
            first_building.set()
            second_done.wait(10)  # the first call is still building when the retry comes
        return build(reprint_id)

    service._build = slow_first_build  # type: ignore[method-assign]
    answers = []
    first = threading.Thread(target=lambda: answers.append(
        service.acknowledge(info, [pieces[1]], NOW + timedelta(minutes=5))))
    first.start()
    assert first_building.wait(10)
    try:
        retry = service.acknowledge(service.get("nordkort", "demo-print", batch_id),
                                    [pieces[1]], NOW + timedelta(minutes=6))
    finally:
        second_done.set()
        first.join(10)

    assert reprints(service) == (1, 1)
    [answer] = answers
    assert retry.reprint_batch_id == answer.reprint_batch_id != ""
    assert answer.state == retry.state == "acknowledged"
    reprint = service.get("nordkort", "demo-print", answer.reprint_batch_id)
    assert (reprint.state, reprint.pieces) == ("ready", 1)


def test_a_retry_after_a_failed_reprint_build_answers_as_the_first(service):  # noqa: F811
    batch_id, pieces = fetched_batch(service)
    put = service.store.put

    def s3_away(*args, **kwargs):
        raise ConnectionError("S3 away")

    service.store.put = s3_away  # type: ignore[method-assign]
    info = service.get("nordkort", "demo-print", batch_id)
    try:
        first = service.acknowledge(info, [pieces[0]], NOW + timedelta(minutes=5))
    except ConnectionError:  # what the fault looked like: the print shop sends it again
        first = None
    service.store.put = put  # type: ignore[method-assign]
    again = service.acknowledge(service.get("nordkort", "demo-print", batch_id),
                                [pieces[0]], NOW + timedelta(minutes=6))
    service.close_due(NOW + timedelta(minutes=7))  # the closer builds what was left closing

    assert reprints(service) == (1, 1)
    assert again.state == "acknowledged" and again.reprint_batch_id
    assert first is None or first.reprint_batch_id == again.reprint_batch_id
    assert service.get("nordkort", "demo-print", again.reprint_batch_id).state == "ready"
    with pytest.raises(FailedPrecondition, match="other spoilage"):
        service.acknowledge(again, [pieces[1]], NOW + timedelta(minutes=8))
