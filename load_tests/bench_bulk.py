"""Bulk throughput: generated card invoices -> a job on a real server, per PDF engine, next to
the bare engines and headless Chromium, all in one run.

    python load_tests/bench_bulk.py [--size 2000 | --quick] [--bare 2000] [--workers N]
                                    [--engines typst,weasyprint] [--no-chromium]

`--quick`: 200 records, the bare engines and Chromium on the same 200 (while developing;
the issue's figures are `--size 2000`). `--records` is the old name of `--size`.

Generates `--records` card-invoice records from the layout's samples (nb-NO and sv-SE,
varied names and addresses, 5-60 transactions so 1-3 pages). For each engine in
`--engines` it starts a KanalServer in-process on the embedded defaults (SeaweedFS +
SQLite, worker processes one per core) with the layouts switched to that engine
(load_tests/engines.py: "typst" = the project's manifests, "weasyprint" = the same layouts
with `[print] engine = "weasyprint"`, i.e. the print.html templates), streams the records
with SubmitBatch (each document's default channel plan: print, e-mail with the PDF, SMS,
e-invoice), follows WatchJob to the end, and reports end-to-end documents/s and pages/s,
the peak RSS of every worker and the server's RSS. Then the first `--bare` of the same
documents, composed once, are rendered by the engines alone, two warm processes each:
bare Typst (`TypstEngine`), bare WeasyPrint (`WeasyPrintEngine`, its caches on) and
headless Chromium's DevTools `Page.printToPDF` of the WeasyPrint HTML (Debian `chromium`,
one reused tab per process). The ratios say what the pipeline costs on top of each engine
and what Typst gains: end to end / Chromium (target >= 2), end to end / bare Typst
(target >= 0.7), Typst end to end / WeasyPrint end to end.

It runs on jemalloc as `kanal serve` does (server.processes.run_on_jemalloc; the report's
`malloc`); `KANAL_MALLOC=system python load_tests/bench_bulk.py ...` runs it on the C
library's malloc for comparison.

Memory over the run: every few seconds a sampler reads the RSS of this (server) process and
of each live bulk worker process from /proc; the report lists them at every `--every`
documents (first sample at or past the mark), so growth per document shows as a trend:
    python load_tests/bench_bulk.py --size 10000 --engines typst --bare 200 --every 1000
"""

from __future__ import annotations

import argparse
import functools
import json
import os
import random
import resource
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import TYPE_CHECKING

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from kanal.v1 import jobs_pb2, jobs_pb2_grpc  # noqa: E402

if TYPE_CHECKING:
    from server.app import KanalServer
    from server.compose.layouts import Layout, LayoutRegistry
    from server.compose.model import Composition

# The server, the engines and the layouts are imported where they are used, not here: every
# worker process the server spawns imports this module again (multiprocessing's 'spawn'
# re-imports the main module), and a bulk worker of `kanal serve` imports only
# server.cli before its pipeline. Imported here, each worker also loaded the whole server,
# WeasyPrint and every layout, and the figures counted that as the pipeline's cost.


@functools.cache
def card_invoice_folder() -> Path:
    """The newest card-invoice version's folder (its samples)."""
    from server.compose.layouts import LayoutRegistry

    return LayoutRegistry().get("card-invoice").path
FIRST = {"nb-NO": ["Kari", "Ola", "Ingrid", "Per", "Solveig", "Åse", "Øystein", "Bjørn"],
         "sv-SE": ["Anna", "Erik", "Märta", "Lars", "Åsa", "Björn", "Karin", "Göran"]}
LAST = {"nb-NO": ["Nordmann", "Hansen", "Johansen", "Olsen", "Larsen", "Bakken", "Dahl"],
        "sv-SE": ["Svensson", "Andersson", "Johansson", "Karlsson", "Nilsson", "Öberg"]}
STREETS = {"nb-NO": ["Thereses gate", "Storgata", "Kirkeveien", "Møllergata", "Bygdøy allé"],
           "sv-SE": ["Drottninggatan", "Storgatan", "Kungsgatan", "Götgatan", "Sveavägen"]}


# What the customers asked for, in turn: so a run has every channel the layout plans
# (manifest [plan]): paper -> print + SMS; digital -> e-mail with the PDF + SMS + e-invoice
# (Factur-X); mailbox -> the PDF to Digipost/Kivra (+ SMS where consented).
PREFERENCES = (["paper"], [], ["mailbox"], [])
CONSENTS = ["email", "sms"]


