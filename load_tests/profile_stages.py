"""Where a bulk document's time goes, stage by stage: ms per document per stage on the real
bulk worker path.

    python load_tests/profile_stages.py [--size 200 | --quick] [--engine typst] [--label after]

An embedded KanalServer (SeaweedFS + SQLite, the project's layouts, `--engine` switching the
print engine as in load_tests/engines.py) whose job runner is stopped, so no worker process
picks the job up; a job of `--size` generated card invoices (load_tests/bench_bulk.records:
5-60 transactions, nb-NO and sv-SE, each document's default plan: print, e-mail with the
PDF, SMS, e-invoice) is stored in its job tables and its chunks are run *in this process*
by the worker's own `Pipeline` (server.jobs.worker), exactly as a bulk worker runs them.

Each stage's function is wrapped by a timer that counts its *own* time (a stage called
inside another, e.g. the PDF rendered for the e-mail attachment, is counted to the inner
stage only): wall ms and CPU ms of this process (all its threads: S3 requests run in the
store's threads; puts made in helper threads are counted to the stage that waits for them,
the archive step's commit). "other" is everything not in a named stage (the worker loop,
logging, metrics). The embedded SeaweedFS's own CPU per document is read from /proc.
The first chunk warms the caches (templates, fonts, schemas, connections) and is not counted.

Writes load_tests/results/stages-<engine>-<label>.json and prints a table.
"""

from __future__ import annotations

import argparse
import cProfile
import functools
import importlib.util
import json
import os
import pstats
import sys
import tempfile
import threading
import time
from collections import defaultdict
from datetime import UTC, datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from load_tests.bench_bulk import records  # noqa: E402
from load_tests.engines import layouts_with_engine  # noqa: E402
from server.app import KanalServer  # noqa: E402
from server.config import Settings  # noqa: E402
from server.jobs.model import JobHeader  # noqa: E402
from server.processes import run_on_jemalloc  # noqa: E402

CLOCK_TICK = os.sysconf("SC_CLK_TCK")


class StageTimer:
    """Own (exclusive) wall and CPU time per stage name; nested stages are subtracted from
    their caller's."""

    def __init__(self) -> None:
        self.wall: dict[str, float] = defaultdict(float)
        self.cpu: dict[str, float] = defaultdict(float)
        self.calls: dict[str, int] = defaultdict(int)
        self._local = threading.local()
        self.enabled = False

    def wrap(self, owner: object, attribute: str, stage: str) -> None:
        original = getattr(owner, attribute)
        timer = self

        @functools.wraps(original)
        def timed(*args, **kwargs):
            if not timer.enabled or threading.current_thread() is not threading.main_thread():
                # a stage run in helper threads (concurrent S3 puts) is counted by the
                # main-thread stage that waits for it, CPU of every thread included
                return original(*args, **kwargs)
            stack = timer._stack()
            stack.append([0.0, 0.0])  # wall and CPU of nested stages
            wall, cpu = time.perf_counter(), time.process_time()
            try:
                return original(*args, **kwargs)
            finally:
                wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
                inner_wall, inner_cpu = stack.pop()
                timer.wall[stage] += wall - inner_wall
                timer.cpu[stage] += cpu - inner_cpu
                timer.calls[stage] += 1
                if stack:
                    stack[-1][0] += wall
                    stack[-1][1] += cpu

        setattr(owner, attribute, timed)

    def _stack(self) -> list[list[float]]:
        if not hasattr(self._local, "stack"):
            self._local.stack = []
        return self._local.stack


