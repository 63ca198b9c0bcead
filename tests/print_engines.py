"""The print engines a test renders with: one of each kind per test process, as a server
keeps one `PrintEngines` per process, instead of a fresh one per render.

A fresh WeasyPrint engine loads its fonts and parses the layout's stylesheets again: about
0.4-0.6 s of CPU on every render (card-invoice 1.43 s fresh, 0.84 s reused; b2b-invoice 0.81 s
and 0.38 s); a fresh Typst engine compiles its fonts again (30 ms against 10 ms). The PDF's
bytes are the same either way (the engines' caches hold parsed stylesheets, fonts and Typst
compilers, never a document).

The engines cache per `layout.ref` (`layout_id@version`): right for the repository's layouts,
whose versions are immutable, wrong for a test's altered copy in a temporary folder (same
ref, other files). A layout from anywhere but `layouts/` gets a fresh engine, as before.
"""

from __future__ import annotations

from functools import cache
from pathlib import Path

from server.channels.pdf import PrintEngines
from server.compose.layouts import DEFAULT_LAYOUTS_DIR, Layout


@cache
def _kept(only: str | None) -> PrintEngines:
    return PrintEngines(only)


def print_engines(only: str | None, layout: Layout) -> PrintEngines:
    """`PrintEngines(only)` for rendering `layout`: the process's kept one for a layout of the
    repository's `layouts/` folder, a fresh one for any other (a copy a test altered)."""
    if Path(layout.path).resolve().is_relative_to(DEFAULT_LAYOUTS_DIR):
        return _kept(only)
    return PrintEngines(only)
