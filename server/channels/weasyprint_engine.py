"""WeasyPrint print templates: layout + Composition -> PDF/A-3 (tagged, PDF/UA-1 where the
layout says) from HTML + CSS.

A layout with `[print] engine = "weasyprint"` (the default) has a Jinja2 `template`
(`print.html`) and `stylesheets`; they see the same context as the Typst templates
(`pdf.template_variables`). `WeasyPrintEngine` keeps what WeasyPrint lets us reuse between
documents: one `FontConfiguration`, and each layout's stylesheets parsed once. Its URL
fetcher (`AssetFetcher`) serves only the layout's own files and the shared brand assets
(`layouts/_shared/`), read once and kept in memory: data in a document can never make the
server fetch a URL or read a file.

Its own module, imported by `pdf.PrintEngines` when a layout first renders with it (as
`typst_engine` is): importing WeasyPrint loads Pango, HarfBuzz and fontconfig through cffi
and looks up their libraries (about 0.8 s of CPU here), which a bulk worker whose layouts
all render with Typst never needs, and each worker process pays again when it starts.
"""

from __future__ import annotations

import base64
import mimetypes
import re
import shutil
import threading
import weakref
from pathlib import Path
from urllib.parse import unquote, urlparse

import weasyprint
from weasyprint import CSS, HTML
from weasyprint.text.fonts import FontConfiguration
from weasyprint.urls import URLFetcher, URLFetcherResponse

from server.channels.pdf import RenderedPdf, pdf_standards, template_variables
from server.channels.pdf_ua import identify_pdf_ua
from server.compose.layouts import Layout
from server.compose.model import Composition

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


def _remove_font_folder(font_config: FontConfiguration) -> None:
    """Remove the temporary folder WeasyPrint copied the layouts' @font-face fonts into.
    Only `FontConfiguration.__del__` removes it, and for an engine alive until the process
    ends that runs during the interpreter's teardown, after `shutil.rmtree` is gone: the
    folder (about 3 MB of fonts) stayed in the temp directory, once per render process.
    Called when the engine is collected or, at the latest, at exit (`weakref.finalize`).
    `_folder` is WeasyPrint's own attribute (the version in constraints.txt);
    tests/unit/test_weasyprint_font_folder.py fails if it moves."""
    folder, font_config._folder = font_config._folder, None
    if folder:
        shutil.rmtree(folder, ignore_errors=True)


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
        weakref.finalize(self, _remove_font_folder, self.font_config)
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
