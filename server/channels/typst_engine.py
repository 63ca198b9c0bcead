"""Typst print templates: layout + Composition -> tagged PDF/A-3 + PDF/UA-1 bytes, in-process.

A layout with `[print] engine = "typst"` has a `typst_template` (`print.typ`) that reads
the same context the HTML templates see (`pdf.template_variables`), handed over as one JSON
file, `/kanal-context.json` (`CONTEXT_FILE`), that exists for this compile only and that
the template parses with `json(..)` (`doc-context()` in
`_shared/fjordbank-2-typst/base.typ`). Data is never pasted into Typst source, so a
customer name like `#read("/etc/passwd")` is text on the page, not code: there is nothing
for it to be evaluated by. The compile's main file is one line naming the template
(`#include "/card-invoice/2.0.0/print.typ"`), made from the layout's path, never from data.

Why files and not `sys.inputs` (issue 14): `sys.inputs` is part of Typst's standard
library, which every memoized layout call takes as an input, so a document whose inputs
differ from the last one's shared nothing with it. With the data in files, the library is
the same for every document of a process, and comemo gives back the layout of whatever a
document has in common with earlier ones (the masthead, the labels, the slip's frame, the
recurring transaction texts); the templates keep per-document values out of the styles
every call sees (base.typ `letter`). Measured: 208.1 -> 120.8 M instructions per card
invoice (load_tests/count_typst_render.py), the PDFs byte for byte the same.

What the compiler may touch (typst-py 0.15, Typst 0.15):

* files: the project root is the `layouts/` folder, so a template reaches its own folder
  and `layouts/_shared/` (`#import "../../_shared/fjordbank-2-typst/letter.typ"`) and
  nothing outside; Typst refuses paths that leave the root;
* fonts: only the folders the manifest lists in `[print] fonts` (inside the layout or
  `_shared/`: `layouts.font_folders`), never the system's nor the fonts built into Typst;
  a template that names a family none of them has fails (`LayoutError`) instead of
  falling back silently;
* time: the document's `created_at` is the PDF's creation date, so the same Composition
  gives the same bytes on every machine (Typst derives the document /ID from content).

Beside the context, `/kanal-bounds.json` (`BOUNDS_FILE`) holds upper bounds of the widths
of the document's characters and of the widest word of each of its strings in the layout's
fonts (`server.channels.advance_bounds`), so the templates' `fit` measures only the words
that could be wider than their box (issue 14); `TypstEngine(advance_bounds=False)` gives
an empty table (`{}`) and `fit` measures every word (the tests compare the two).

Compilers per layout version, kept for the life of the process: Typst memoizes fonts,
parsed templates and layout work between documents (comemo), which is most of its speed.
A compiler is not re-entrant, so a render takes one for itself (`_Compilers`). typst-py
releases the GIL while it compiles, so renders in threads (a server with
`render_workers = 0`, or any caller rendering from several threads) run on as many cores
as there are compilers: measured here on 2 cores, two threads rendering card invoices took
19.1 ms per document with a compiler each and 29.7 with one shared compiler behind a lock
(27.9 in one thread). A layout gets a new compiler only when every one it has is busy, at
most `compilers_per_layout` (default: one per core; about 2 MB each); a render process
(one thread) keeps exactly one. Every compiler gives the same bytes for the same Composition.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from importlib.metadata import version as package_version
from pathlib import Path

import typst

from server import logs
from server.channels.advance_bounds import fit_bounds_json
from server.channels.pdf import RenderedPdf, pdf_standards, template_json
from server.compose.layouts import Layout, LayoutError, font_folders
from server.compose.model import Composition

log = logs.get_logger(__name__)

TYPST_VERSION = package_version("typst")  # typst-py; it embeds the Typst compiler
CONTEXT_FILE = "kanal-context.json"  # the template context, at the project root "/"
BOUNDS_FILE = "kanal-bounds.json"  # `fit`'s width bounds, or {} (advance_bounds=False)
NO_BOUNDS = b"{}"


class _Compilers:
    """The compilers of one layout version, each used by one render at a time: a render
    takes an idle one, or has one made while fewer than `limit` exist, or waits for one."""

    def __init__(self, make: Callable[[], typst.Compiler], limit: int, main: bytes) -> None:
        self._make = make
        self.main = main  # the compile's main file: `#include` of the template
        self._idle: list[typst.Compiler] = []
        self._free = threading.BoundedSemaphore(limit)  # compilers not in a render
        self._lock = threading.Lock()
        self.made = 0

    @contextmanager
    def one(self) -> Iterator[typst.Compiler]:
        """A compiler for this render alone; waits, with no deadline, while `limit` renders
        hold one (a render is bounded by the engine's own work, so a wait is too)."""
        self._free.acquire()
        try:
            with self._lock:
                compiler = self._idle.pop() if self._idle else None
            if compiler is None:
                compiler = self._make()  # outside the lock: other renders go on meanwhile
                with self._lock:
                    self.made += 1
            try:
                yield compiler
            finally:
                with self._lock:
                    self._idle.append(compiler)
        finally:
            self._free.release()


def main_file(template: Path, root: Path) -> bytes:
    """The compile's main file: `#include` of `template` by its path from `root` (the
    layout's own path, never data). Raises `LayoutError` for a path a Typst string
    literal would have to escape."""
    path = "/" + template.relative_to(root).as_posix()
    if '"' in path or "\\" in path or not path.isprintable():
        raise LayoutError(f"{path}: a Typst template path without quotes or backslashes")
    return f'#include "{path}"\n'.encode()


class TypstEngine:
    """`print.typ` + context JSON -> PDF with typst-py; up to `compilers_per_layout`
    renders of one layout version at once (default: one per core)."""

    name = "typst"
    version = TYPST_VERSION

    def __init__(self, advance_bounds: bool = True,
                 compilers_per_layout: int | None = None) -> None:
        self.advance_bounds = advance_bounds
        self.compilers_per_layout = max(1, compilers_per_layout
                                       or len(os.sched_getaffinity(0)))  # the cores we may use
        self._compilers: dict[str, _Compilers] = {}
        self._lock = threading.Lock()

    def _compilers_of(self, layout: Layout) -> _Compilers:
        """Raises `LayoutError` when the layout has no Typst template."""
        with self._lock:
            found = self._compilers.get(layout.ref)
            if found is None:
                section = layout.section("print")
                template = section.get("typst_template")
                if not template:
                    raise LayoutError(f"{layout.ref}: [print] has no typst_template")
                fonts = typst.Fonts(
                    include_system_fonts=False, include_embedded_fonts=False,
                    font_paths=[str(folder) for folder in font_folders(layout)])
                # Typst resolves symlinks and refuses a template outside its root, so
                # the root is the layouts folder the template really lives in
                source = (layout.path / template).resolve()
                root = source.parents[2]

                def make() -> typst.Compiler:
                    return typst.Compiler(input=str(source), root=str(root),
                                          font_paths=fonts, ignore_system_fonts=True)

                found = self._compilers[layout.ref] = _Compilers(
                    make, self.compilers_per_layout, main_file(source, root))
            return found

    def render(self, layout: Layout, composition: Composition) -> RenderedPdf:
        """Raises `LayoutError` when the template does not compile or names a font the
        layout does not ship (a deployment error, not the caller's data)."""
        compilers = self._compilers_of(layout)
        standards = pdf_standards(layout)
        context = template_json(composition)
        files = {"main.typ": compilers.main, CONTEXT_FILE: context.encode(),
                 BOUNDS_FILE: (fit_bounds_json(layout, context).encode()
                               if self.advance_bounds else NO_BOUNDS)}
        with compilers.one() as compiler:
            try:
                content, warnings = compiler.compile_with_warnings(
                    input=files, format="pdf",
                    pdf_standards=list(standards),
                    # PDF dates have whole seconds (Typst refuses microseconds)
                    timestamp=composition.created_at.replace(microsecond=0))
            except typst.TypstError as exc:
                raise LayoutError(f"{layout.ref}: print.typ: {exc.message}") from None
        for warning in warnings:
            if "font" in warning.message:
                raise LayoutError(f"{layout.ref}: print.typ: {warning.message} (fonts come "
                                  f"only from [print] fonts)")
            log.warning("typst_warning", layout=layout.ref, message=warning.message)
        assert isinstance(content, bytes)
        # pages uncounted: render_print counts them in its read-back pass, which opens
        # the PDF anyway; `RenderedPdf.pages` counts them for anyone else who asks
        return RenderedPdf(content, None, self.name, self.version, standards)
