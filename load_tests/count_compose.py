"""Instructions per composed document: Compose alone (no render, no archive), counted by
callgrind, so a change to the compose path is measured to the instruction, under any load.

    valgrind --tool=callgrind --instr-atstart=no python load_tests/count_compose.py --count 40

Generates `--count` card invoices (load_tests/bench_bulk.py `records`: nb-NO and sv-SE,
5-60 transactions), composes `--warmup` more first so every lazy import and cache is filled,
then switches callgrind's instrumentation on (`callgrind_control -i on <this pid>`),
composes the `--count` documents (`server.compose.composer.compose`, which includes the
channel plan and its e-invoice checks) and switches it off again before anything else runs.
Valgrind's closing "Collected :" line is then the compose loop's instructions (plus a
constant ~0.3 M for the two switches, load_tests/callgrind.py): divide it by `--count`.
Without valgrind the script only composes and prints the wall time. Reading the profile:
    callgrind_annotate --inclusive=yes callgrind.out.<pid> | head -60

`--digests FILE` writes instead one line per composition: the sha256 of its `repr` (every
field: context texts, invoice, plan, source paths) for every sample of every layout version
in every locale the layout lists, then for `--generated` card invoices; run it on two
checkouts (PYTHONHASHSEED=0) and compare the files to show two versions compose the same
documents:
    PYTHONHASHSEED=0 python load_tests/count_compose.py --digests compose.txt

Figures are comparable between runs with the same `--count` (the documents are the same),
not with cProfile's or wall-clock figures. Repeated runs of the same code differ by about
0.2% (addresses and hashing vary per process): compare changes smaller than that over
several runs.
"""

from __future__ import annotations

import argparse
import hashlib
import sys
import time
from datetime import UTC, datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from load_tests.bench_bulk import composed, records, samples  # noqa: E402
from load_tests.callgrind import instrumentation, under_valgrind  # noqa: E402
from server.compose.composer import ComposeRequest, compose  # noqa: E402
from server.compose.layouts import LayoutRegistry  # noqa: E402

NOW = datetime(2026, 3, 2, 9, 30, tzinfo=UTC)  # fixed: the same documents every run


def digest_lines(generated: int) -> list[str]:
    """'<layout@version> <sample> <locale> <sha256 of repr(composition)>' per composition
    (or the refusal's type and text), for `--digests`."""
    registry = LayoutRegistry()
    work = [(layout, name, data, locale) for layout, name, data in samples(registry)
            for locale in (None, *layout.locales)]
    card = registry.get("card-invoice")
    work += [(card, key, data, locale) for key, data, locale in records(generated)]
    lines = []
    for n, (layout, name, data, locale) in enumerate(work):
        try:
            composition = composed(layout, data, f"01JN4Q7W2E{n:06d}", locale, NOW)
        except Exception as exc:  # noqa: BLE001 - the same refusal on both sides is the same
            lines.append(f"{layout.ref} {name} {locale} {type(exc).__name__}: {exc}")
            continue
        digest = hashlib.sha256(repr(composition).encode()).hexdigest()
        lines.append(f"{layout.ref} {name} {locale} {digest}")
    return lines


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--count", type=int, default=40, help="documents counted")
    parser.add_argument("--warmup", type=int, default=4, help="documents composed before")
    parser.add_argument("--layout", default="card-invoice")
    parser.add_argument("--digests", type=Path, help="write each composition's digest here")
    parser.add_argument("--generated", type=int, default=200)
    args = parser.parse_args()
    if args.digests:
        lines = digest_lines(args.generated)
        args.digests.write_text("\n".join(lines) + "\n", encoding="utf-8")
        print(f"{len(lines)} compositions -> {args.digests}", file=sys.stderr)
        return 0
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