def instrument(timer: StageTimer) -> None:
    """The stages of one bulk document, in path order (see server/documents.py)."""
    import archive.index
    import archive.store
    import server.channels
    import server.channels.glyphs
    import server.channels.pdf
    import server.documents
    import server.jobs.store
    import server.printing.queue
    from server.delivery.stage import DeliveryStage
    from server.delivery.store import DeliveryStore

    timer.wrap(server.documents, "compose", "compose")
    timer.wrap(server.channels.pdf.PrintEngines, "render", "render_pdf")
    timer.wrap(server.channels, "render_email", "email_html_mime")
    timer.wrap(server.channels, "render_einvoice", "einvoice_xml")
    timer.wrap(server.channels, "render_sms", "sms")
    timer.wrap(archive.store.ArchiveStore, "put", "s3_puts")
    if importlib.util.find_spec("server.archiving"):  # the archive step, where it exists:
        import server.archiving  # its own time is waiting for the concurrent puts

        timer.wrap(server.archiving.ArchiveStep, "commit", "s3_puts")
    timer.wrap(archive.index.DocumentIndex, "get", "index_lookup")
    timer.wrap(archive.index.DocumentIndex, "add", "index_rows")
    for name in ("index_rows_chunk", "add_many"):  # the per-chunk write, where it exists
        if hasattr(archive.index.DocumentIndex, name):
            timer.wrap(archive.index.DocumentIndex, name, "index_rows")
    timer.wrap(DeliveryStage, "outbox", "delivery_outbox")
    timer.wrap(DeliveryStore, "insert", "delivery_outbox")
    if hasattr(DeliveryStore, "insert_many"):  # a chunk's outboxes written at once
        timer.wrap(DeliveryStore, "insert_many", "delivery_outbox")
    for name in ("enqueue", "enqueue_on", "piece_row"):
        if hasattr(server.printing.queue.PrintQueue, name):
            timer.wrap(server.printing.queue.PrintQueue, name, "print_queue")
    for name in ("start_chunk", "get", "chunk_records", "finish_chunk", "finish_job_if_done"):
        timer.wrap(server.jobs.store.JobStore, name, "job_bookkeeping")
    # the print PDF's read-back checks (one pass where `refuse_unprintable` exists) and the
    # glyph check, out of "other"
    for owner, name in ((server.channels.pdf, "refuse_unprintable"),
                        (server.channels.pdf, "refuse_overflow"),
                        (server.channels, "check_print_zones")):
        if hasattr(owner, name):
            timer.wrap(owner, name, "print_checks")
    # the glyph check: the one walk that finds every character drawn, else the walk that
    # names the fields (looked up in the module, so wrapping its attributes counts them)
    for name in ("missing_glyphs", "_all_drawn"):
        if hasattr(server.channels.glyphs, name):
            timer.wrap(server.channels.glyphs, name, "glyph_check")


def process_cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / CLOCK_TICK  # utime + stime


