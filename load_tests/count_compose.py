"""Instructions per composed document: Compose alone (no render, no archive), counted by
callgrind, so a change to the compose path is measured to the instruction, under any load.

    valgrind --tool=callgrind --instr-atstart=no python load_tests/count_compose.py --count 40

Generates `--count` card invoices (load_tests/bench_bulk.py `records`: nb-NO and sv-SE,
5-60 transactions), composes `--warmup` more first so every lazy import and cache is filled,
then switches callgrind's instrumentation on (`callgrind_control -i on <this pid>`),
composes the `--count` documents (`server.compose.composer.compose`, which includes the
channel plan and its e-invoice checks) and switches it off again before anything else runs.
Valgrind's closing "Collected :" line is then the compose loop's instructions (plus a
constant few thousand for the two switches): divide it by `--count`. Without valgrind the
script only composes and prints the wall time. Reading the profile:
    callgrind_annotate --inclusive=yes callgrind.out.<pid> | head -60

Figures are comparable between runs with the same `--count` (the documents are the same),
not with cProfile's or wall-clock figures. Repeated runs of the same code differ by about
0.2% (addresses and hashing vary per process): compare changes smaller than that over
several runs.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import time
from datetime import UTC, datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from load_tests.bench_bulk import records  # noqa: E402
from server.compose.composer import ComposeRequest, compose  # noqa: E402
from server.compose.layouts import LayoutRegistry  # noqa: E402

NOW = datetime(2026, 3, 2, 9, 30, tzinfo=UTC)  # fixed: the same documents every run


def under_valgrind() -> bool:
    """True when this process runs on valgrind (its preload library is mapped)."""
    return "vgpreload" in Path("/proc/self/maps").read_text()


def instrumentation(on: bool) -> None:
    """Switch callgrind's instrumentation of this process on or off (via vgdb)."""
    subprocess.run(["callgrind_control", "-i", "on" if on else "off", str(os.getpid())],
                   check=True, stdout=subprocess.DEVNULL)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--count", type=int, default=40, help="documents counted")
    parser.add_argument("--warmup", type=int, default=4, help="documents composed before")
    parser.add_argument("--layout", default="card-invoice")
    args = parser.parse_args()
    layout = LayoutRegistry().get(args.layout)
    work = [ComposeRequest(tenant="count", layout=layout, data=data, document_id=key,
                           now=NOW, locale=locale)
            for key, data, locale in records(args.warmup + args.count)]
    for request in work[:args.warmup]:
        compose(request)
    counted = work[args.warmup:]
    valgrind = under_valgrind()
    if valgrind:
        instrumentation(True)
    started = time.perf_counter()
    for request in counted:
        compose(request)
    elapsed = time.perf_counter() - started
    if valgrind:
        instrumentation(False)
        print(f"{len(counted)} documents composed under callgrind; divide valgrind's "
              f"'Collected' line by {len(counted)}", file=sys.stderr)
    else:
        print(f"{len(counted)} documents composed in {elapsed:.3f} s "
              f"({elapsed / len(counted) * 1000:.2f} ms/doc)", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
