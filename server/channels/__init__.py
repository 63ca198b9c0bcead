"""Channel renderers: Composition -> Output (bytes + facts). No I/O, no business decisions.

Each channel module exposes a renderer `(composition, layout) -> Output`; `Renderers`
holds the ones this process uses, with their per-process caches (the PDF engine).
"""

from __future__ import annotations

from collections.abc import Callable

from server.channels.pdf import PdfEngine, WeasyPrintEngine, render_print
from server.compose.layouts import Layout
from server.compose.model import Channel, Composition, Output

Renderer = Callable[[Composition, Layout], Output]


class Renderers:
    def __init__(self, pdf_engine: PdfEngine | None = None):
        self.pdf_engine = pdf_engine or WeasyPrintEngine()
        self._by_channel: dict[Channel, Renderer] = {
            Channel.PRINT: lambda c, layout: render_print(c, layout, self.pdf_engine),
        }

    def render(self, composition: Composition, layout: Layout) -> list[Output]:
        """Every channel of the composition's plan, in plan order."""
        plan = composition.channel_plan
        return [self._by_channel[channel](composition, layout) for channel in plan.channels]