STAGES = ("compose", "render_pdf", "email_html_mime", "einvoice_xml", "sms", "s3_puts",
          "index_lookup", "index_rows", "print_queue", "delivery_outbox", "job_bookkeeping",
          "print_checks", "glyph_check")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--size", type=int, default=200, help="documents (default 200)")
    parser.add_argument("--quick", action="store_true", help="60 documents")
    parser.add_argument("--engine", default="typst", choices=("typst", "weasyprint"))
    parser.add_argument("--label", default="now", help="names the results file")
    parser.add_argument("--cprofile", type=int, default=0, metavar="N",
                        help="also print the top N functions by own time (cProfile)")
    args = parser.parse_args()
    run_on_jemalloc()  # as `kanal serve` runs (KANAL_MALLOC=system: the C library's)
    size = 60 if args.quick else args.size
    os.environ["KANAL_JOB_WORKERS"] = "1"
    timer = StageTimer()
    instrument(timer)
    from server.jobs.worker import Pipeline, settle_heap

    with tempfile.TemporaryDirectory(prefix="kanal-stages-") as state:
        layouts = layouts_with_engine(args.engine, Path(state))
        with KanalServer(Settings(listen="127.0.0.1:0", state_dir=Path(state) / "server",
                                  render_workers=0, layouts_dir=layouts)) as server:
            server.job_runner.stop()  # this process runs the chunks, no worker does
            jobs = server.jobs
            job_id, now = "01JPROFILESTAGES000000000", datetime.now(UTC).replace(microsecond=0)
            warm = jobs.chunk_size
            jobs.create_job(job_id, JobHeader(tenant="prof", layout_id="card-invoice",
                                              layout_version="2.0.0"), now)
            jobs.add_records(job_id, ((key, data) for key, data, _ in
                                      records(size + warm)))
            jobs.seal(job_id, size + warm)
            pipeline = Pipeline.build(server.worker_config)
            pipeline.run_chunk(job_id, 0)  # warm: not counted
            settle_heap()  # as a worker process does after its first chunk
            weed = server.embedded_s3.pid if server.embedded_s3 else None
            weed_cpu = process_cpu_seconds(weed) if weed else 0.0
            timer.enabled = True
            profile = cProfile.Profile() if args.cprofile else None
            if profile is not None:
                profile.enable()
            wall, cpu = time.perf_counter(), time.process_time()
            documents = failed = pages = 0
            for chunk in range(1, jobs.get(job_id).chunks):
                outcome = pipeline.run_chunk(job_id, chunk)
                documents += outcome.documents
                failed += outcome.failed
            wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
            timer.enabled = False
            if profile is not None:
                profile.disable()
                pstats.Stats(profile).sort_stats("tottime").print_stats(args.cprofile)
            weed_cpu = (process_cpu_seconds(weed) - weed_cpu) if weed else 0.0
            pages = jobs.progress(job_id).summary.channels.get("print", [0, 0])[1]
    if failed or not documents:
        print(f"{failed} of {documents + failed} documents failed", file=sys.stderr)
        return 1
    per_doc = {stage: {"wall_ms": round(timer.wall[stage] * 1000 / documents, 2),
                       "cpu_ms": round(timer.cpu[stage] * 1000 / documents, 2),
                       "calls_per_doc": round(timer.calls[stage] / documents, 2)}
               for stage in STAGES}
    named_wall = sum(timer.wall.values())
    named_cpu = sum(timer.cpu.values())
    per_doc["other"] = {"wall_ms": round((wall - named_wall) * 1000 / documents, 2),
                        "cpu_ms": round((cpu - named_cpu) * 1000 / documents, 2)}
    render_cpu = timer.cpu["render_pdf"]
    result = {
        "engine": args.engine, "label": args.label, "documents": documents,
        "print_pages": pages, "cpu_count": os.cpu_count(),
        "load_average": os.getloadavg(),
        "total_wall_ms_per_doc": round(wall * 1000 / documents, 2),
        "total_cpu_ms_per_doc": round(cpu * 1000 / documents, 2),
        "non_render_cpu_ms_per_doc": round((cpu - render_cpu) * 1000 / documents, 2),
        "seaweedfs_cpu_ms_per_doc": round(weed_cpu * 1000 / documents, 2),
        "stages": per_doc,
    }
    out = ROOT / "load_tests" / "results"
    out.mkdir(parents=True, exist_ok=True)
    (out / f"stages-{args.engine}-{args.label}.json").write_text(json.dumps(result, indent=2))
    print(f"{'stage':<18}{'wall ms/doc':>12}{'cpu ms/doc':>12}")
    for stage, row in per_doc.items():
        print(f"{stage:<18}{row['wall_ms']:>12.2f}{row['cpu_ms']:>12.2f}")
    print(f"{'total':<18}{result['total_wall_ms_per_doc']:>12.2f}"
          f"{result['total_cpu_ms_per_doc']:>12.2f}")
    print(f"non-render CPU ms/doc: {result['non_render_cpu_ms_per_doc']}  "
          f"SeaweedFS CPU ms/doc: {result['seaweedfs_cpu_ms_per_doc']}  "
          f"({documents} documents, {pages} print pages, load {os.getloadavg()[0]:.1f})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
