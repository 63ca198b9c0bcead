"""What the print channel's two checks cost: the glyph check and the page preflight.

    python load_tests/bench_preflight.py [--repeat 30] [--transactions 6 60 200]

For each layout engine (Typst, WeasyPrint) renders a card invoice with `--transactions`
rows once, then times `server.channels.preflight.check_pdf` (pdfium reads the text runs of
every page back) and `server.channels.glyphs.missing_glyphs` (the composed context against
the fonts' cmaps, cached) `--repeat` times each, on one core. Prints JSON: milliseconds per
document and per page (median), pages, and the render time for scale.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from datetime import UTC, datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from server.channels.glyphs import missing_glyphs  # noqa: E402
from server.channels.pdf import PrintEngines  # noqa: E402
from server.channels.preflight import check_pdf  # noqa: E402
from server.compose.composer import ComposeRequest, compose  # noqa: E402
from server.compose.layouts import LayoutRegistry  # noqa: E402


def timed(fn, repeat: int) -> float:
    """Median milliseconds of `fn()`."""
    times = []
    for _ in range(repeat):
        started = time.perf_counter()
        fn()
        times.append((time.perf_counter() - started) * 1000)
    return statistics.median(times)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--repeat", type=int, default=30)
    parser.add_argument("--transactions", type=int, nargs="+", default=[6, 60, 200])
    args = parser.parse_args()
    layout = LayoutRegistry().get("card-invoice")
    sample = json.loads((layout.path / "sample.json").read_text(encoding="utf-8"))
    rows = sample["transactions"]
    results = []
    for count in args.transactions:
        data = {**sample, "transactions": [rows[i % len(rows)] for i in range(count)]}
        composition = compose(ComposeRequest(
            tenant="bench", layout=layout, data=json.dumps(data), document_id="bench",
            now=datetime(2026, 3, 2, 9, tzinfo=UTC)))
        glyph_ms = timed(lambda c=composition: missing_glyphs(c, layout), args.repeat)
        for engine in ("typst", "weasyprint"):
            pdf_engine = PrintEngines(engine)
            started = time.perf_counter()
            rendered = pdf_engine.render(layout, composition)
            render_ms = (time.perf_counter() - started) * 1000
            assert check_pdf(rendered.content, composition, layout) == []
            preflight_ms = timed(
                lambda pdf=rendered.content, c=composition: check_pdf(pdf, c, layout),
                args.repeat)
            results.append({
                "engine": engine, "transactions": count, "pages": rendered.pages,
                "render_ms": round(render_ms, 1),
                "preflight_ms": round(preflight_ms, 2),
                "preflight_ms_per_page": round(preflight_ms / rendered.pages, 2),
                "glyph_check_ms": round(glyph_ms, 3),
            })
    print(json.dumps({"repeat": args.repeat, "results": results}, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
