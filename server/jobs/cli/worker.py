"""`kanal worker`: consumes chunks from RabbitMQ (see server.jobs.queue) against the S3 and
the PostgreSQL index of the configuration: run it on any machine that reaches both."""

from __future__ import annotations

import argparse
import os
import signal
import sys
from typing import Any


def worker(args: argparse.Namespace) -> int:
    from server.processes import run_on_jemalloc, tied_context

    # first (what is imported before it is imported twice); the consumer processes inherit it
    run_on_jemalloc()

    from server import logs, tempdirs
    from server.config import load_settings
    from server.jobs.worker import WorkerConfig

    if not args.rabbitmq:
        print("kanal worker: needs --rabbitmq or KANAL_RABBITMQ_URL", file=sys.stderr)
        return 2
    settings = load_settings(args.config)
    tempdirs.claim(settings.state_dir)  # and its consumer processes theirs (server.tempdirs)
    tempdirs.sweep(settings.state_dir)
    logs.configure(settings.log_format)
    s3 = settings.s3
    if s3.embedded or not settings.index_url:
        print("kanal worker: needs a shared S3 endpoint and index url (PostgreSQL)",
              file=sys.stderr)
        return 2
    config = WorkerConfig(
        index_url=settings.index_url, s3_endpoint=s3.endpoint or "", s3_bucket=s3.bucket,
        s3_access_key=s3.access_key, s3_secret_key=s3.secret_key, s3_region=s3.region,
        layouts_dir=settings.layouts_dir, retention=dict(settings.retention),
        max_data_bytes=settings.max_data_bytes,
        plan=dict(settings.plan), printing=dict(settings.printing), nice=0,
        delivery=dict(settings.delivery), state_dir=settings.state_dir.resolve(),
    )
    # The consumer runs in a child process replaced once its memory has grown by
    # GROWTH_LIMIT_KB (server.jobs.queue.MemoryGrowth, the LocalQueue's rule), which bounds
    # WeasyPrint's native memory (see server/channels/pool.py) and keeps a warm Typst
    # worker, whose memory levels off.
    context = tied_context()  # the consumer dies with this process (server.processes)
    stop = context.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: stop.set())
    queue = os.environ.get("KANAL_RABBITMQ_QUEUE", "kanal.chunks")
    ran = context.Value("i", 0)
    while not stop.is_set():
        child = context.Process(target=_consume_some, args=(
            args.rabbitmq, config, stop, queue, ran, settings.log_format))
        child.start()
        child.join()
        tempdirs.sweep(settings.state_dir)  # what the child left, had it to end abruptly
        if child.exitcode != 0 and not stop.is_set():
            print(f"kanal worker: consumer exited with {child.exitcode}; restarting",
                  file=sys.stderr)
    print(f"kanal worker: ran {ran.value} chunks", file=sys.stderr)
    return 0


def _consume_some(url: str, config: Any, stop: Any, queue: str, ran: Any,
                  log_format: str) -> None:
    """One consumer process's life: chunks until its memory has grown, then make room.
    Started by `tied_context`, it is killed with `kanal worker` however that dies (SIGKILL,
    the OOM killer): it ignores SIGTERM, and an orphan went on taking chunks."""
    from server import logs, tempdirs
    from server.jobs.queue import consume

    tempdirs.claim(config.state_dir)
    logs.configure(log_format)  # a spawned process starts with nothing configured

    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the parent decides when to stop
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    count = consume(url, config, stop, queue=queue, until_grown=True)
    with ran.get_lock():
        ran.value += count
