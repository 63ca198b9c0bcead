"""Print channel: Composition -> archive-grade PDF bytes and page facts.

The PDF engine is a seam: `PdfEngine.render(layout, composition)` takes the layout and the
Composition and returns PDF bytes, the page count and which engine made them. Nothing
outside the engine modules touches an engine's objects. A layout's manifest names its
engine (`[print] engine`): "weasyprint" (HTML + CSS, `template` and `stylesheets`,
`server.channels.weasyprint_engine`) or "typst" (`typst_template`,
`server.channels.typst_engine`); `PrintEngines` picks it per layout, or one engine for all
(`kanal render --engine`, the benchmarks), and imports an engine's module only when a
layout first needs it.
The manifest's `pdf_standards` (default `["a-3b"]`, what the 1.0.0 layouts were archived
with) say what the file conforms to: `["a-3a", "ua-1"]` is a tagged PDF/A-3 that is also
PDF/UA-1 (ISO 14289-1), in either engine.
"""

from __future__ import annotations

import hashlib
import json
import re
import threading
import time
from collections.abc import Mapping, Sequence
from dataclasses import asdict, is_dataclass
from typing import Protocol

from server import metrics
from server.channels.glyphs import (
    missing_glyphs,
    print_composition,
    refuse_unmapped_text,
    unmapped_text,
)
from server.channels.preflight import check_pdf, refuse_overflow
from server.channels.print_zones import check_print_zones, zone_violations
from server.compose.layouts import PRINT_ENGINES, Layout, LayoutError
from server.compose.model import Channel, Composition, Output
from server.errors import FieldViolation, InvalidInput
from server.pdfium import page_count, read_back
from server.printing.zones import MarkZone

PDF_MEDIA_TYPE = "application/pdf"
DEFAULT_PDF_STANDARDS = ("a-3b",)  # a layout without `pdf_standards` (the 1.0.0 ones)
ENGINES = tuple(PRINT_ENGINES)  # "weasyprint", "typst"
DEFAULT_ENGINE = "weasyprint"


