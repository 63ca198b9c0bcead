"""`kanal submit`, `kanal job` and `kanal worker`: a JSON Lines file -> a job on a server; a
job's state; a chunk consumer.

    kanal submit FILE.jsonl --layout ID [--name NAME] [--channel print ...] [--priority N]
    kanal job JOB_ID [--cancel | --errors]
    kanal worker --rabbitmq amqp://guest:guest@127.0.0.1:5672/ [--config FILE]

`submit` streams the file line by line (never read whole), then follows WatchJob to the end
and prints the summary. Each line is either a JSON object `{"record_key": "...", "data":
{...}}` or any other JSON object, which is then the data and gets its line number as record
key (a byte-order mark at the start of the file, as Windows exports often write, is
dropped). Records are carried exactly: numbers keep the digits they were written with (never
through a float), and a line that cannot be carried exactly (not JSON, a key twice in one
object, NaN or Infinity, not UTF-8) stops the submission before the job is sealed (the
stream ends with a message the server refuses, never a cancel it may read as the end), so
nothing of it is stored; so does a record key the server would refuse (empty, too long, a
control character), named by its line, and a record the server refuses (it names
`records[n]`: a key used twice) is named by its line too. Progress goes to stderr: a line
redrawn in place on a terminal, a plain line every few seconds otherwise (logs, CI).

`worker` consumes chunks from RabbitMQ (see server.jobs.queue) against the S3 and the
PostgreSQL index of the configuration: run it on any machine that reaches both.
"""

from __future__ import annotations

import argparse
import bisect
import itertools
import json
import multiprocessing
import os
import re
import signal
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any, TextIO

from server.client import (
    ClientError,
    add_connection_options,
    connect,
    describe,
    print_message,
    whole_number,
)
from server.errors import quote

CHANNEL_NAMES = {"print": 1, "email": 2, "sms": 3, "einvoice": 4, "mailbox": 5}
# JobHeader.priority is a proto int32: a larger value would fail only while the request
# stream is written ("UNKNOWN: Exception iterating requests!"), so the option is checked.
MIN_PRIORITY, MAX_PRIORITY = -(2**31), 2**31 - 1
PLAIN_PROGRESS_SECONDS = 5.0
EXIT_CODES = """exit codes:
  0  the job completed: every record became a document
  1  nothing submitted (unreadable file, a record that cannot be carried exactly, no
     records, refused by the server, server unreachable) or the server was lost while
     following the job (it goes on in the server: `kanal job JOB_ID`)
  2  usage error
  3  the job completed with errors: some records failed (listed, see GetJobErrors)
  4  the job was cancelled"""


