"""Typst print templates: layout + Composition -> tagged PDF/A-3 + PDF/UA-1 bytes, in-process.

A layout with `[print] engine = "typst"` has a `typst_template` (`print.typ`) that reads
the same context the HTML templates see (`pdf.template_variables`), handed over as one JSON
string in `sys.inputs.context` and parsed in the template with
`json(bytes(sys.inputs.context))`. Data is never pasted into Typst source, so a customer
name like `#read("/etc/passwd")` is text on the page, not code: there is nothing for it to
be evaluated by.

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

Beside the context, `sys.inputs.advance-bounds` holds upper bounds of the widths of the
document's characters and of the widest word of each of its strings in the layout's fonts
(`server.channels.advance_bounds`), so the templates' `fit` measures only the words that
could be wider than their box (issue 14);
`TypstEngine(advance_bounds=False)` leaves it out and `fit` measures every word (the tests
compare the two).

One `typst.Compiler` per layout version, kept for the life of the process: Typst memoizes
fonts, parsed templates and layout work between documents (comemo), which is most of its
speed. A compiler is not re-entrant, so each one has a lock.
"""

from __future__ import annotations

import threading
from importlib.metadata import version as package_version

import typst

from server import logs
from server.channels.advance_bounds import fit_bounds_json
from server.channels.pdf import RenderedPdf, pdf_standards, template_json
from server.compose.layouts import Layout, LayoutError, font_folders
from server.compose.model import Composition

log = logs.get_logger(__name__)

TYPST_VERSION = package_version("typst")  # typst-py; it embeds the Typst compiler


class TypstEngine:
    """`print.typ` + context JSON -> PDF with typst-py, one compiler per layout version."""

    name = "typst"
    version = TYPST_VERSION

    def __init__(self, advance_bounds: bool = True) -> None:
        self.advance_bounds = advance_bounds
        self._compilers: dict[str, tuple[typst.Compiler, threading.Lock]] = {}
        self._lock = threading.Lock()

    def _compiler(self, layout: Layout) -> tuple[typst.Compiler, threading.Lock]:
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
                compiler = typst.Compiler(
                    input=str(source), root=str(source.parents[2]),
                    font_paths=fonts, ignore_system_fonts=True)
                found = self._compilers[layout.ref] = (compiler, threading.Lock())
            return found

    def render(self, layout: Layout, composition: Composition) -> RenderedPdf:
        """Raises `LayoutError` when the template does not compile or names a font the
        layout does not ship (a deployment error, not the caller's data)."""
        compiler, lock = self._compiler(layout)
        standards = pdf_standards(layout)
        inputs = {"context": template_json(composition)}
        if self.advance_bounds:
            inputs["advance-bounds"] = fit_bounds_json(layout, inputs["context"])
        with lock:
            try:
                content, warnings = compiler.compile_with_warnings(
                    format="pdf", sys_inputs=inputs,
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
