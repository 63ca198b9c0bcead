"""Whether the plan's fallbacks that carry the print PDF can carry this document: asked
while composing, from the rendered pages, not found out when the fallback is due.

The plan's own checks (`server.channels.channel_unfit`) run before anything is rendered:
glyphs, SMS segments, the e-mail's size, the e-invoice rules. Whether the print page can
hold the document's text is read from the rendered PDF (`server.channels.preflight`: text
outside its box or the envelope window; `server.channels.print_zones`: ink in the print
shop's mark zones). A planned channel that carries the PDF (print, the mailbox copy, the
e-mail with the PDF attached, Factur-X) is refused at once by those checks; a *fallback*
that carries it would otherwise be rendered only when the primary delivery fails, refused
then, with nobody told. So `fallback_problems` answers for the fallbacks while composing,
and the plan lists each one that cannot in `skipped` with the reason
(`server.compose.plan.without_unfit`; Compose response, GetDocument, index):

* text out of its box: every fallback carrying the PDF is skipped; ink in a mark zone:
  only print (the e-mail's attachment and the mailbox copy never reach a print line);
* cost: none when the PDF was rendered for a planned channel (it passed the same checks,
  the mark zones included whenever print is a fallback: `Renderers._render_print`); else
  one render of the print PDF and its one read-back pass, not archived (an SMS-first plan
  with an e-mail or print fallback). Measured on 2 CPUs with the payment reminder's sample
  (SMS first, then e-mail with the PDF, then print), `python load_tests/bench_compose.py
  --layout payment-reminder --requests 60`, before -> after: Compose p50 at concurrency 1
  12.7 -> 59.0 ms, throughput at concurrency 8 77 -> 30 documents/s; of the ~45 ms added,
  Typst's compile is ~38 ms and the read-back ~6.5 ms. That is what a print-first document
  pays for its PDF anyway: the price of knowing the fallback can carry the document.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace

from server.channels.email import needs_pdf
from server.channels.glyphs import print_composition
from server.channels.pdf import PdfEngine, page_problems
from server.compose.layouts import Layout
from server.compose.model import Channel, Composition, Output
from server.compose.plan import FACTURX, Unfit, einvoice_syntax, without_unfit
from server.errors import InvalidInput
from server.printing.zones import MarkZone


@dataclass(frozen=True, slots=True)
class Rendering:
    """What the render stage made of a composition: its planned channels' outputs, in plan
    order, and the fallbacks whose print page cannot carry it (channel, why)."""

    outputs: list[Output]
    unfit_fallbacks: tuple[tuple[Channel, Unfit], ...] = ()

    def applied_to(self, composition: Composition) -> Composition:
        """`composition` with those fallbacks moved to its plan's `skipped`."""
        if not self.unfit_fallbacks:
            return composition
        return replace(composition, channel_plan=without_unfit(
            composition.channel_plan, self.unfit_fallbacks))


def carries_pdf(channel: Channel, composition: Composition, layout: Layout) -> bool:
    """Whether `channel` sends this document's print PDF: print, the mailbox copy, the
    e-mail of a layout with `[email] attach_pdf`, the Factur-X e-invoice (PDF/A-3)."""
    if channel in (Channel.PRINT, Channel.MAILBOX):
        return True
    if channel is Channel.EMAIL:
        return needs_pdf(layout)
    return channel is Channel.EINVOICE and einvoice_syntax(
        composition.kind, composition.recipient, layout) == FACTURX


def _unfit(error: InvalidInput) -> Unfit:
    return Unfit(str(error), tuple(error.violations))


def fallback_problems(composition: Composition, layout: Layout, engine: PdfEngine,
                      mark_zones: Sequence[MarkZone]) -> tuple[tuple[Channel, Unfit], ...]:
    """The plan's fallbacks carrying the print PDF that its rendered pages refuse, with
    why; () when none carries it or every check passes. Renders the print PDF once with
    `engine` (the caller asks only when no planned channel rendered it); `mark_zones`: the
    paper's, checked only for a print fallback. Errors other than `InvalidInput` (an engine
    failing) propagate, as they would for a planned print channel."""
    carriers = [c for c in composition.channel_plan.fallbacks
                if carries_pdf(c, composition, layout)]
    if not carriers:
        return ()
    try:
        printed = print_composition(composition, layout)  # as render_print draws it
        pdf = engine.render(layout, printed).content
        overflow, zones = page_problems(pdf, printed, layout,
                                        mark_zones if Channel.PRINT in carriers else ())
    except InvalidInput as exc:  # the engine refused the data itself
        overflow, zones = exc, None
    if overflow is not None:
        return tuple((c, _unfit(overflow)) for c in carriers)
    if zones is not None:
        return ((Channel.PRINT, _unfit(zones)),)
    return ()