def add_parser(commands: Any) -> None:
    p = commands.add_parser(
        "submit", help="stream a JSON Lines file as a job, follow it",
        description="Stream a JSON Lines file to kanal.v1.Jobs/SubmitBatch as one job, show "
                    "its progress and print its summary.",
        epilog=EXIT_CODES, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("file", type=Path,
                   help='JSON Lines: one record per line, {"record_key": ..., "data": {...}} '
                        "or just the data (its record key is then its line number)")
    p.add_argument("--layout", required=True, help="layout id, e.g. card-invoice")
    p.add_argument("--layout-version", default="", help="layout version (default: newest)")
    p.add_argument("--name", default="", help="job name, for people and logs")
    p.add_argument("--channel", action="append", default=[], choices=sorted(CHANNEL_NAMES),
                   help="render this channel (repeatable; default: each document's plan)")
    p.add_argument("--priority", default=0,
                   type=whole_number(MIN_PRIORITY, MAX_PRIORITY,
                                     "JobHeader.priority is a 32-bit integer"),
                   help="higher runs before lower when jobs wait: a whole number within "
                        f"{MIN_PRIORITY}..{MAX_PRIORITY}, e.g. -1 for background work "
                        "(default 0)")
    p.add_argument("--idempotency-key", default="",
                   help="makes resubmitting safe: the same key with the same file and "
                        "options follows the first job instead of making a new one")
    add_connection_options(p)
    p.set_defaults(run=submit)

    p = commands.add_parser("job", help="show a job (or cancel it, or list its errors)",
                            description="kanal.v1.Jobs/GetJob as JSON.")
    p.add_argument("job_id", help="the id `kanal submit` printed")
    action = p.add_mutually_exclusive_group()
    action.add_argument("--cancel", action="store_true", help="cancel the job (CancelJob)")
    action.add_argument("--errors", action="store_true",
                        help="list the records that failed (GetJobErrors, first 1000)")
    add_connection_options(p)
    p.set_defaults(run=job)

    p = commands.add_parser("worker", help="run job chunks from RabbitMQ (scale-out)")
    p.add_argument("--rabbitmq", default=os.environ.get("KANAL_RABBITMQ_URL"),
                   help="amqp URL (default: env KANAL_RABBITMQ_URL)")
    p.add_argument("--config", type=Path, help="TOML settings file (S3 + index)")
    p.set_defaults(run=worker)


# --- records, exactly as written -----------------------------------------------------------------


class _Number(str):
    """A JSON number literal exactly as written in the file."""


class RecordRefused(ValueError):
    """A line that cannot be carried to the server exactly."""


def _unique_keys(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    seen: set[str] = set()
    for key, _ in pairs:
        if key in seen:
            raise RecordRefused(f"key {quote(key)} appears twice in one object")
        seen.add(key)
    return dict(pairs)


def _not_a_number(name: str) -> Any:
    raise RecordRefused(f"{name} is not a JSON number")


def _string(text: str) -> str:
    # A lone surrogate (written as a "\\ud800" escape) has no UTF-8: send the escape itself.
    if any("\ud800" <= c <= "\udfff" for c in text):
        return json.dumps(text)
    return json.dumps(text, ensure_ascii=False)


def exact_json(value: Any) -> str:
    """JSON text of a value parsed by `parse_record`: numbers as their original literals."""
    if isinstance(value, _Number):
        return str.__str__(value)
    if isinstance(value, str):
        return _string(value)
    if isinstance(value, dict):
        return "{" + ",".join(f"{_string(k)}:{exact_json(v)}" for k, v in value.items()) + "}"
    if isinstance(value, list):
        return "[" + ",".join(exact_json(v) for v in value) + "]"
    return json.dumps(value)  # true, false, null


def parse_record(line: str) -> Any:
    """A JSON line -> values with every number kept as its literal; RecordRefused if the
    line cannot be carried exactly."""
    try:
        return json.loads(line, parse_float=_Number, parse_int=_Number,
                          parse_constant=_not_a_number, object_pairs_hook=_unique_keys)
    except RecursionError:
        raise RecordRefused("nested too deeply") from None
    except json.JSONDecodeError as exc:
        raise RecordRefused(f"not JSON: {exc.msg} at column {exc.colno}") from None


def _record_key(item: dict[str, Any]) -> str:
    """`record_key` as sent: a string, or a number's digits as written; RecordRefused without
    "data" (was sent as the data) and for null, true, an object or an array (was str(): "None")."""
    if "data" not in item:
        raise RecordRefused('has "record_key" but no "data": a record is '
                            '{"record_key": ..., "data": {...}} or only the data')
    value = item["record_key"]
    if isinstance(value, str):  # numbers are kept as their literal (_Number, a str)
        return str(value)
    kind = ("null" if value is None else "a boolean" if isinstance(value, bool)
            else "an object" if isinstance(value, dict) else "an array")
    raise RecordRefused(f"record_key must be a string or a number, not {kind}")


def _check_key(key: str) -> None:
    """RecordRefused for a record key the server would refuse (server.api.wire's limits):
    said here, with the file's line, not by the server, which can only count records."""
    from server.api.wire import field_problem

    problem = "is empty" if not key else field_problem("kanal.v1.JobRecord.record_key", key)
    if problem:
        raise RecordRefused(f"record_key {quote(key)} {problem}")


class RecordLines:
    """The line of the file each record came from, for the server's errors, which name a
    record by its place (`records[n]`, n from 0). Kept as the few places where blank lines
    were skipped, not a number per record: a file of millions of records costs nothing."""

    def __init__(self) -> None:
        self._gaps: list[tuple[int, int]] = []  # (record n, lines skipped before it)

    def note(self, n: int, line: int) -> None:
        skipped = line - 1 - n
        if skipped != (self._gaps[-1][1] if self._gaps else 0):
            self._gaps.append((n, skipped))

    def line(self, n: int) -> int:
        """The line (from 1) of record n, as noted by `records`."""
        at = bisect.bisect_right(self._gaps, (n, sys.maxsize)) - 1
        return n + 1 + (self._gaps[at][1] if at >= 0 else 0)


_RECORD_INDEX = re.compile(r"\brecords\[(\d+)\]")


def records(path: Path, lines: RecordLines | None = None) -> Iterator[tuple[str, str]]:
    """(record key, data JSON) per non-empty line; RecordRefused naming the line. `lines`:
    notes the line of every record yielded."""
    try:
        file = path.open("rb")  # decoded line by line, so an error names its line
    except OSError as exc:
        raise ClientError(f"cannot read {path}: {exc.strerror or exc}") from None
    count = 0  # records yielded
    with file:
        for number, raw in enumerate(file, start=1):
            try:
                # a byte-order mark starts many files exported on Windows: dropped on the
                # first line only (the server refuses one in a record's JSON text)
                line = raw.decode("utf-8-sig" if number == 1 else "utf-8")
                if not line.strip():
                    continue
                item = parse_record(line)
                if isinstance(item, dict) and "record_key" in item:
                    key, data = _record_key(item), item["data"]
                    _check_key(key)
                else:
                    key, data = str(number), item
                carried = exact_json(data)
            except UnicodeDecodeError:
                raise RecordRefused(f"{path} line {number}: not UTF-8") from None
            except RecursionError:
                raise RecordRefused(f"{path} line {number}: nested too deeply") from None
            except RecordRefused as exc:
                raise RecordRefused(f"{path} line {number}: {exc}") from None
            if lines is not None:
                lines.note(count, number)
            count += 1
            yield key, carried


# --- progress ------------------------------------------------------------------------------------


class Progress:
    """One status line on `stream`: redrawn in place on a terminal, else printed as a plain
    line at most every PLAIN_PROGRESS_SECONDS (and always when `final`)."""

    def __init__(self, stream: TextIO):
        self.stream = stream
        self.live = stream.isatty()
        self._last = time.monotonic()  # off a terminal, the first line after a while
        self._drawn = False

    def show(self, text: str, final: bool = False) -> None:
        now = time.monotonic()
        if self.live:
            print(f"\r{text}   ", end="\n" if final else "", file=self.stream, flush=True)
            self._drawn = not final
        elif final or now - self._last >= PLAIN_PROGRESS_SECONDS:
            print(text, file=self.stream, flush=True)
            self._last = now

    def end(self) -> None:
        """Leave the redrawn line before printing anything else."""
        if self._drawn:
            print(file=self.stream, flush=True)
            self._drawn = False


# --- submit --------------------------------------------------------------------------------------


def submit(args: argparse.Namespace) -> int:
    import grpc

    from kanal.v1 import jobs_pb2, jobs_pb2_grpc

    record_lines = RecordLines()
    lines = records(args.file, record_lines)
    try:
        first = next(lines, None)
    except RecordRefused as exc:
        raise ClientError(f"{exc}; nothing was submitted") from None
    if first is None:
        raise ClientError(f"{args.file} has no records; nothing was submitted")
    progress = Progress(sys.stderr)
    sent, refused, started = [0], [], time.monotonic()

    def messages() -> Iterator[Any]:
        yield jobs_pb2.SubmitBatchRequest(header=jobs_pb2.JobHeader(
            layout_id=args.layout, layout_version=args.layout_version, job_name=args.name,
            channels=[CHANNEL_NAMES[c] for c in args.channel], priority=args.priority,
            idempotency_key=args.idempotency_key))
        try:
            for key, data in itertools.chain([first], lines):
                yield jobs_pb2.SubmitBatchRequest(
                    record=jobs_pb2.JobRecord(record_key=key, data_json=data))
                sent[0] += 1
                progress.show(f"sending: {plural(sent[0], 'record')}")
        except RecordRefused as exc:
            refused.append(exc)
            # A message that is neither header nor record: the server refuses the stream
            # (`records[n]` is empty) and keeps nothing of it. Cancelling the call instead
            # raced the server on a loaded machine, which could read the cancel as the
            # stream's end and seal the records before this one as a job.
            yield jobs_pb2.SubmitBatchRequest()

    with connect(args, "producer") as (channel, where):
        jobs = jobs_pb2_grpc.JobsStub(channel)
        try:
            response = jobs.SubmitBatch(messages(), metadata=where.metadata)
        except grpc.RpcError as exc:
            progress.end()
            if refused:  # the server refused the stream this command ended (messages)
                raise ClientError(f"{refused[0]}; nothing was submitted") from None
            said = describe(exc, where.address)
            named = _RECORD_INDEX.search(said)  # the server names a record by its place
            at = f"{args.file} line {record_lines.line(int(named[1]))}: " if named else ""
            raise ClientError(f"{at}{said} (after {sent[0]} records); the job was not "
                              "accepted") from None
        progress.show(f"already submitted with this idempotency key: job {response.job_id} "
                      f"({plural(response.records, 'record')}), nothing stored again"
                      if response.replayed else
                      f"stored {plural(response.records, 'record')} as job {response.job_id}",
                      final=True)
        try:
            job, errors = follow(jobs, response.job_id, where, progress)
        except grpc.RpcError as exc:
            progress.end()
            raise ClientError(f"lost the server while following job {response.job_id}: "
                              f"{describe(exc, where.address)}; the job goes on in the "
                              f"server (`kanal job {response.job_id}`)") from None
    names = {v: k for k, v in CHANNEL_NAMES.items()}
    print(f"job {job.job_id}: {job.state}")
    if job.idempotency_key:
        print(f"  idempotency key {job.idempotency_key}")
    print(f"  documents {job.counts.done}, failed {job.counts.failed}, pages {job.pages}"
          + (f", not composed (cancelled) {job.counts.cancelled}"
             if job.counts.cancelled else ""))
    for ch in job.channels:
        print(f"  {names.get(ch.channel, ch.channel)}: {ch.documents} documents, "
              f"{ch.pages} pages")
    for error in errors:
        print(error_line(error))
    if job.counts.failed > len(errors):
        print(f"  ... {job.counts.failed - len(errors)} more errors "
              f"(`kanal job {job.job_id} --errors`)")
    print(duration_line(job, time.monotonic() - started, response.replayed))
    return {"completed": 0, "completed_with_errors": 3, "cancelled": 4}.get(job.state, 1)


def error_line(error: Any) -> str:
    """'  error r7: $.currency: 7 is not of type "string"': a failed record as Compose words
    its errors (path, colon, why); the path left out when the error names none."""
    where = f"{error.field}: " if error.field else ""
    return f"  error {error.record_key}: {where}{error.message}"


def duration_line(job: Any, waited: float, replayed: bool) -> str:
    """'  duration 12.3s': the job's own, from its `created_at` to its `finished_at` as the
    server recorded them (s), not this command's: a submit replayed by its idempotency key
    follows a job that may have run long before; it says how long it waited besides."""
    if not (job.HasField("created_at") and job.HasField("finished_at")):
        return f"  this command waited {waited:.1f}s"
    took = (job.finished_at.ToDatetime() - job.created_at.ToDatetime()).total_seconds()
    return f"  duration {took:.1f}s" + (f" (this command waited {waited:.1f}s)"
                                          if replayed else "")


def follow(jobs: Any, job_id: str, where: Any, progress: Progress) -> tuple[Any, list[Any]]:
    """WatchJob to the end, one progress line per update; the job and its first errors."""
    from kanal.v1 import jobs_pb2

    last = None
    for update in jobs.WatchJob(jobs_pb2.GetJobRequest(job_id=job_id), metadata=where.metadata):
        progress.show(progress_line(update), final=update.final)
        last = update
    progress.end()
    if last is None or not last.final:  # e.g. the server is shutting down (SIGTERM)
        state = f" (still {last.job.state})" if last is not None else ""
        raise ClientError(f"lost the server while following job {job_id}: the watch ended "
                          f"before the job did{state}; the job goes on in the server "
                          f"(`kanal job {job_id}`)")
    errors = jobs.GetJobErrors(jobs_pb2.GetJobErrorsRequest(job_id=job_id, page_size=20),
                               metadata=where.metadata, timeout=where.timeout).errors
    return last.job, list(errors)


def progress_line(update: Any) -> str:
    """'[####....] 40/40 records: 37 documents, 3 failed, 12.5 docs/s, ETA 0s': records
    settled of all, then what they became (a failed record is no document); and while the
    job is stalled, why ('; stalled: no document finished for 612 s in chunk 7 (...)')."""
    c = update.job.counts
    settled = c.done + c.failed + c.cancelled
    cancelled = f", {c.cancelled} cancelled" if c.cancelled else ""
    stalled = f"; stalled: {update.job.stalled_reason}" if update.job.stalled_reason else ""
    return (f"{_bar(settled, c.total)} {settled}/{c.total} records: "
            f"{plural(c.done, 'document')}, {c.failed} failed{cancelled}, "
            f"{update.documents_per_second:.1f} docs/s, ETA {update.eta_seconds:.0f}s{stalled}")


def plural(count: int, noun: str) -> str:
    """'1 record', '2 records'."""
    return f"{count} {noun}" if count == 1 else f"{count} {noun}s"


def _bar(done: int, total: int, width: int = 30) -> str:
    filled = int(width * done / total) if total else width
    return "[" + "#" * filled + "." * (width - filled) + "]"


def job(args: argparse.Namespace) -> int:
    from kanal.v1 import jobs_pb2, jobs_pb2_grpc

    with connect(args, "producer") as (channel, where):
        stub = jobs_pb2_grpc.JobsStub(channel)
        call = {"metadata": where.metadata, "timeout": where.timeout}
        if args.errors:
            print_message(stub.GetJobErrors(jobs_pb2.GetJobErrorsRequest(
                job_id=args.job_id, page_size=1000), **call))
        elif args.cancel:
            print_message(stub.CancelJob(jobs_pb2.GetJobRequest(job_id=args.job_id), **call))
        else:
            print_message(stub.GetJob(jobs_pb2.GetJobRequest(job_id=args.job_id), **call))
    return 0


def worker(args: argparse.Namespace) -> int:
    from server.processes import run_on_jemalloc

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
        tempdirs.sweep(settings.state_dir)  # what the child left, had it to end abruptly
        if child.exitcode != 0 and not stop.is_set():
            print(f"kanal worker: consumer exited with {child.exitcode}; restarting",
                  file=sys.stderr)
    print(f"kanal worker: ran {ran.value} chunks", file=sys.stderr)
    return 0


def _consume_some(url: str, config: Any, stop: Any, queue: str, ran: Any,
                  log_format: str) -> None:
    """One consumer process's life: chunks until its memory has grown, then make room."""
    from server import logs, tempdirs
    from server.jobs.queue import consume

    tempdirs.claim(config.state_dir)
    logs.configure(log_format)  # a spawned process starts with nothing configured

    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the parent decides when to stop
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    count = consume(url, config, stop, queue=queue, until_grown=True)
    with ran.get_lock():
        ran.value += count