def records(count: int, seed: int = 7):
    """(record_key, data_json, locale) for `count` varied card invoices, their customers'
    preferences cycling through PREFERENCES (half of them digital)."""
    folder = card_invoice_folder()
    samples = {
        "nb-NO": json.loads((folder / "sample.json").read_text(encoding="utf-8")),
        "sv-SE": json.loads((folder / "sample-sv-SE.json").read_text(encoding="utf-8")),
    }
    rng = random.Random(seed)
    for n in range(count):
        locale = "nb-NO" if n % 2 == 0 else "sv-SE"
        data = json.loads(json.dumps(samples[locale]))
        customer = data["customer"]
        customer["customer_id"] = f"{30000000 + n}"
        customer["name"] = f"{rng.choice(FIRST[locale])} {rng.choice(LAST[locale])}"
        customer["preferences"] = PREFERENCES[(n // 2) % len(PREFERENCES)]
        customer["consents"] = CONSENTS
        address = customer["address"]
        address["lines"] = [f"{rng.choice(STREETS[locale])} {rng.randint(1, 140)}"]
        address["postal_code"] = (f"{rng.randint(1, 9899):04d}" if locale == "nb-NO"
                                  else f"{rng.randint(10000, 98499)}")
        template = data["transactions"]
        count_tx = rng.randint(5, 60)
        data["transactions"] = [
            {**template[i % len(template)],
             "amount": str(Decimal(rng.randint(1000, 250000)) / 100)}
            for i in range(count_tx)
        ]
        if "payment" in data and "reference_base" in data["payment"]:
            data["payment"]["reference_base"] = f"{30000000 + n}123"
        yield f"inv-{n:06d}", json.dumps(data, ensure_ascii=False), locale


def composed(layout: Layout, data: str, document_id: str, locale: str | None,
             now: datetime) -> Composition:
    """One document composed for the tenant "count" (the count_*.py scripts' documents);
    raises what `compose` raises for data the layout refuses."""
    from server.compose.composer import ComposeRequest, compose

    return compose(ComposeRequest(tenant="count", layout=layout, data=data,
                                  document_id=document_id, now=now, locale=locale))


def composed_records(layout: Layout, count: int, now: datetime) -> Iterator[Composition]:
    """`records(count)` composed one by one with `layout`, a second apart from `now` (as in
    a bulk run: no two e-mails have the same Date header), ids 01JN4Q7W2E000000 on."""
    for n, (_, data, locale) in enumerate(records(count)):
        yield composed(layout, data, f"01JN4Q7W2E{n:06d}", locale, now + timedelta(seconds=n))


def samples(registry: LayoutRegistry) -> Iterator[tuple[Layout, str, str]]:
    """(layout, sample file name, JSON text) for every sample of every layout version: its
    `sample*.json` files and those its manifest's [samples] names, sorted by name."""
    for layout in registry.every_version():
        names = sorted({p.name for p in layout.path.glob("sample*.json")}
                       | set(layout.manifest.get("samples", {}).values()))
        for name in names:
            yield layout, name, (layout.path / name).read_text(encoding="utf-8")


def rss_kb(pid: int | str = "self") -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    return 0


class MemorySampler:
    """RSS of the server and its live bulk workers, sampled against documents done."""

    def __init__(self, server: KanalServer, interval: float = 5.0):
        self.server = server
        self.interval = interval
        self.done = 0  # documents finished so far, set by the WatchJob loop
        self.samples: list[tuple[int, int, dict[int, int]]] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def __enter__(self) -> MemorySampler:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()

    def _run(self) -> None:
        while not self._stop.wait(self.interval):
            pids = self.server.job_runner.queue.worker_pids()
            workers = {pid: kb for pid in pids if (kb := rss_kb(pid))}
            self.samples.append((self.done, rss_kb(), workers))

    def at_marks(self, every: int, total: int) -> list[dict[str, object]]:
        """One line per `every` documents: the first sample at or past each mark."""
        rows = []
        for mark in [*range(every, total, every), total]:
            sample = next((s for s in self.samples if s[0] >= mark), None)
            if sample is None or (rows and rows[-1]["documents"] == sample[0]):
                continue
            done, server_kb, workers = sample
            rows.append({"documents": done, "server_rss_mb": round(server_kb / 1024),
                         "worker_rss_mb": sorted(round(kb / 1024) for kb in workers.values())})
        return rows


def run_job(server: KanalServer, key: str, count: int,
            sampler: MemorySampler | None = None) -> tuple[float, jobs_pb2.Job]:
    import grpc

    metadata = (("authorization", f"Bearer {key}"),)

    def messages():
        yield jobs_pb2.SubmitBatchRequest(header=jobs_pb2.JobHeader(
            layout_id="card-invoice", job_name="bench"))
        for record_key, data, _ in records(count):
            yield jobs_pb2.SubmitBatchRequest(
                record=jobs_pb2.JobRecord(record_key=record_key, data_json=data))

    with grpc.insecure_channel(server.address) as channel:
        stub = jobs_pb2_grpc.JobsStub(channel)
        started = time.perf_counter()
        job_id = stub.SubmitBatch(messages(), metadata=metadata).job_id
        stored = time.perf_counter() - started
        last = None
        for progress in stub.WatchJob(jobs_pb2.GetJobRequest(job_id=job_id),
                                      metadata=metadata):
            last = progress
            c = progress.job.counts
            if sampler is not None:
                sampler.done = c.done + c.failed
            print(f"\r  {c.done + c.failed}/{c.total}  {progress.documents_per_second:.2f} "
                  f"docs/s", end="", file=sys.stderr, flush=True)
        elapsed = time.perf_counter() - started
        print(f"\n  records stored in {stored:.1f}s", file=sys.stderr)
    assert last is not None
    return elapsed, last.job


def compositions(count: int) -> list:
    """The first `count` records composed once (the bare engines render these)."""
    from server.compose.composer import ComposeRequest, compose
    from server.compose.layouts import LayoutRegistry

    layout = LayoutRegistry().get("card-invoice")
    now = datetime.now(UTC).replace(microsecond=0)
    return [compose(ComposeRequest(tenant="bench", layout=layout, data=data,
                                   document_id=record_key, now=now, locale=locale))
            for record_key, data, locale in records(count)]


def end_to_end(engine: str, count: int, every: int, state: Path) -> dict[str, object]:
    """One server whose layouts render with `engine`, one job of `count` records."""
    from load_tests.engines import layouts_with_engine
    from server.app import KanalServer
    from server.auth import ApiKey, hash_key, new_key
    from server.config import Settings

    secret = new_key()
    key = ApiKey(id="bench", sha256=hash_key(secret), tenant="bench", role="producer")
    layouts = layouts_with_engine(engine, state)
    print(f"end to end with {engine}", file=sys.stderr)
    with KanalServer(Settings(listen="127.0.0.1:0", state_dir=state / engine,
                              api_keys=(key,), layouts_dir=layouts)) as server:
        weed = server.embedded_s3.pid if server.embedded_s3 else None
        before = cpu_seconds(weed)
        with MemorySampler(server) as sampler:
            elapsed, job = run_job(server, secret, count, sampler)
        after = cpu_seconds(weed)
        # children that are not bulk workers, their whole lives: reaped when the server
        # stops, they land in RUSAGE_CHILDREN with the workers (their start-up included)
        not_workers = after["seaweedfs"] + sum(
            process_cpu_seconds(pid) for pid in getattr(server.renderers, "worker_pids",
                                                        list)())
        peaks = dict(server.job_runner.peak_rss_kb)
        server_rss = rss_kb()
    # the workers are waited for when the server stops, so their CPU is in RUSAGE_CHILDREN
    # only now; SeaweedFS and the real-time render processes are taken out by their /proc
    # figures (all of their CPU, start-up included: 0.4 s per render process measured here)
    workers_cpu = children_cpu_seconds() - before["children"] - not_workers
    done = max(job.counts.done + job.counts.failed, 1)
    return {
        "state": job.state, "documents": job.counts.done, "failed": job.counts.failed,
        "pages": job.pages,
        "per_channel": {str(c.channel): [c.documents, c.pages] for c in job.channels},
        "seconds": round(elapsed, 1),
        "docs_per_s": round(job.counts.done / elapsed, 2),
        "pages_per_s": round(job.pages / elapsed, 2),
        # one peak per worker process, in the order they finished work (pools are replaced
        # once a worker's memory grew by server.jobs.queue.GROWTH_LIMIT_KB: a WeasyPrint
        # run every ~500 documents per worker, so it lists several generations)
        "worker_peak_rss_mb": [round(kb / 1024) for kb in peaks.values()],
        "server_rss_after_mb": round(server_rss / 1024),
        "memory_by_documents": sampler.at_marks(every, count),
        # where the machine's CPU went, ms per document: the pipeline's cost beside the
        # engine's (the workers' figure includes their rendering)
        "cpu_ms_per_doc": {
            "server": round((after["self"] - before["self"]) * 1000 / done, 1),
            "workers": round(workers_cpu * 1000 / done, 1),
            "seaweedfs": round((after["seaweedfs"] - before["seaweedfs"]) * 1000 / done, 1),
        },
    }


def children_cpu_seconds() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def process_cpu_seconds(pid: int) -> float:
    """CPU seconds (user + system) so far of process `pid` (from /proc; 0 when it is gone)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def cpu_seconds(seaweedfs_pid: int | None) -> dict[str, float]:
    """CPU seconds (user + system) so far of this process (the server and this client),
    of its waited-for children, and of the embedded SeaweedFS (from /proc)."""
    own = resource.getrusage(resource.RUSAGE_SELF)
    weed = process_cpu_seconds(seaweedfs_pid) if seaweedfs_pid else 0.0
    return {"self": own.ru_utime + own.ru_stime, "children": children_cpu_seconds(),
            "seaweedfs": weed}


def rate(seconds: float, documents: int, pages: int) -> dict[str, float]:
    return {"documents": documents, "seconds": round(seconds, 1),
            "docs_per_s": round(documents / seconds, 2), "pages_per_s": round(pages / seconds, 2)}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--size", "--records", dest="records", type=int, default=2000,
                        help="generated card invoices (default 2000)")
    parser.add_argument("--quick", action="store_true", help="--size 200")
    parser.add_argument("--bare", type=int, default=0,
                        help="records rendered by the bare engines and Chromium "
                             "(default: all --records)")
    parser.add_argument("--workers", type=int, default=0, help="default: one per core")
    parser.add_argument("--engines", default="typst,weasyprint",
                        help="end-to-end runs, comma separated (default typst,weasyprint)")
    parser.add_argument("--no-chromium", action="store_true", help="skip the Chromium peer")
    parser.add_argument("--every", type=int, default=500,
                        help="report memory every this many documents (default 500)")
    args = parser.parse_args()
    from server.processes import run_on_jemalloc

    run_on_jemalloc()  # as `kanal serve` runs; what it runs on, read from the memory map:
    malloc = "jemalloc" if "libjemalloc" in Path("/proc/self/maps").read_text() else "system"
    if args.quick:
        args.records = 200
    if args.workers:
        os.environ["KANAL_JOB_WORKERS"] = str(args.workers)
    print(f"cores: {os.cpu_count()}, records: {args.records}", file=sys.stderr)
    result: dict[str, object] = {"records": args.records, "cores": os.cpu_count(),
                                 "malloc": malloc}
    with tempfile.TemporaryDirectory(prefix="kanal-bench-") as state:
        from server import tempdirs

        # The bare engines' worker processes are forked and end with os._exit (no atexit):
        # WeasyPrint's font folders, made in this process's own folder, go with the run's.
        tempdirs.claim(Path(state))
        for engine in args.engines.split(","):
            result[f"end_to_end_{engine}"] = end_to_end(engine, args.records, args.every,
                                                        Path(state))
        from load_tests.engines import bare_chromium, bare_engine
        from server.compose.layouts import LayoutRegistry

        bare_n = min(args.bare or args.records, args.records)
        layout = LayoutRegistry().get("card-invoice")
        documents = compositions(bare_n)
        print(f"bare engines on {bare_n} documents", file=sys.stderr)
        for engine in ("typst", "weasyprint"):
            seconds, pages = bare_engine(engine, layout, documents)
            result[f"bare_{engine}_2_processes"] = rate(seconds, bare_n, pages)
        if not args.no_chromium:
            html = Path(state) / "chromium"
            html.mkdir()
            seconds, pages = bare_chromium(layout, documents, html)
            result["chromium_print_to_pdf_2_processes"] = rate(seconds, bare_n, pages)
        tempdirs.release()

    def ratio(a: str, b: str) -> float | None:
        if a in result and b in result:
            return round(result[a]["docs_per_s"] / result[b]["docs_per_s"], 2)
        return None

    result["ratios"] = {
        "typst_end_to_end_over_chromium": ratio("end_to_end_typst",
                                                "chromium_print_to_pdf_2_processes"),
        "typst_end_to_end_over_bare_typst": ratio("end_to_end_typst", "bare_typst_2_processes"),
        "typst_end_to_end_over_weasyprint_end_to_end": ratio("end_to_end_typst",
                                                             "end_to_end_weasyprint"),
        "bare_typst_over_bare_weasyprint": ratio("bare_typst_2_processes",
                                                 "bare_weasyprint_2_processes"),
        "weasyprint_end_to_end_over_bare_weasyprint": ratio("end_to_end_weasyprint",
                                                            "bare_weasyprint_2_processes"),
    }
    out = ROOT / "load_tests" / "results"
    out.mkdir(parents=True, exist_ok=True)
    (out / f"bulk-{args.records}.json").write_text(json.dumps(result, indent=2))
    print(json.dumps(result, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
