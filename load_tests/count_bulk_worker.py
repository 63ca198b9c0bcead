"""What a bulk worker spends per document outside Typst's compile, in instructions (callgrind:
the same count however loaded the machine is), on the real worker path (issue 14).

    python load_tests/count_bulk_worker.py [--chunks 2] [--chunk-size 20] [--keep out.cg]
    python load_tests/count_bulk_worker.py --profile   # cProfile of the same run, no callgrind

An embedded KanalServer (SeaweedFS + SQLite, the project's layouts, Typst card invoices) whose
job runner is stopped holds a job of generated card invoices (load_tests/bench_bulk.py
`records`: 5-60 transactions, nb-NO and sv-SE, each document's default plan: print, e-mail
with the PDF, SMS, e-invoice, mailbox). This script then runs itself again under
`valgrind --tool=callgrind --instr-atstart=no` (load_tests/callgrind.py, PYTHONHASHSEED=0),
where a worker's `Pipeline` (server.jobs.worker, built from the server's `worker_config`, as
a bulk worker process builds it) runs the job's chunks as a bulk worker runs them: chunk 0
warms the caches, uncounted; the counted chunks' documents are first composed and rendered
once uncounted (`DocumentService.render_as`, nothing stored) with Typst's compiler
recording what it made, then its compilers replay those bytes (as
load_tests/count_print_checks.py does), the heap is settled as a worker settles it, and
the instrumentation is on for the counted chunks alone: compose, the channels, the print
checks, the S3 requests (the store's threads are counted), the index, outbox and print-queue
transaction, the job bookkeeping and the logs. Typst's compile is not in the count; the
engine's own work around it (the context JSON, the advance bounds) is, as it is in bare
Typst's figure (load_tests/engines.py). SeaweedFS is not traced: its CPU over the counted
chunks is read from /proc and printed beside the count, for what it is worth (its idling
over minutes of a valgrind run included; load_tests/bench_seaweed_options.py measures it
per object). `--profile` runs the same counted chunks without valgrind under cProfile (the
main thread's functions: where the Python part goes).

Figures (main at 25133f5, `--chunks 2 --chunk-size 20`, 2026-12-01): 86.7 M instructions
per document (3,469,044,867 for 40). By library (`--keep`, callgrind_annotate, a run of 8):
the Python interpreter 38%, pdfium 17% (the print checks' page loads, `CPDF_Page::
ParseContent`), the C library 10% (malloc: glibc here, jemalloc in a real worker),
OpenSSL 6-7% (sha256 of every output, in software under valgrind: a real CPU has SHA-NI),
lxml 3%, zlib 1.5%, libffi and ctypes 2% (pdfium's calls), SQLite 0.3%.
"""

from __future__ import annotations

import argparse
import os
import pickle
import subprocess
import sys
import tempfile
from datetime import UTC, datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from load_tests import callgrind  # noqa: E402
from server.channels.typst_engine import CONTEXT_FILE  # noqa: E402

JOB_ID = "01JCOUNTBULKWORKER0000000"
TENANT = "count"


class _Recording:
    """A Typst compiler that compiles and keeps what it made, by the context it was given."""

    def __init__(self, compiler, made: dict[bytes, tuple[bytes, list]]):
        self.compiler = compiler
        self.made = made

    def compile_with_warnings(self, **kwargs):
        result = self.compiler.compile_with_warnings(**kwargs)
        self.made[kwargs["input"][CONTEXT_FILE]] = result
        return result


class _Replay:
    """A Typst compiler that gives back what the real one made for the same context."""

    def __init__(self, made: dict[bytes, tuple[bytes, list]]):
        self.made = made

    def compile_with_warnings(self, **kwargs):
        return self.made[kwargs["input"][CONTEXT_FILE]]


def _swap_compilers(pipeline, wrap) -> None:
    """Each Typst compiler of the pipeline's engines (idle ones and any made later) as
    `wrap(compiler)`."""
    engines = pipeline.documents.renderers.pdf_engine
    engine = engines.engine("typst")
    for compilers in engine._compilers.values():
        compilers._idle[:] = [wrap(c) for c in compilers._idle]
        make = compilers._make
        compilers._make = lambda make=make: wrap(make())


