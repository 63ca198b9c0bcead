"""The archive walk behind `kanal archive reconcile|reindex`: list + HEAD every object.

    python load_tests/bench_archive_walk.py [--objects 3000] [--concurrency 1 16]

Starts a private SeaweedFS (as `kanal serve` embeds it), stores `--objects` small objects
with Kanal-like metadata under object lock, then times `ArchiveStore.iter_objects()` over
them once per `--concurrency` value (HEADs in flight per listing page). The SeaweedFS runs
on this machine, so a round trip is short; against a remote S3 the gain from concurrency
is larger, not smaller.
"""

from __future__ import annotations

import argparse
import json
import secrets
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import archive.store  # noqa: E402
from archive.embedded import EmbeddedS3  # noqa: E402
from archive.store import ArchiveStore  # noqa: E402


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--objects", type=int, default=3000)
    parser.add_argument("--concurrency", type=int, nargs="+", default=[1, 16])
    args = parser.parse_args()
    keys = (f"kanal-{secrets.token_hex(4)}", secrets.token_urlsafe(24))
    results: dict[str, object] = {"objects": args.objects}
    with tempfile.TemporaryDirectory(prefix="kanal-walk-") as data, \
            EmbeddedS3(Path(data), access_key=keys[0], secret_key=keys[1]) as s3:
        store = ArchiveStore(endpoint_url=s3.endpoint_url, bucket="kanal-archive",
                             access_key=keys[0], secret_key=keys[1])
        store.ensure_bucket()
        until = datetime.now(UTC) + timedelta(days=1)

        def put(n: int) -> None:
            store.put(f"bench/c{n % 97:03d}/2026/doc-{n:07d}/print.pdf", b"%PDF-1.7 " * 20,
                      media_type="application/pdf", retain_until=until,
                      metadata={"tenant": "bench", "document-id": f"doc-{n:07d}",
                                "channel": "print", "layout": "card-invoice@1.0.0"})

        with ThreadPoolExecutor(16) as pool:
            list(pool.map(put, range(args.objects)))
        for concurrency in args.concurrency:
            archive.store._HEAD_CONCURRENCY = concurrency
            started = time.perf_counter()
            walked = sum(1 for _ in store.iter_objects())
            seconds = time.perf_counter() - started
            assert walked == args.objects, (walked, args.objects)
            results[f"concurrency_{concurrency}"] = {
                "seconds": round(seconds, 2), "objects_per_s": round(walked / seconds)}
            print(f"concurrency {concurrency:>2}: {walked} objects in {seconds:.2f} s "
                  f"({walked / seconds:.0f}/s)", file=sys.stderr)
    out = ROOT / "load_tests" / "results"
    out.mkdir(parents=True, exist_ok=True)
    (out / "archive_walk.json").write_text(json.dumps(results, indent=2))
    print(json.dumps(results, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