class RenderedPdf:
    """What an engine made: the PDF's `content`, its page count, the engine's name and
    version (output facts) and what the file conforms to. An engine that does not count
    the pages itself (Typst) leaves `pages` None: `render_print` takes the count from its
    read-back pass (`refuse_unprintable`), which opens the PDF anyway, and anyone else who
    asks for `pages` has it counted then (`server.pdfium.page_count`), once. Immutable."""

    __slots__ = ("content", "_pages", "engine", "engine_version", "pdf_standards")

    def __init__(self, content: bytes, pages: int | None = None, engine: str = DEFAULT_ENGINE,
                 engine_version: str = "",
                 pdf_standards: tuple[str, ...] = DEFAULT_PDF_STANDARDS):
        for name, value in (("content", content), ("_pages", pages), ("engine", engine),
                            ("engine_version", engine_version),
                            ("pdf_standards", pdf_standards)):
            object.__setattr__(self, name, value)

    @property
    def pages(self) -> int:
        """The page count; counted by pdfium on the first ask when the engine gave none
        (`PdfiumError` if pdfium cannot open the PDF)."""
        if self._pages is None:
            object.__setattr__(self, "_pages", page_count(self.content))
        return self._pages

    @property
    def counted_pages(self) -> int | None:
        """The page count the engine gave, or counted since; None when nobody has yet."""
        return self._pages

    def __setattr__(self, name: str, value: object) -> None:
        raise AttributeError(f"RenderedPdf is immutable: cannot set {name}")

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, RenderedPdf):
            return NotImplemented
        return (self.content, self.pages, self.engine, self.engine_version,
                self.pdf_standards) == (other.content, other.pages, other.engine,
                                        other.engine_version, other.pdf_standards)

    def __hash__(self) -> int:  # by value, as the frozen dataclass it was
        return hash((self.content, self.engine, self.engine_version, self.pdf_standards))

    def __repr__(self) -> str:
        return (f"RenderedPdf(<{len(self.content)} bytes>, pages={self._pages!r}, "
                f"engine={self.engine!r}, engine_version={self.engine_version!r}, "
                f"pdf_standards={self.pdf_standards!r})")

    def __reduce__(self) -> tuple[object, tuple[object, ...]]:
        return RenderedPdf, (self.content, self._pages, self.engine, self.engine_version,
                             self.pdf_standards)


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
    as the file `/kanal-context.json` of its compile, typst_engine.CONTEXT_FILE): values stay
    data, never Typst source."""
    text = json.dumps(template_variables(composition), default=_json_value,
                      ensure_ascii=False, separators=(",", ":"))
    # Typst draws a tab (U+0009, which data may hold) as nothing: "Kunde\tBygg AS" printed
    # "KundeBygg AS", "Storgata\t2" in the envelope window "Storgata2". WeasyPrint, as HTML
    # does, prints it as a space; so does Typst with this. json.dumps writes a tab as the
    # escape "\t"; the escapes are read pairwise, so an escaped backslash before a "t"
    # stays. Context without a tab is unchanged (byte for byte).
    return _JSON_ESCAPE.sub(_tab_as_space, text) if "\\t" in text else text


# a JSON string escape: a backslash and the character it escapes
_JSON_ESCAPE = re.compile(r"\\(.)")


def _tab_as_space(escape: re.Match[str]) -> str:
    return " " if escape.group(1) == "t" else escape.group(0)


def _json_value(value: object) -> object:
    if isinstance(value, Mapping):
        return dict(value)
    if is_dataclass(value) and not isinstance(value, type):
        return asdict(value)
    return str(value)  # Decimal, date: the context holds formatted strings; never float


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
                    from server.channels.weasyprint_engine import WeasyPrintEngine

                    self._engines[name] = WeasyPrintEngine()
                else:
                    raise LayoutError(f"unknown PDF engine {name!r}")
            return self._engines[name]

    def render(self, layout: Layout, composition: Composition) -> RenderedPdf:
        return self.engine(self.only or engine_of(layout)).render(layout, composition)


def refuse_unprintable(pdf: bytes, composition: Composition, layout: Layout,
                       mark_zones: Sequence[MarkZone] = ()) -> int:
    """The print PDF's read-back checks in one pdfium pass (`server.pdfium.read_back`):
    `InvalidInput` when text leaves its box (`preflight`), else when something reaches
    one of `mark_zones` (`print_zones`); -> the number of pages read back (pdfium's count,
    what `server.pdfium.page_count` says), so the PDF need not be opened again to count."""
    overflow, zones, pages = _read_back(pdf, composition, layout, mark_zones)
    if overflow is not None or zones is not None:
        raise overflow or zones
    return pages


def page_problems(pdf: bytes, composition: Composition, layout: Layout,
                  mark_zones: Sequence[MarkZone] = ()
                  ) -> tuple[InvalidInput | None, InvalidInput | None]:
    """`refuse_unprintable`'s checks, answered rather than raised, in the same one pdfium
    pass: -> (why text leaves its box or the window, or None; why ink reaches one of
    `mark_zones`, or None: asked only when the text stays in its boxes). A fallback that
    never goes to paper (the e-mail's attachment, the mailbox copy) minds only the first."""
    overflow, zones, _ = _read_back(pdf, composition, layout, mark_zones)
    return overflow, zones


def _read_back(pdf: bytes, composition: Composition, layout: Layout,
               mark_zones: Sequence[MarkZone]
               ) -> tuple[InvalidInput | None, InvalidInput | None, int]:
    """`page_problems` and the number of pages, from one `read_back`."""
    with read_back(pdf) as pages:
        try:
            refuse_overflow(pages, composition, layout)
        except InvalidInput as exc:
            return exc, None, len(pages)
        try:
            check_print_zones(pages, composition, mark_zones)
        except InvalidInput as exc:
            return None, exc, len(pages)
        return None, None, len(pages)


def print_problems(pdf: bytes, composition: Composition, layout: Layout,
                   mark_zones: Sequence[MarkZone] = (), engine: str = "") -> list[FieldViolation]:
    """Every problem for which `render_print` would refuse this PDF, all of them rather than
    the first check's (for `kanal render`, which writes the PDF anyway): characters the
    print fonts cannot draw (`glyphs`), text that leaves its box or the envelope window or
    is drawn over text (`preflight`), content reaching one of `mark_zones` (`print_zones`),
    in that order, each naming the input's JSON path (or the layout's limit); [] when the
    PDF prints as composed. `composition`: the one rendered, `glyphs.printable`'s (what
    `render_print` renders: a field of `[print] replace_unprintable` without what the
    fonts cannot draw); `engine`: the engine that rendered it, whose text layer is checked
    too (`glyphs.unmapped_text`)."""
    problems = missing_glyphs(composition, layout) + unmapped_text(composition, engine)
    with read_back(pdf) as pages:
        problems += check_pdf(pages, composition, layout)
        problems += zone_violations(pages, composition, mark_zones)
    return problems


def render_print(composition: Composition, layout: Layout, engine: PdfEngine,
                 mark_zones: Sequence[MarkZone] = ()) -> Output:
    """The print PDF, checked before anything archives it: every character has a glyph in
    the layout's fonts (before rendering, `glyphs`); then, read back in one pdfium pass
    (`refuse_unprintable`), no text leaves its box on the rendered pages (`preflight`) and
    nothing reaches one of `mark_zones` (`print_zones`; none for a PDF that never goes to
    paper). Each refusal is `InvalidInput` naming the field; the preflight's comes first.
    Fields the layout lets print without what it cannot draw are rendered so
    (`glyphs.printable`: a merchant descriptor's emoji dropped, a script the fonts lack as
    "?"); text the engine cannot write a true text layer for is refused after it rendered
    (`glyphs.unmapped_text`)."""
    composition = print_composition(composition, layout)
    started = time.perf_counter()
    rendered = engine.render(layout, composition)
    refuse_unmapped_text(composition, rendered.engine)  # the engine that did render
    pages = refuse_unprintable(rendered.content, composition, layout, mark_zones)
    # the engine that rendered: the result names it where a dispatcher chose one per layout
    metrics.render_time(getattr(rendered, "engine", None) or metrics.engine_name(engine),
                        time.perf_counter() - started)
    archive = next((s for s in rendered.pdf_standards if s.startswith("a-")), None)
    return Output(
        channel=Channel.PRINT,
        media_type=PDF_MEDIA_TYPE,
        content=rendered.content,
        sha256=hashlib.sha256(rendered.content).hexdigest(),
        # the engine's count, else (Typst) the read-back pass's: the PDF is opened once
        facts={"pages": pages if rendered.counted_pages is None else rendered.counted_pages,
               "pdf_variant": f"pdf/{archive}" if archive else "pdf",
               "pdf_standards": ",".join(rendered.pdf_standards),
               "engine": rendered.engine, "engine_version": rendered.engine_version},
    )
