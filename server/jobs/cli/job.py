"""`kanal job JOB_ID`: the job as JSON (GetJob); `--cancel` and `--resume` change it and
print it as it is then (CancelJob, ResumeJob); `--errors` lists its failed records
(GetJobErrors, first 1000, as JSON); `--cancelled` prints the key of every record never
composed because the job was cancelled, one per line, in submission order, page after page
(GetJobCancelledRecords): the keys to resubmit, for a bank that does not resume."""

from __future__ import annotations

import argparse
from typing import Any

from server.client import connect, print_message

CANCELLED_PAGE = 10000  # record keys per GetJobCancelledRecords call (its maximum)


def job(args: argparse.Namespace) -> int:
    from kanal.v1 import jobs_pb2, jobs_pb2_grpc

    with connect(args, "producer") as (channel, where):
        stub = jobs_pb2_grpc.JobsStub(channel)
        call = {"metadata": where.metadata, "timeout": where.timeout}
        request = jobs_pb2.GetJobRequest(job_id=args.job_id)
        if args.errors:
            print_message(stub.GetJobErrors(jobs_pb2.GetJobErrorsRequest(
                job_id=args.job_id, page_size=1000), **call))
        elif args.cancelled:
            for key in cancelled_keys(stub, args.job_id, call):
                print(key)
        elif args.cancel:
            print_message(stub.CancelJob(request, **call))
        elif args.resume:
            print_message(stub.ResumeJob(request, **call))
        else:
            print_message(stub.GetJob(request, **call))
    return 0


def cancelled_keys(stub: Any, job_id: str, call: dict[str, Any]) -> Any:
    """Every cancelled record's key, following the page tokens (an iterator)."""
    from kanal.v1 import jobs_pb2

    token = ""
    while True:
        page = stub.GetJobCancelledRecords(jobs_pb2.GetJobCancelledRecordsRequest(
            job_id=job_id, page_size=CANCELLED_PAGE, page_token=token), **call)
        yield from page.record_keys
        token = page.next_page_token
        if not token:
            return