def measure(config_file: Path, chunks: int, weed_pid: int, result: Path,
            how: str = "callgrind") -> None:
    """Inside valgrind: build the worker pipeline as a bulk worker process does
    (`server.jobs.worker.init_process`: the worker's logging and buffered metrics), warm it
    on chunk 0, record then replay Typst for chunks 1..`chunks`, count those chunks; write
    the documents and SeaweedFS's CPU ms over them to `result`. `how` "profile": cProfile
    instead of callgrind (the main thread's functions by own and cumulative time)."""
    from server import logs, metrics
    from server.compose.model import Channel
    from server.documents import ComposeInput
    from server.jobs.worker import Pipeline, document_id_for

    config = pickle.loads(config_file.read_bytes())
    logs.configure_worker()
    metrics.buffer_observations()
    pipeline = Pipeline.build(config)
    pipeline.run_chunk(JOB_ID, 0)  # warm: templates, fonts, schemas, connections
    jobs = pipeline.jobs
    job = jobs.get(JOB_ID)
    header = job.header
    made: dict[bytes, tuple[bytes, list]] = {}
    _swap_compilers(pipeline, lambda compiler: _Recording(compiler, made))
    for chunk in range(1, chunks + 1):
        for record in jobs.chunk_records(JOB_ID, chunk, job.chunk_size):
            pipeline.documents.render_as(ComposeInput(
                tenant=header.tenant, layout_id=header.layout_id,
                layout_version=header.layout_version, data=record.data_json,
                channels=tuple(Channel(c) for c in header.channels),
                print_profile=header.print_profile),
                document_id_for(JOB_ID, job.created_at, record.record_key), job.created_at,
                indexed=False)
    _swap_compilers(pipeline, lambda compiler: _Replay(made))
    documents = 0

    def run(chunk: int) -> None:
        nonlocal documents
        outcome = pipeline.run_chunk(JOB_ID, chunk)
        documents += outcome.documents
        if outcome.failed:
            raise SystemExit(f"chunk {chunk}: {outcome.failed} documents failed")
        metrics.drain()  # as the worker hands them over with each chunk's outcome

    before = _cpu_seconds(weed_pid)
    callgrind.measured_loop(range(1, chunks + 1), run, how)  # settles the heap first
    weed = _cpu_seconds(weed_pid) - before
    result.write_text(f"{documents} {weed * 1000:.1f}\n")


def _cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--chunks", type=int, default=2, help="chunks counted (default 2)")
    parser.add_argument("--chunk-size", type=int, default=20,
                        help="documents per chunk (default 20)")
    parser.add_argument("--config", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--weed-pid", type=int, default=0, help=argparse.SUPPRESS)
    parser.add_argument("--result", type=Path, help=argparse.SUPPRESS)
    callgrind.add_arguments(parser)
    parser.add_argument("--profile", action="store_true", help="cProfile, no callgrind")
    args = parser.parse_args()
    if args.inside:
        measure(args.config, args.chunks, args.weed_pid, args.result,
                "profile" if args.profile else "callgrind")
        return 0

    from load_tests.bench_bulk import records
    from load_tests.engines import layouts_with_engine
    from server.app import KanalServer
    from server.config import Settings
    from server.jobs.model import JobHeader

    os.environ["KANAL_JOB_WORKERS"] = "1"
    with tempfile.TemporaryDirectory(prefix="kanal-count-bulk-") as state:
        layouts = layouts_with_engine("typst", Path(state))
        with KanalServer(Settings(listen="127.0.0.1:0", state_dir=Path(state) / "server",
                                  render_workers=0, layouts_dir=layouts)) as server:
            server.job_runner.stop()  # the worker under valgrind runs the chunks
            jobs = server.jobs
            jobs.chunk_size = args.chunk_size
            count = (args.chunks + 1) * args.chunk_size
            jobs.create_job(JOB_ID, JobHeader(tenant=TENANT, layout_id="card-invoice",
                                              layout_version="2.0.0"),
                            datetime.now(UTC).replace(microsecond=0))
            jobs.add_records(JOB_ID, ((key, data) for key, data, _ in records(count)))
            jobs.seal(JOB_ID, count)
            config = Path(state) / "worker-config.pickle"
            config.write_bytes(pickle.dumps(server.worker_config))
            weed = server.embedded_s3.pid if server.embedded_s3 else 0
            result = Path(state) / "result.txt"
            inner = ["--config", str(config), "--chunks", str(args.chunks),
                     "--weed-pid", str(weed), "--result", str(result)]
            if args.profile:  # the same run without valgrind, its profile printed
                subprocess.run([sys.executable, __file__, *inner, "--inside", "--profile"],
                               check=True)
                return 0
            total = callgrind.count_instructions(__file__, inner, args.keep)
            documents, weed_ms = result.read_text().split()
    documents = int(documents)
    print(f"bulk worker (all but Typst's compile): {total:,} instructions for {documents} "
          f"documents, {total // documents:,} per document (SeaweedFS, not traced: "
          f"{float(weed_ms):.0f} ms CPU over the counted chunks, idling included)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
