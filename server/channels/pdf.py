"""Print channel: Composition -> PDF/A-3b bytes and page facts.

The PDF engine is a seam: `PdfEngine.render(layout, composition)` takes the layout and the
Composition and returns PDF bytes and the page count. Nothing outside this module touches
WeasyPrint's objects, so a faster engine for high-volume layouts can take its place.

`WeasyPrintEngine` keeps what WeasyPrint lets us reuse between documents: one
`FontConfiguration`, and each layout's stylesheets parsed once. Its URL fetcher serves
only the layout's own files and the shared brand assets (`layouts/_shared/`), read once
and kept in memory: data in a document can never make the server fetch a URL or read a file.
"""

from __future__ import annotations

import hashlib
import mimetypes
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol
from urllib.parse import unquote, urlparse

from weasyprint import CSS, HTML
from weasyprint.text.fonts import FontConfiguration
from weasyprint.urls import URLFetcher, URLFetcherResponse

from server import metrics
from server.compose.layouts import Layout
from server.compose.model import Channel, Composition, Output

PDF_MEDIA_TYPE = "application/pdf"
ARCHIVE_PDF_VARIANT = "pdf/a-3b"


@dataclass(frozen=True, slots=True)
class RenderedPdf:
    content: bytes
    pages: int


class PdfEngine(Protocol):
    def render(self, layout: Layout, composition: Composition) -> RenderedPdf: ...


def template_variables(composition: Composition) -> dict[str, object]:
    """What a layout's templates see: the composed context plus the document's identity."""
    return {
        **composition.context,
        "document_id": composition.document_id,
        "layout_ref": composition.layout_ref,
        "locale": composition.locale,
        "campaigns": {c.area: c for c in composition.campaigns},
    }


class AssetFetcher(URLFetcher):
    """Serves `file:` URLs below the allowed folders, and refuses everything else."""

    def __init__(self, roots: tuple[Path, ...]):
        super().__init__(allowed_protocols=("file",), fail_on_errors=False)
        self._roots = tuple(root.resolve() for root in roots)
        self._cache: dict[Path, bytes] = {}
        self._lock = threading.Lock()

    def fetch(self, url: str, headers: object = None) -> URLFetcherResponse:
        parsed = urlparse(url)
        if parsed.scheme != "file":
            raise ValueError(f"layouts may only use their own assets, not {parsed.scheme}: URLs")
        path = Path(unquote(parsed.path)).resolve()
        if not any(path.is_relative_to(root) for root in self._roots):
            raise ValueError("layouts may only use files from their own folder")
        with self._lock:
            body = self._cache.get(path)
            if body is None:
                body = self._cache[path] = path.read_bytes()
        media_type = mimetypes.guess_type(path.name)[0] or "application/octet-stream"
        return URLFetcherResponse(url, body, {"Content-Type": media_type})


class WeasyPrintEngine:
    """HTML + CSS -> PDF with WeasyPrint, caches per layout version."""

    def __init__(self, pdf_variant: str | None = ARCHIVE_PDF_VARIANT):
        self.pdf_variant = pdf_variant
        self.font_config = FontConfiguration()
        self._per_layout: dict[str, tuple[AssetFetcher, list[CSS]]] = {}
        self._lock = threading.Lock()

    def _prepared(self, layout: Layout) -> tuple[AssetFetcher, list[CSS]]:
        with self._lock:
            prepared = self._per_layout.get(layout.ref)
            if prepared is None:
                fetcher = AssetFetcher((layout.path, layout.shared_path))
                stylesheets = [
                    CSS(filename=str(layout.path / name), url_fetcher=fetcher,
                        font_config=self.font_config)
                    for name in layout.section("print").get("stylesheets", ())
                ]
                prepared = self._per_layout[layout.ref] = (fetcher, stylesheets)
            return prepared

    def render_html(self, layout: Layout, composition: Composition) -> str:
        template = layout.templates.get_template(layout.section("print")["template"])
        return template.render(**template_variables(composition))

    def render(self, layout: Layout, composition: Composition) -> RenderedPdf:
        html = self.render_html(layout, composition)
        return self.render_document(layout, html)

    def render_document(self, layout: Layout, html: str) -> RenderedPdf:
        """The WeasyPrint step alone (the benchmarks time it on its own)."""
        fetcher, stylesheets = self._prepared(layout)
        document = HTML(
            string=html, base_url=layout.path.as_uri() + "/", url_fetcher=fetcher
        ).render(font_config=self.font_config, stylesheets=stylesheets)
        content = document.write_pdf(pdf_variant=self.pdf_variant)
        return RenderedPdf(content=content, pages=len(document.pages))


def render_print(composition: Composition, layout: Layout, engine: PdfEngine) -> Output:
    started = time.perf_counter()
    rendered = engine.render(layout, composition)
    # the engine that rendered: the result names it where a dispatcher chose one per layout
    metrics.render_time(getattr(rendered, "engine", None) or metrics.engine_name(engine),
                        time.perf_counter() - started)
    return Output(
        channel=Channel.PRINT,
        media_type=PDF_MEDIA_TYPE,
        content=rendered.content,
        sha256=hashlib.sha256(rendered.content).hexdigest(),
        facts={"pages": rendered.pages, "pdf_variant": ARCHIVE_PDF_VARIANT},
    )
