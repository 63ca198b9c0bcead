"""Client CPU per `ArchiveStore.put` against the embedded SeaweedFS, with and without the
renderer's sha256 given (issue 14: the archive step no longer hashes every object again).

    python load_tests/bench_seaweed.py [--puts 500] [--bytes 60000] [--rounds 5]
    python load_tests/bench_seaweed.py --variant sha256_given --puts N --rounds 1   # one

`--variant` runs one variant alone: for instruction counts, deterministic under load, run it
under `valgrind --tool=callgrind` with two `--puts` and take the difference (SeaweedFS, a
child process, is not traced).

One embedded SeaweedFS (archive.embedded, with an identity) and one Object Lock bucket.
Each variant puts `--puts` objects of `--bytes` random bytes (a card invoice PDF is ~60 KB)
with a document's 15 metadata keys and COMPLIANCE retention, one at a time in one thread,
as `ArchiveStore.put` is called by the archive step: `sha256=None` (the store hashes the
bytes) and `sha256=<hex>` (the store reuses it; S3 verifies it). The variants alternate in
`--rounds` rounds of `--puts / rounds` puts each, so drift over the run (other processes on
the machine, SeaweedFS growing its volume) falls on both alike. Reported per put: CPU ms of
this process (time.process_time: signing, hashing, header building, HTTP parsing, in the
store's threads too; the server's CPU is not in it), SeaweedFS's CPU ms (from /proc), wall
ms, and for scale the CPU of one hashlib.sha256 of the body. Writes
load_tests/results/seaweed-put-sha256.json.
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
from datetime import UTC, datetime, timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from archive.embedded import EmbeddedS3  # noqa: E402
from archive.store import ArchiveStore  # noqa: E402
from load_tests import bench_s3_clients  # noqa: E402
from load_tests.bench_s3_clients import ACCESS, BUCKET, SECRET, measure, metadata  # noqa: E402

VARIANTS = ("hashed_by_store", "sha256_given")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--puts", type=int, default=500, help="puts per variant")
    parser.add_argument("--bytes", type=int, default=60_000, help="object size")
    parser.add_argument("--rounds", type=int, default=5, help="alternations of the variants")
    parser.add_argument("--variant", choices=VARIANTS, help="run this variant alone")
    args = parser.parse_args()
    variants = (args.variant,) if args.variant else VARIANTS
    per_round = max(args.puts // args.rounds, 1)
    body = os.urandom(args.bytes)
    sha256 = hashlib.sha256(body).hexdigest()
    until = (datetime.now(UTC) + timedelta(days=2)).replace(microsecond=0)

    started = time.process_time()
    for _ in range(1000):
        hashlib.sha256(body).digest()
    hash_ms = (time.process_time() - started)  # per 1000 -> ms each

    rounds: dict[str, list[dict[str, float]]] = {v: [] for v in variants}
    with tempfile.TemporaryDirectory(prefix="kanal-seaweed-put-") as state, EmbeddedS3(
            Path(state) / "s3", access_key=ACCESS, secret_key=SECRET) as s3:
        bench_s3_clients._server_pid = s3.pid  # measure() reads SeaweedFS's CPU from /proc
        store = ArchiveStore(endpoint_url=s3.endpoint_url, bucket=BUCKET, access_key=ACCESS,
                             secret_key=SECRET)
        store.ensure_bucket()

        def put(variant: str, key: str, n: int) -> None:
            store.put(key, body, media_type="application/pdf", metadata=metadata(n),
                      retain_until=until,
                      sha256=sha256 if variant == "sha256_given" else None)

        for variant in variants:  # connections, credentials, endpoint resolution
            for warm in range(5):
                put(variant, f"warm/{variant}/{warm}", warm)
        for r in range(args.rounds):
            order = variants if r % 2 == 0 else variants[::-1]
            for variant in order:
                rounds[variant].append(measure(
                    lambda n, v=variant, r=r: put(v, f"{v}/{r}/{n}", n), per_round))

    def summary(variant: str) -> dict[str, object]:
        cpu = [m["cpu_ms_per_op"] for m in rounds[variant]]
        return {"puts": per_round * args.rounds,
                "cpu_ms_per_put_mean": round(statistics.fmean(cpu), 3),
                "cpu_ms_per_put_rounds": cpu,
                "server_cpu_ms_per_put_mean": round(statistics.fmean(
                    m["server_cpu_ms_per_op"] for m in rounds[variant]), 3),
                "wall_ms_per_put_mean": round(statistics.fmean(
                    m["wall_ms_per_op"] for m in rounds[variant]), 3)}

    result: dict[str, object] = {"bytes": args.bytes, "rounds": args.rounds,
                                 "sha256_of_body_cpu_ms": round(hash_ms, 4)}
    for variant in variants:
        result[variant] = summary(variant)
    result["load_average"] = os.getloadavg()
    if args.variant:  # one variant alone (e.g. under callgrind): printed only
        print(json.dumps(result, indent=2))
        return 0
    hashed_, given = (result[v]["cpu_ms_per_put_mean"] for v in VARIANTS)  # type: ignore[index]
    result["saved_cpu_ms_per_put"] = round(hashed_ - given, 3)
    out = ROOT / "load_tests" / "results"
    out.mkdir(parents=True, exist_ok=True)
    (out / "seaweed-put-sha256.json").write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps(result, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
