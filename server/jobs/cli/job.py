"""`kanal job JOB_ID`: the job as JSON (GetJob); `--cancel` cancels it and prints it as it is
then (CancelJob); `--errors` lists its failed records (GetJobErrors, first 1000, as JSON)."""

from __future__ import annotations

import argparse

from server.client import connect, print_message


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
