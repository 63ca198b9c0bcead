"""`kanal worker` (RabbitMQ) replaces its consumer process by the LocalQueue's rule: once
the process's peak RSS has grown by more than GROWTH_LIMIT_KB since its first chunk, not
every 10 chunks (a new worker costs seconds of CPU; a Typst worker's memory levels off).

A real RabbitMQ queue and the real consume loop (`consume(..., until_grown=True)`, what each
`kanal worker` child process runs); the chunk itself is a stand-in that reports the peak RSS
a real worker's ChunkOutcome would carry."""

from __future__ import annotations

import json
import os
import threading
import uuid

import pika
import pytest

from server.jobs import worker
from server.jobs.queue import GROWTH_LIMIT_KB, consume, declare
from server.jobs.worker import ChunkOutcome

pytestmark = pytest.mark.integration

RABBITMQ = os.environ.get("KANAL_TEST_RABBITMQ_URL", "amqp://guest:guest@127.0.0.1:5672/%2F")
CHUNKS = 24  # more than the 10 a consumer process used to run
FIRST_PEAK_KB = 300 * 1024


class StandInPipeline:
    """Runs each chunk by reporting the peak RSS `peaks` gives for it; stops the consumer
    after the last chunk."""

    def __init__(self, peaks: list[int], stop: threading.Event):
        self.peaks, self.stop, self.ran = peaks, stop, []
        self.jobs = None  # only read when a chunk fails

    def run_chunk(self, job_id: str, chunk: int) -> ChunkOutcome:
        self.ran.append(chunk)
        if len(self.ran) == CHUNKS:
            self.stop.set()
        return ChunkOutcome(job_id, chunk, True, 50, 0, os.getpid(), self.peaks[chunk])


def consume_with(peaks: list[int], monkeypatch) -> tuple[list[int], int]:  # type: ignore[no-untyped-def]
    """Publish CHUNKS chunks, run one consumer process's loop; (chunks it ran, chunks left
    on the queue for the next process)."""
    queue = f"kanal.test.{uuid.uuid4().hex[:8]}"
    connection = pika.BlockingConnection(pika.URLParameters(RABBITMQ))
    channel = connection.channel()
    declare(channel, queue)
    for chunk in range(CHUNKS):
        channel.basic_publish(exchange="", routing_key=queue,
                              body=json.dumps({"job_id": "J", "chunk": chunk}).encode())
    stop = threading.Event()
    pipeline = StandInPipeline(peaks, stop)
    monkeypatch.setattr(worker.Pipeline, "build", staticmethod(lambda config: pipeline))
    try:
        ran = consume(RABBITMQ, None, stop, queue=queue, until_grown=True)  # type: ignore[arg-type]
        assert ran == len(pipeline.ran)
        left = channel.queue_declare(queue=queue, passive=True).method.message_count
    finally:
        channel.queue_delete(queue)
        connection.close()
    return pipeline.ran, left


def test_a_consumer_whose_memory_stays_flat_keeps_running(monkeypatch):
    ran, left = consume_with([FIRST_PEAK_KB + 1024] * CHUNKS, monkeypatch)
    assert (len(ran), left) == (CHUNKS, 0)


def test_a_consumer_whose_memory_grows_makes_room_for_a_fresh_process(monkeypatch):
    step = GROWTH_LIMIT_KB // 3 + 1  # past the limit at the fourth chunk
    ran, left = consume_with([FIRST_PEAK_KB + n * step for n in range(CHUNKS)], monkeypatch)
    assert ran == [0, 1, 2, 3]  # acknowledged, then the process ends
    assert left == CHUNKS - 4  # for the next consumer process
