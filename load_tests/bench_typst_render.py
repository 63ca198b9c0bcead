"""Bare Typst render CPU per card invoice: `TypstEngine().render` alone, no pipeline.

    nice -n 10 python load_tests/bench_typst_render.py [--count 60] [--repeats 3]

Composes the first `--count` records of bench_bulk (`compositions`: nb-NO and sv-SE,
5-60 transactions, 1-3 pages) once, renders them all once to warm the compiler (Typst
memoizes fonts, the parsed template and layout work between documents), then renders them
all `--repeats` times and reports the fastest run's CPU time (`time.process_time`) per
document, the Python shares of it (the context JSON, `template_json`, and the width bounds
`fit` reads, `fit_bounds_json`), and the load average.
CPU time, not wall time: the machine is shared, so wall clock measures the neighbours.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from load_tests.bench_bulk import compositions  # noqa: E402
from server.channels.advance_bounds import fit_bounds_json  # noqa: E402
from server.channels.pdf import template_json  # noqa: E402
from server.channels.typst_engine import TypstEngine  # noqa: E402
from server.compose.layouts import LayoutRegistry  # noqa: E402
from server.processes import run_on_jemalloc  # noqa: E402


def cpu_ms_per_doc(run, docs: list, repeats: int) -> float:
    best = float("inf")
    for _ in range(repeats):
        started = time.process_time()
        for doc in docs:
            run(doc)
        best = min(best, time.process_time() - started)
    return best * 1000 / len(docs)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--count", type=int, default=60)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    run_on_jemalloc()  # as `kanal serve` runs (KANAL_MALLOC=system: the C library's)
    layout = LayoutRegistry().get("card-invoice")
    docs = compositions(args.count)
    engine = TypstEngine()
    pages = sum(engine.render(layout, doc).pages for doc in docs)  # warm-up
    render = cpu_ms_per_doc(lambda doc: engine.render(layout, doc), docs, args.repeats)
    context = cpu_ms_per_doc(template_json, docs, args.repeats)
    contexts = {id(doc): template_json(doc) for doc in docs}
    bounds = cpu_ms_per_doc(lambda doc: fit_bounds_json(layout, contexts[id(doc)]), docs,
                            args.repeats)
    print(json.dumps({
        "documents": len(docs), "pages": pages, "repeats": args.repeats,
        "render_cpu_ms_per_doc": round(render, 2),
        "template_json_cpu_ms_per_doc": round(context, 3),
        "fit_bounds_json_cpu_ms_per_doc": round(bounds, 3),
        "loadavg": Path("/proc/loadavg").read_text().split()[:3],
    }))


if __name__ == "__main__":
    main()
