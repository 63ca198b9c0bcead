"""Does rendering several documents per WeasyPrint call, then splitting the PDF with
pikepdf, beat one call per document? Measured for each layout.

    python load_tests/bench_batching.py [--documents 24] [--per-call 1 4 12]
        [--layouts card-invoice payment-reminder welcome-letter b2b-invoice]

The documents' HTML comes from the real composer and templates: generated card invoices
(1-3 pages, as in bench_bulk), and for the other layouts their samples in turn with a
different customer each. They are rendered with Kanal's engine caches (font configuration,
parsed stylesheets): one call per document, then k documents per call (bodies joined with
page breaks, each document's first page found from its anchor, the PDF split into k files
with pikepdf). Prints milliseconds per document for each layout and k. Note that joining
documents also breaks the per-document page counters ("Side 2 / 3" in every layout's
margin boxes would count the whole batch), so batching would need more than speed to be
usable.
"""

from __future__ import annotations

import argparse
import io
import json
import re
import sys
import time
from datetime import UTC, datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import pikepdf  # noqa: E402
from weasyprint import HTML  # noqa: E402

from load_tests.bench_bulk import records  # noqa: E402
from server.channels.weasyprint_engine import WeasyPrintEngine  # noqa: E402
from server.compose.composer import ComposeRequest, compose  # noqa: E402
from server.compose.layouts import Layout, LayoutRegistry  # noqa: E402

BODY = re.compile(r"<body[^>]*>(.*)</body>", re.S)


def htmls(layout_id: str, count: int) -> tuple[Layout, list[str]]:
    layout = LayoutRegistry().get(layout_id)
    engine = WeasyPrintEngine()
    now = datetime.now(UTC)
    if layout_id == "card-invoice":
        inputs = [(data, locale) for _, data, locale in records(count)]
    else:
        samples = [(json.loads((layout.path / file).read_text(encoding="utf-8")), locale)
                   for locale, file in layout.manifest["samples"].items()]
        inputs = []
        for n in range(count):
            data, locale = samples[n % len(samples)]
            data = json.loads(json.dumps(data))
            data["customer"]["customer_id"] = f"{40000000 + n}"
            inputs.append((json.dumps(data), locale))
    out = []
    for n, (data, locale) in enumerate(inputs):
        composition = compose(ComposeRequest(tenant="b", layout=layout, data=data,
                                             document_id=f"doc-{n}", now=now, locale=locale))
        out.append(engine.render_html(layout, composition))
    return layout, out


def per_document(engine: WeasyPrintEngine, layout, pages: list[str]) -> list[bytes]:
    return [engine.render_document(layout, html).content for html in pages]


def batched(engine: WeasyPrintEngine, layout, pages: list[str], k: int) -> list[bytes]:
    fetcher, stylesheets = engine._prepared(layout)
    result = []
    for start in range(0, len(pages), k):
        group = pages[start:start + k]
        head = group[0][:group[0].index("<body")]
        body = "".join(
            f'<section id="kanal-doc-{i}" style="break-before: page">'
            f"{BODY.search(html).group(1)}</section>" for i, html in enumerate(group))
        document = HTML(string=f"{head}<body>{body}</body></html>",
                        base_url=layout.path.as_uri() + "/", url_fetcher=fetcher
                        ).render(font_config=engine.font_config, stylesheets=stylesheets)
        firsts = [next(n for n, page in enumerate(document.pages)
                       if f"kanal-doc-{i}" in page.anchors) for i in range(len(group))]
        whole = pikepdf.open(io.BytesIO(document.write_pdf()))
        for i, first in enumerate(firsts):
            last = firsts[i + 1] if i + 1 < len(firsts) else len(whole.pages)
            part = pikepdf.new()
            part.pages.extend(whole.pages[first:last])
            buffer = io.BytesIO()
            part.save(buffer)
            result.append(buffer.getvalue())
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--documents", type=int, default=24)
    parser.add_argument("--per-call", type=int, nargs="+", default=[1, 4, 12])
    parser.add_argument("--layouts", nargs="+", default=[
        "card-invoice", "payment-reminder", "welcome-letter", "b2b-invoice"])
    args = parser.parse_args()
    results: dict[str, dict[str, float]] = {}
    for layout_id in args.layouts:
        layout, pages = htmls(layout_id, args.documents)
        engine = WeasyPrintEngine(pdf_variant=None)
        per_document(engine, layout, pages[:2])  # warm the caches
        results[layout_id] = {}
        for k in args.per_call:
            started = time.perf_counter()
            pdfs = (per_document(engine, layout, pages) if k == 1
                    else batched(engine, layout, pages, k))
            seconds = time.perf_counter() - started
            assert len(pdfs) == len(pages)
            ms = round(seconds / len(pages) * 1000, 1)
            results[layout_id][f"{k}_per_call_ms_per_document"] = ms
            print(f"{layout_id:<17} {k:>3} document(s) per call: {ms:7.1f} ms/document",
                  file=sys.stderr)
    out = ROOT / "load_tests" / "results"
    out.mkdir(parents=True, exist_ok=True)
    (out / "batching.json").write_text(json.dumps(results, indent=2))
    print(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
