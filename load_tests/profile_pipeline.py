"""Where a document's time goes: cProfile over the real path in one process.

    python load_tests/profile_pipeline.py [--documents 30] [--top 25]

An embedded SeaweedFS and a SQLite index in a temporary folder, the DocumentService with
in-process renderers, and `--documents` generated card invoices composed through it
(compose -> channels -> archive -> index -> print queue). Prints the top entries by own
time and by cumulative time.
"""

from __future__ import annotations

import argparse
import cProfile
import pstats
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from load_tests.bench_bulk import records  # noqa: E402
from server.app import KanalServer  # noqa: E402
from server.config import Settings  # noqa: E402
from server.documents import ComposeInput  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--documents", type=int, default=30)
    parser.add_argument("--top", type=int, default=25)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="kanal-prof-") as state, KanalServer(
        Settings(listen="127.0.0.1:0", state_dir=Path(state), render_workers=0)
    ) as server:
        work = [ComposeInput(tenant="prof", layout_id="card-invoice", data=data,
                             locale=locale, idempotency_key=key)
                for key, data, locale in records(args.documents + 2)]
        for request in work[:2]:  # warm caches outside the profile
            server.documents.compose(request)
        profile = cProfile.Profile()
        profile.enable()
        for request in work[2:]:
            server.documents.compose(request)
        profile.disable()
    stats = pstats.Stats(profile).strip_dirs()
    print(f"--- top {args.top} by own time ({args.documents} documents) ---")
    stats.sort_stats("tottime").print_stats(args.top)
    print(f"--- top {args.top} by cumulative time ---")
    stats.sort_stats("cumulative").print_stats(args.top)


if __name__ == "__main__":
    main()
