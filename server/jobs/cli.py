"""`kanal submit` and `kanal worker`: a JSON Lines file -> a job on a server; a chunk consumer.

    kanal submit FILE.jsonl --layout ID [--address HOST:PORT] [--key KEY] [--name NAME]
    kanal worker --rabbitmq amqp://guest:guest@127.0.0.1:5672/ [--config FILE]

`submit` streams the file line by line (never read whole) with a progress line on stderr,
then follows WatchJob to the end and prints the summary. Each line is either a JSON object
`{"record_key": "...", "data": {...}}` or any other JSON object, which is then the data and
gets its line number as record key.

`worker` consumes chunks from RabbitMQ (see server.jobs.queue) against the S3 and the
PostgreSQL index of the configuration: run it on any machine that reaches both.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import os
import signal
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

CHANNEL_NAMES = {"print": 1, "email": 2, "sms": 3, "einvoice": 4}


def add_parser(commands: Any) -> None:
    p = commands.add_parser("submit", help="stream a JSON Lines file as a job, follow it")
    p.add_argument("file", type=Path, help="JSON Lines: one record per line")
    p.add_argument("--layout", required=True, help="layout id, e.g. card-invoice")
    p.add_argument("--layout-version", default="", help="default: newest")
    p.add_argument("--name", default="", help="job name")
    p.add_argument("--channel", action="append", default=[], choices=sorted(CHANNEL_NAMES),
                   help="channel (repeatable); default: each document's plan")
    p.add_argument("--priority", type=int, default=0)
    p.add_argument("--address", default=os.environ.get("KANAL_ADDRESS", "127.0.0.1:50051"))
    p.add_argument("--key", default=os.environ.get("KANAL_API_KEY"),
                   help="API key (default: env KANAL_API_KEY)")
    p.set_defaults(run=submit)

    p = commands.add_parser("worker", help="run job chunks from RabbitMQ (scale-out)")
    p.add_argument("--rabbitmq", default=os.environ.get("KANAL_RABBITMQ_URL"),
                   help="amqp URL (default: env KANAL_RABBITMQ_URL)")
    p.add_argument("--config", type=Path, help="TOML settings file (S3 + index)")
    p.set_defaults(run=worker)


def _records(path: Path, counter: list[int]) -> Iterator[tuple[str, str]]:
    with path.open(encoding="utf-8") as lines:
        for number, line in enumerate(lines, start=1):
            if not line.strip():
                continue
            item = json.loads(line)
            if isinstance(item, dict) and "record_key" in item and "data" in item:
                key, data = str(item["record_key"]), item["data"]
            else:
                key, data = str(number), item
            counter[0] += 1
            yield key, json.dumps(data, ensure_ascii=False)


def submit(args: argparse.Namespace) -> int:
    import grpc

    from kanal.v1 import jobs_pb2, jobs_pb2_grpc

    if not args.key:
        print("kanal submit: no API key (--key or KANAL_API_KEY)", file=sys.stderr)
        return 2
    metadata = (("authorization", f"Bearer {args.key}"),)
    sent = [0]
    started = time.monotonic()

    def messages() -> Iterator[Any]:
        yield jobs_pb2.SubmitBatchRequest(header=jobs_pb2.JobHeader(
            layout_id=args.layout, layout_version=args.layout_version, job_name=args.name,
            channels=[CHANNEL_NAMES[c] for c in args.channel], priority=args.priority))
        last = 0.0
        for key, data in _records(args.file, sent):
            yield jobs_pb2.SubmitBatchRequest(
                record=jobs_pb2.JobRecord(record_key=key, data_json=data))
            now = time.monotonic()
            if now - last > 0.5:
                print(f"\rsending: {sent[0]} records", end="", file=sys.stderr, flush=True)
                last = now

    with grpc.insecure_channel(args.address) as channel:
        jobs = jobs_pb2_grpc.JobsStub(channel)
        try:
            response = jobs.SubmitBatch(messages(), metadata=metadata)
        except grpc.RpcError as exc:
            print(f"\nkanal submit: {exc.code().name}: {exc.details()}", file=sys.stderr)
            return 1
        print(f"\rstored {response.records} records as job {response.job_id}",
              file=sys.stderr, flush=True)
        last_progress = None
        for progress in jobs.WatchJob(jobs_pb2.GetJobRequest(job_id=response.job_id),
                                      metadata=metadata):
            c = progress.job.counts
            bar = _bar(c.done + c.failed, c.total)
            print(f"\r{bar} {c.done + c.failed}/{c.total} done, {c.failed} failed, "
                  f"{progress.documents_per_second:.1f} docs/s, "
                  f"ETA {progress.eta_seconds:.0f}s   ", end="", file=sys.stderr, flush=True)
            last_progress = progress
        print(file=sys.stderr)
        if last_progress is None:
            return 1
        job = last_progress.job
        errors = jobs.GetJobErrors(jobs_pb2.GetJobErrorsRequest(job_id=job.job_id,
                                                                page_size=20),
                                   metadata=metadata).errors
    names = {v: k for k, v in CHANNEL_NAMES.items()}
    print(f"job {job.job_id}: {job.state}")
    print(f"  documents {job.counts.done}, failed {job.counts.failed}, pages {job.pages}")
    for ch in job.channels:
        print(f"  {names.get(ch.channel, ch.channel)}: {ch.documents} documents, "
              f"{ch.pages} pages")
    for error in errors:
        print(f"  error {error.record_key}: {error.field} {error.message}")
    if job.counts.failed > len(errors):
        print(f"  ... {job.counts.failed - len(errors)} more errors (GetJobErrors)")
    print(f"  duration {time.monotonic() - started:.1f}s")
    return 0 if job.state == "completed" else 3


def _bar(done: int, total: int, width: int = 30) -> str:
    filled = int(width * done / total) if total else width
    return "[" + "#" * filled + "." * (width - filled) + "]"


def worker(args: argparse.Namespace) -> int:
    from server import logs
    from server.config import load_settings
    from server.jobs.worker import WorkerConfig

    if not args.rabbitmq:
        print("kanal worker: needs --rabbitmq or KANAL_RABBITMQ_URL", file=sys.stderr)
        return 2
    settings = load_settings(args.config)
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
    # The consumer runs in a child process replaced every CHUNKS_PER_WORKER chunks, which
    # bounds WeasyPrint's native memory (see server/channels/pool.py).
    context = multiprocessing.get_context("spawn")
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
        if child.exitcode != 0 and not stop.is_set():
            print(f"kanal worker: consumer exited with {child.exitcode}; restarting",
                  file=sys.stderr)
    print(f"kanal worker: ran {ran.value} chunks", file=sys.stderr)
    return 0


def _consume_some(url: str, config: Any, stop: Any, queue: str, ran: Any,
                  log_format: str) -> None:
    """One consumer process's life: up to CHUNKS_PER_WORKER chunks, then make room."""
    from server import logs
    from server.jobs.queue import CHUNKS_PER_WORKER, consume

    logs.configure(log_format)  # a spawned process starts with nothing configured

    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the parent decides when to stop
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    count = consume(url, config, stop, max_chunks=CHUNKS_PER_WORKER, queue=queue)
    with ran.get_lock():
        ran.value += count
