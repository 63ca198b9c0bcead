"""Print channel: Composition -> archive-grade PDF bytes and page facts.

The PDF engine is a seam: `PdfEngine.render(layout, composition)` takes the layout and the
Composition and returns PDF bytes, the page count and which engine made them. Nothing
outside the engine modules touches an engine's objects. A layout's manifest names its
engine (`[print] engine`): "weasyprint" (HTML + CSS, `template` and `stylesheets`, this
module) or "typst" (`typst_template`, `server.channels.typst_engine`); `PrintEngines`
picks it per layout, or one engine for all (`kanal render --engine`, the benchmarks).
The manifest's `pdf_standards` (default `["a-3b"]`, what the 1.0.0 layouts were archived
with) say what the file conforms to: `["a-3a", "ua-1"]` is a tagged PDF/A-3 that is also
PDF/UA-1 (ISO 14289-1), in either engine.

`WeasyPrintEngine` keeps what WeasyPrint lets us reuse between documents: one
`FontConfiguration`, and each layout's stylesheets parsed once. Its URL fetcher serves
only the layout's own files and the shared brand assets (`layouts/_shared/`), read once
and kept in memory: data in a document can never make the server fetch a URL or read a file.
"""

from __future__ import annotations

import base64
import hashlib
import json
import mimetypes
import re
import threading
import time
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, is_dataclass
from pathlib import Path
from typing import Protocol
from urllib.parse import unquote, urlparse

import weasyprint
from weasyprint import CSS, HTML
from weasyprint.text.fonts import FontConfiguration
from weasyprint.urls import URLFetcher, URLFetcherResponse

from server import metrics
from server.channels.glyphs import refuse_missing_glyphs
from server.channels.pdf_ua import identify_pdf_ua
from server.channels.preflight import refuse_overflow
from server.channels.print_zones import check_print_zones
from server.compose.layouts import PRINT_ENGINES, Layout, LayoutError
from server.compose.model import Channel, Composition, Output
from server.pdfium import read_back
from server.printing.zones import MarkZone

PDF_MEDIA_TYPE = "application/pdf"
DEFAULT_PDF_STANDARDS = ("a-3b",)  # a layout without `pdf_standards` (the 1.0.0 ones)
ENGINES = tuple(PRINT_ENGINES)  # "weasyprint", "typst"
DEFAULT_ENGINE = "weasyprint"


@dataclass(frozen=True, slots=True)
class RenderedPdf:
    content: bytes
    pages: int
    engine: str = DEFAULT_ENGINE  # which engine made it, and its version (output facts)
    engine_version: str = ""
    pdf_standards: tuple[str, ...] = DEFAULT_PDF_STANDARDS


class PdfEngine(Protocol):
    def render(self, layout: Layout, composition: Composition) -> RenderedPdf: ...


def engine_of(layout: Layout) -> str:
    """The engine a layout's manifest names for its print template (`[print] engine`)."""
    return layout.section("print").get("engine", DEFAULT_ENGINE)


def pdf_standards(layout: Layout) -> tuple[str, ...]:
    """What a layout's print PDF conforms to (`[print] pdf_standards`, Typst's names:
    "a-3a", "a-3b", "ua-1"). PDF/UA-1 needs PDF/A-2 or -3 beside it, never -1."""
    return tuple(layout.section("print").get("pdf_standards", DEFAULT_PDF_STANDARDS))


def template_variables(composition: Composition) -> dict[str, object]:
    """What a layout's templates see: the composed context plus the document's identity."""
    return {
        **composition.context,
        "document_id": composition.document_id,
        "layout_ref": composition.layout_ref,
        "locale": composition.locale,
        "campaigns": {c.area: c for c in composition.campaigns},
    }


def template_json(composition: Composition) -> str:
    """`template_variables` as JSON, the one way data reaches a Typst template (read there
    with `json(bytes(sys.inputs.context))`): values stay data, never Typst source."""
    return json.dumps(template_variables(composition), default=_json_value,
                      ensure_ascii=False, separators=(",", ":"))


def _json_value(value: object) -> object:
    if isinstance(value, Mapping):
        return dict(value)
    if is_dataclass(value) and not isinstance(value, type):
        return asdict(value)
    return str(value)  # Decimal, date: the context holds formatted strings; never float


# `data:` images the compose stage made (the EPC QR code, the Finnish bar code: segno and
# python-barcode SVG, server/compose/payments/codes.py). They name no place, so serving them
# fetches nothing; other media types stay refused.
_DATA_IMAGE = re.compile(r"data:(image/svg\+xml|image/png);base64,([A-Za-z0-9+/=]+)")


class AssetFetcher(URLFetcher):
    """Serves `file:` URLs below the allowed folders and base64 `data:` images (SVG, PNG), and
    refuses everything else."""

    def __init__(self, roots: tuple[Path, ...]):
        super().__init__(allowed_protocols=("file", "data"), fail_on_errors=False)
        self._roots = tuple(root.resolve() for root in roots)
        self._cache: dict[Path, bytes] = {}
        self._lock = threading.Lock()

    def fetch(self, url: str, headers: object = None) -> URLFetcherResponse:
        if url.startswith("data:"):
            match = _DATA_IMAGE.fullmatch(url)
            if match is None:
                raise ValueError("layouts may use data: URLs only for base64 SVG or PNG images")
            return URLFetcherResponse(url, base64.b64decode(match[2]),
                                      {"Content-Type": match[1]})
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


