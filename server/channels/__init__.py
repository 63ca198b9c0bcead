"""Channel renderers: Composition -> Output (bytes + facts). No I/O, no business decisions.

Each channel module exposes a renderer `(composition, layout) -> Output`; `Renderers`
holds the ones this process uses, with their per-process caches (the PDF engine).
`channel_unfit` is what the composer asks while it plans: whether a channel's own limits
(SMS segments, email size, e-invoice rules and routing) let it carry this document;
`render_planned` also asks the print page for the plan's fallbacks that carry the print PDF
(server.channels.fallback_check). `email_attachment` says which of the document's outputs
its e-mail carries: `Renderers` hands that one over, so nothing is rendered twice.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Sequence
from dataclasses import replace
from typing import Protocol

from server.channels.einvoice_channel import check_einvoice, render_einvoice
from server.channels.email import check_email, email_attachment, needs_pdf, render_email
from server.channels.fallback_check import Rendering, fallback_problems
from server.channels.glyphs import check_glyphs
from server.channels.pdf import PdfEngine, PrintEngines, render_print
from server.channels.sms_channel import check_sms, render_sms
from server.compose.layouts import Layout
from server.compose.model import Channel, Composition, Output
from server.compose.plan import FACTURX, Unfit, einvoice_syntax
from server.printing.zones import MarkZone, all_mark_zones

Renderer = Callable[[Composition, Layout], Output]

# The last glyph check made in this thread. Print, the mailbox copy, the e-mail with the
# PDF and Factur-X carry the same print PDF, so the plan asks the same question up to four
# times for one document, one channel after the other (each a walk over every string the
# templates show). A hit needs the very same composition and layout objects (the plan
# passes them unchanged), so another document is never answered with this one's glyphs.
_last_glyphs = threading.local()


def _print_glyphs(composition: Composition, layout: Layout) -> Unfit | None:
    last = getattr(_last_glyphs, "entry", None)
    if last is not None and last[0] is composition and last[1] is layout:
        return last[2]
    unfit = check_glyphs(composition, layout)
    _last_glyphs.entry = (composition, layout, unfit)
    return unfit


def _check_email(composition: Composition, layout: Layout) -> Unfit | None:
    unfit = check_email(composition, layout)
    if unfit is None and needs_pdf(layout):
        return _print_glyphs(composition, layout)  # the attached print PDF
    return unfit


def _check_einvoice(composition: Composition, layout: Layout) -> Unfit | None:
    unfit = check_einvoice(composition, layout)
    if unfit is None and einvoice_syntax(
            composition.kind, composition.recipient, layout) == FACTURX:
        return _print_glyphs(composition, layout)  # Factur-X is the print PDF/A-3
    return unfit


# The channels with limits of their own. Print, and every channel that carries the print
# PDF, needs a glyph for every character it shows (server/channels/glyphs.py); the page
# checks after rendering are the PDF renderer's (server/channels/preflight.py).
_CHECKS: dict[Channel, Callable[[Composition, Layout], Unfit | None]] = {
    Channel.PRINT: _print_glyphs,
    Channel.MAILBOX: _print_glyphs,
    Channel.SMS: check_sms,
    Channel.EMAIL: _check_email,
    Channel.EINVOICE: _check_einvoice,
}


def channel_unfit(composition: Composition, layout: Layout, channel: Channel) -> Unfit | None:
    """Why `channel` cannot carry this composition, or None when it can. Pure and cheap
    next to rendering: the SMS text, the email HTML (no PDF), the e-invoice rule checks."""
    check = _CHECKS.get(channel)
    return check(composition, layout) if check else None


class DocumentRenderer(Protocol):
    """Renders every channel of a composition's plan: `Renderers` in this process, or
    `server.channels.pool.RenderPool` in worker processes."""

    def render(self, composition: Composition, layout: Layout) -> list[Output]: ...

    def render_planned(self, composition: Composition, layout: Layout) -> Rendering: ...


def paper_mark_zones(composition: Composition,
                     mark_zones: Sequence[MarkZone]) -> tuple[MarkZone, ...]:
    """The mark zones the print PDF must keep clear: `mark_zones` when the plan prints the
    document or may fall back to paper, else none (an e-mail attachment or a mailbox copy
    alone has nothing printed over it)."""
    plan = composition.channel_plan
    paper = Channel.PRINT in plan.channels or Channel.PRINT in plan.fallbacks
    return tuple(mark_zones) if paper else ()


class Renderers:
    """The renderers of one process. The print PDF is refused (`InvalidInput`) when the data
    pushes ink into one of `mark_zones` (default: every builtin print profile's OMR and
    DataMatrix zones; `()` for an engine that makes no real PDF, in tests)."""

    def __init__(self, pdf_engine: PdfEngine | None = None,
                 mark_zones: Sequence[MarkZone] | None = None):
        self.pdf_engine = pdf_engine or PrintEngines()  # each layout's own engine
        self.mark_zones = tuple(all_mark_zones() if mark_zones is None else mark_zones)
        self._by_channel: dict[Channel, Renderer] = {
            Channel.PRINT: self._render_print,
            Channel.SMS: render_sms,
            Channel.EINVOICE: lambda c, layout: render_einvoice(
                c, layout, pdf=lambda: self._by_channel[Channel.PRINT](c, layout)),
        }
        # Renderers that reuse another output of the document: `render` hands them the print
        # Output (the e-mail the one `email_attachment` names), so each is rendered once.
        self._with_print: dict[Channel, Callable[[Composition, Layout, Callable[[], Output]],
                                                 Output]] = {
            Channel.EMAIL: lambda c, layout, pdf: render_email(c, layout, pdf=pdf),
            Channel.EINVOICE: lambda c, layout, pdf: render_einvoice(c, layout, pdf=pdf),
            # The digital mailbox gets the print PDF itself (its payment fields are the
            # Composition's, read by the delivery adapter).
            Channel.MAILBOX: lambda c, layout, pdf: replace(pdf(), channel=Channel.MAILBOX),
        }

    def _render_print(self, composition: Composition, layout: Layout) -> Output:
        """The print PDF; checked against the mark zones when it goes (or may fall back)
        to paper. As an e-mail attachment or a mailbox copy alone nothing is painted over."""
        return render_print(composition, layout, self.pdf_engine,
                            paper_mark_zones(composition, self.mark_zones))

    def render(self, composition: Composition, layout: Layout) -> list[Output]:
        """Every channel of the composition's plan, in plan order."""
        return self._render(composition, layout)[0]

    def render_planned(self, composition: Composition, layout: Layout) -> Rendering:
        """`render`, and the plan's fallbacks that carry the print PDF asked whether its
        pages can carry the document (server.channels.fallback_check): nothing more when a
        planned channel rendered the PDF already, else the PDF rendered once for the check."""
        outputs, done = self._render(composition, layout)
        if Channel.PRINT in done:
            return Rendering(outputs)
        return Rendering(outputs, fallback_problems(
            composition, layout, self.pdf_engine,
            paper_mark_zones(composition, self.mark_zones)))

    def _render(self, composition: Composition, layout: Layout
                ) -> tuple[list[Output], dict[Channel, Output]]:
        plan = composition.channel_plan
        done: dict[Channel, Output] = {}

        def once(channel: Channel) -> Output:
            if channel not in done:
                if channel in self._with_print:
                    reused = Channel.PRINT if channel != Channel.EMAIL else (
                        email_attachment(composition, layout) or Channel.PRINT)
                    done[channel] = self._with_print[channel](
                        composition, layout, lambda: once(reused))
                else:
                    done[channel] = self._by_channel[channel](composition, layout)
            return done[channel]

        return [once(channel) for channel in plan.channels], done
