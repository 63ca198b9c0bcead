"""`kanal submit`: a JSON Lines file -> a job on a server, followed to its end.

The file is streamed line by line (never read whole: server.jobs.cli.lines), then WatchJob
is followed to the end and the summary printed. A line that cannot be carried exactly stops
the submission before the job is sealed (the stream ends with a message the server refuses,
never a cancel it may read as the end), so nothing of it is stored; a record the server
refuses (it names `records[n]`: a key used twice) is named by its line. Progress goes to
stderr: a line redrawn in place on a terminal, a plain line every few seconds otherwise
(logs, CI).
"""

from __future__ import annotations

import argparse
import itertools
import re
import sys
import time
from collections.abc import Iterator
from typing import Any, TextIO

from server.client import ClientError, connect, describe
from server.jobs.cli.lines import RecordLines, RecordRefused, records

CHANNEL_NAMES = {"print": 1, "email": 2, "sms": 3, "einvoice": 4, "mailbox": 5}
PLAIN_PROGRESS_SECONDS = 5.0
EXIT_CODES = """exit codes:
  0  the job completed: every record became a document
  1  nothing submitted (unreadable file, a record that cannot be carried exactly, no
     records, refused by the server, server unreachable) or the server was lost while
     following the job (it goes on in the server: `kanal job JOB_ID`)
  2  usage error
  3  the job completed with errors: some records failed (listed, see GetJobErrors)
  4  the job was cancelled (`kanal job JOB_ID --resume` composes the rest, `--cancelled`
     lists them)"""
_RECORD_INDEX = re.compile(r"\brecords\[(\d+)\]")


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