# WeasyPrint is not thread-safe: two documents laid out at once in one process (a delivery
# fallback and a Compose, both rendering in threads when render_workers = 0) aborted the
# process inside Pango/HarfBuzz on their shared FontConfiguration. Render processes are
# single-threaded, so in production the lock is never contended.
WEASYPRINT_LOCK = threading.Lock()


class WeasyPrintEngine:
    """HTML + CSS -> PDF with WeasyPrint, caches per layout version.

    The PDF variant follows the layout's `pdf_standards`: "a-3b" -> `pdf/a-3b`; "a-3a"
    -> `pdf/a-3a` (tagged); "ua-1" beside it -> the tagged PDF/A-3 is declared PDF/UA-1
    too (`server.channels.pdf_ua`). `pdf_variant` set explicitly (e.g. None for a plain
    PDF, the benchmarks) overrides the layout."""

    name = "weasyprint"
    version = weasyprint.__version__

    def __init__(self, pdf_variant: str | None = "layout"):
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
        """The WeasyPrint step alone (the benchmarks time it on its own). One document at a
        time per process (WEASYPRINT_LOCK)."""
        fetcher, stylesheets = self._prepared(layout)
        with WEASYPRINT_LOCK:
            document = HTML(
                string=html, base_url=layout.path.as_uri() + "/", url_fetcher=fetcher
            ).render(font_config=self.font_config, stylesheets=stylesheets)
            if self.pdf_variant != "layout":
                return RenderedPdf(document.write_pdf(pdf_variant=self.pdf_variant),
                                   len(document.pages), self.name, self.version, ())
            standards = pdf_standards(layout)
            archive = next((s for s in standards if s.startswith("a-")), None)
            content = document.write_pdf(pdf_variant=f"pdf/{archive}" if archive else None)
        if "ua-1" in standards:
            content = identify_pdf_ua(content)
        return RenderedPdf(content, len(document.pages), self.name, self.version, standards)


class PrintEngines:
    """The engine each layout's manifest names, made on first use and kept (one per
    process: each keeps its own caches); `only` renders every layout with one engine."""

    def __init__(self, only: str | None = None):
        if only is not None and only not in ENGINES:
            raise ValueError(f"engine must be one of {', '.join(ENGINES)}, not {only!r}")
        self.only = only
        self._engines: dict[str, PdfEngine] = {}
        self._lock = threading.Lock()

    def engine(self, name: str) -> PdfEngine:
        with self._lock:
            if name not in self._engines:
                if name == "typst":
                    from server.channels.typst_engine import TypstEngine

                    self._engines[name] = TypstEngine()
                elif name == "weasyprint":
                    self._engines[name] = WeasyPrintEngine()
                else:
                    raise LayoutError(f"unknown PDF engine {name!r}")
            return self._engines[name]

    def render(self, layout: Layout, composition: Composition) -> RenderedPdf:
        return self.engine(self.only or engine_of(layout)).render(layout, composition)


def refuse_unprintable(pdf: bytes, composition: Composition, layout: Layout,
                       mark_zones: Sequence[MarkZone] = ()) -> None:
    """The print PDF's read-back checks in one pdfium pass (`server.pdfium.read_back`):
    `InvalidInput` when text leaves its box (`preflight`), else when something reaches
    one of `mark_zones` (`print_zones`)."""
    with read_back(pdf) as pages:
        refuse_overflow(pages, composition, layout)
        check_print_zones(pages, composition, mark_zones)


def render_print(composition: Composition, layout: Layout, engine: PdfEngine,
                 mark_zones: Sequence[MarkZone] = ()) -> Output:
    """The print PDF, checked before anything archives it: every character has a glyph in
    the layout's fonts (before rendering, `glyphs`); then, read back in one pdfium pass
    (`refuse_unprintable`), no text leaves its box on the rendered pages (`preflight`) and
    nothing reaches one of `mark_zones` (`print_zones`; none for a PDF that never goes to
    paper). Each refusal is `InvalidInput` naming the field; the preflight's comes first."""
    refuse_missing_glyphs(composition, layout)
    started = time.perf_counter()
    rendered = engine.render(layout, composition)
    refuse_unprintable(rendered.content, composition, layout, mark_zones)
    # the engine that rendered: the result names it where a dispatcher chose one per layout
    metrics.render_time(getattr(rendered, "engine", None) or metrics.engine_name(engine),
                        time.perf_counter() - started)
    archive = next((s for s in rendered.pdf_standards if s.startswith("a-")), None)
    return Output(
        channel=Channel.PRINT,
        media_type=PDF_MEDIA_TYPE,
        content=rendered.content,
        sha256=hashlib.sha256(rendered.content).hexdigest(),
        facts={"pages": rendered.pages,
               "pdf_variant": f"pdf/{archive}" if archive else "pdf",
               "pdf_standards": ",".join(rendered.pdf_standards),
               "engine": rendered.engine, "engine_version": rendered.engine_version},
    )
