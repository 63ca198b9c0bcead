"""`kanal submit`, `kanal job` and `kanal worker`: a JSON Lines file -> a job on a server; a
job's state, cancelling, resuming and what it did not do; a chunk consumer.

    kanal submit FILE.jsonl --layout ID [--name NAME] [--channel print ...] [--priority N]
    kanal job JOB_ID [--cancel | --resume | --errors | --cancelled]
    kanal worker --rabbitmq amqp://guest:guest@127.0.0.1:5672/ [--config FILE]

Each command by concept, one module each:

    lines.py   a JSON Lines file -> records exactly as written (`kanal submit`'s input)
    submit.py  `kanal submit`: stream the records, follow the job, print its summary
    job.py     `kanal job`: show, cancel or resume a job; its failed or cancelled records
    worker.py  `kanal worker`: consume chunks from RabbitMQ
"""

from __future__ import annotations

import argparse
import os
from pathlib import Path
from typing import Any

from server.client import add_connection_options, whole_number
from server.jobs.cli.job import job
from server.jobs.cli.submit import CHANNEL_NAMES, EXIT_CODES, submit
from server.jobs.cli.worker import worker

# JobHeader.priority is a proto int32: a larger value would fail only while the request
# stream is written ("UNKNOWN: Exception iterating requests!"), so the option is checked.
MIN_PRIORITY, MAX_PRIORITY = -(2**31), 2**31 - 1


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

    p = commands.add_parser(
        "job", help="show a job (or cancel or resume it, or list its failed or cancelled "
                    "records)",
        description="kanal.v1.Jobs/GetJob as JSON.")
    p.add_argument("job_id", help="the id `kanal submit` printed")
    action = p.add_mutually_exclusive_group()
    action.add_argument("--cancel", action="store_true", help="cancel the job (CancelJob)")
    action.add_argument("--resume", action="store_true",
                        help="resume a cancelled job: compose its records never composed, "
                             "none twice (ResumeJob)")
    action.add_argument("--errors", action="store_true",
                        help="list the records that failed (GetJobErrors, first 1000)")
    action.add_argument("--cancelled", action="store_true",
                        help="print the keys of the records never composed because the job "
                             "was cancelled, one per line, all of them "
                             "(GetJobCancelledRecords)")
    add_connection_options(p)
    p.set_defaults(run=job)

    p = commands.add_parser("worker", help="run job chunks from RabbitMQ (scale-out)")
    p.add_argument("--rabbitmq", default=os.environ.get("KANAL_RABBITMQ_URL"),
                   help="amqp URL (default: env KANAL_RABBITMQ_URL)")
    p.add_argument("--config", type=Path, help="TOML settings file (S3 + index)")
    p.set_defaults(run=worker)
