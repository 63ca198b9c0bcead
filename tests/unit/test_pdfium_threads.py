"""pdfium is not thread-safe: a server rendering Compose calls in threads crashed in
libpdfium (SIGTRAP) when two print checks overlapped. Every read-back runs under one lock
(server/pdfium.py); here eight threads read the same PDF at once, and all agree."""

from __future__ import annotations

import json
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime

from server.channels.pdf import PrintEngines
from server.channels.preflight import check_pdf
from server.channels.print_zones import find_intrusions
from server.compose.composer import ComposeRequest, compose
from server.delivery.providers.mailbox import left_margin_mm
from server.pdfium import page_count
from server.printing.zones import all_mark_zones
from tests.layouts import shipped


def test_print_checks_from_many_threads_at_once_agree():
    layout = shipped().get("card-invoice")
    composition = compose(ComposeRequest(
        tenant="t", layout=layout, data=layout.sample_data(), document_id="THREADS",
        now=datetime(2026, 3, 2, tzinfo=UTC)))
    pdf = PrintEngines().render(layout, composition).content
    zones = all_mark_zones()

    def read(_: int) -> str:
        return json.dumps([str(check_pdf(pdf, composition, layout)),
                           str(find_intrusions(pdf, zones)), left_margin_mm(pdf),
                           page_count(pdf)])

    with ThreadPoolExecutor(8) as pool:
        results = set(pool.map(read, range(48)))
    assert len(results) == 1
    [checks] = results
    assert json.loads(checks)[:2] == ["[]", "[]"]  # the sample fits and keeps off the marks


def test_typst_documents_rendered_from_many_threads_are_the_same():
    # Typst's compiler has a lock of its own; counting the pages reads the PDF with pdfium,
    # which must take pdfium's lock too (it once did not).
    layout = shipped().get("card-invoice")
    composition = compose(ComposeRequest(
        tenant="t", layout=layout, data=layout.sample_data(), document_id="TYPST-THREADS",
        now=datetime(2026, 3, 2, tzinfo=UTC)))
    engines = PrintEngines()

    def render(_: int) -> tuple[bytes, int]:
        rendered = engines.render(layout, composition)
        return rendered.content, rendered.pages

    with ThreadPoolExecutor(8) as pool:
        results = set(pool.map(render, range(32)))
    assert len(results) == 1 and next(iter(results))[1] >= 1


def test_weasyprint_documents_rendered_from_many_threads_are_the_same():
    """WeasyPrint is not thread-safe either: a delivery fallback and a Compose laying out at
    once aborted the process in Pango. One lock per process (WEASYPRINT_LOCK)."""
    layout = shipped().get("welcome-letter")
    composition = compose(ComposeRequest(
        tenant="t", layout=layout, data=layout.sample_data(), document_id="THREADS",
        now=datetime(2026, 3, 2, tzinfo=UTC)))
    engine = PrintEngines("weasyprint")
    with ThreadPoolExecutor(4) as pool:
        pages = set(pool.map(lambda _: engine.render(layout, composition).pages, range(6)))
    assert len(pages) == 1 and pages.pop() >= 1
