"""SMS channel: Composition + the layout's SMS templates -> the text as sent (an `Output`).

    the layout's ways to fit, tried in order until the text fits `[sms] max_segments`:
      each template (the full text first, then shorter variants), as written and then
      with the `transliterate` fields in GSM-7 letters;
      then each template again with the `shortenable` field cut (transliterated first)
    each text: normalise_for_gsm (typography that would force UCS-2)
               -> plan_sms (encoding, units, segments, parts)  -- server/channels/sms.py, pure

Manifest::

    [sms]
    templates = ["sms.txt", "sms-short.txt"]   # or `template = "sms.txt"`: one variant
    max_segments = 1
    shortenable = "issuer.name"          # optional: a dotted context path cut with "..."
    transliterate = ["customer.name"]    # optional: fields the layout allows in GSM-7 letters

A letter outside GSM-7 in a name (Łucja, Siobhán) makes the whole message UCS-2, 70 units a
segment instead of 160: each layout decides in its manifest what it gives up to fit, in
order: the diacritics of the names it lists (`transliterate`, "Lucja Walesa-Zolkiewska": only
Latin letters, see `sms.transliterate_to_gsm`), then the optional parts (a shorter variant
without the greeting or the invoice number), and only then the end of one field
(`shortenable`, the sender's own name): who sends a payment request must stay readable, so
"Lodz Windykacja" and a shorter text both beat "...". A shortenable field is shortened by
rendering the template with a marker in its place, splitting the text at the marker, and
letting `shorten_to_fit` cut only that field.

`fit_sms` is the one decision. The composer asks it while planning (`check_sms`): an SMS that
fits in no way is left out of the plan with its reason (`SkippedChannel`), so it never blocks
the document the customer is owed; `render_sms` renders the same fit. Called on a plan that
still holds such an SMS (a caller's own plan), it refuses with `InvalidInput` naming the
manifest field `sms.max_segments`. The archived bytes are the UTF-8 text; the parts,
encoding, SMPP data_coding, the template used and what was adapted are facts for delivery
and support.
"""

from __future__ import annotations

import hashlib
import json
import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from server.channels.sms import (
    SmsMessage,
    SmsTooLong,
    normalise_for_gsm,
    plan_sms,
    transliterate_to_gsm,
)
from server.channels.sms import shorten_to_fit as _shorten
from server.compose.layouts import Layout
from server.compose.model import Channel, Composition, Output
from server.compose.plan import Unfit
from server.errors import FieldViolation, InvalidInput

MEDIA_TYPE = "text/plain; charset=utf-8"
_MARKER = "\x00SHORTENABLE\x00"
SHORTENED = "shortened"
TRANSLITERATED = "transliterated"


@dataclass(frozen=True, slots=True)
class SmsSettings:
    """A layout's `[sms]` section."""

    templates: tuple[str, ...]
    max_segments: int
    shortenable: str | None
    transliterate: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class SmsFit:
    """The text that fits, and how it was made to."""

    message: SmsMessage
    template: str
    adapted: tuple[str, ...]  # SHORTENED, TRANSLITERATED: what was given up, in order


def sms_settings(layout: Layout) -> SmsSettings:
    section = layout.section("sms")
    templates = section.get("templates") or [section.get("template", "sms.txt")]
    return SmsSettings(
        templates=tuple(templates),
        max_segments=int(section.get("max_segments", 1)),
        shortenable=section.get("shortenable") or None,
        transliterate=tuple(section.get("transliterate", ())),
    )


def _replaced(context: Mapping[str, Any], dotted: str, change: Callable[[str], str]
              ) -> tuple[dict[str, Any], str]:
    """A copy of `context` whose `dotted` value is `change(value)`, and the original value."""
    head, *rest = dotted.split(".")
    copy = dict(context)
    if not rest:
        value = str(context[head])
        copy[head] = change(value)
        return copy, value
    copy[head], value = _replaced(context[head], ".".join(rest), change)
    return copy, value


def _render(layout: Layout, template: str, context: Mapping[str, Any]) -> str:
    return normalise_for_gsm(layout.templates.get_template(template).render(**context).strip())


def _shortened(layout: Layout, template: str, context: Mapping[str, Any], field: str,
               max_segments: int) -> str | None:
    """The text with only `field` cut to fit, or None when the template does not print it
    or even the rest does not fit."""
    marked, value = _replaced(context, field, lambda _: _MARKER)
    rendered = _render(layout, template, marked)
    if _MARKER not in rendered:
        return None
    before, _, after = rendered.partition(_MARKER)
    try:
        return _shorten(before, normalise_for_gsm(value), after, max_segments)
    except SmsTooLong:
        return None


# The last fit made in this thread: the composer's channel check (`check_sms`) and the
# renderer (`render_sms`) fit the same document's text one after the other, each rendering
# its templates. A hit needs the very same context object (the composer's `replace` keeps
# it), locale and layout, so another document is never given this one's text.
_last_fit = threading.local()


def fit_sms(composition: Composition, layout: Layout) -> SmsFit:
    """The first way to fit (module docstring) whose text needs at most `max_segments`.

    Raises `SmsTooLong` (with the fewest segments any way needed) when none fits, and
    `InvalidInput` when a template renders an empty text."""
    last = getattr(_last_fit, "entry", None)
    if last is not None and last[0] is composition.context \
            and last[1] == composition.locale and last[2] is layout:
        return last[3]
    fit = _fit(composition, layout)
    _last_fit.entry = (composition.context, composition.locale, layout, fit)
    return fit


def _fit(composition: Composition, layout: Layout) -> SmsFit:
    settings = sms_settings(layout)
    plain = {**composition.context, "locale": composition.locale}
    contexts: list[tuple[dict[str, Any], tuple[str, ...]]] = [(plain, ())]
    transliterated = plain
    for field in settings.transliterate:
        transliterated, _ = _replaced(transliterated, field, transliterate_to_gsm)
    if transliterated != plain:
        contexts.append((transliterated, (TRANSLITERATED,)))
    fewest: int | None = None
    for template in settings.templates:
        for context, adapted in contexts:
            text = _render(layout, template, context)
            if not text:
                raise InvalidInput.field(f"layout {layout.ref} {template}",
                                         "renders an empty text")
            message = plan_sms(text)
            if message.segments <= settings.max_segments:
                return SmsFit(message, template, adapted)
            fewest = message.segments if fewest is None else min(fewest, message.segments)
    if settings.shortenable:
        for template in settings.templates:
            # Transliterated first: a GSM-7 text keeps more of the field than a UCS-2 one.
            for context, adapted in reversed(contexts):
                cut = _shortened(layout, template, context, settings.shortenable,
                                 settings.max_segments)
                if cut is not None:
                    return SmsFit(plan_sms(cut), template, (*adapted, SHORTENED))
    assert fewest is not None
    raise SmsTooLong(fewest, settings.max_segments)


def _too_long(layout: Layout, exc: SmsTooLong) -> str:
    settings = sms_settings(layout)
    return (f"the data makes the SMS of layout {layout.ref} at least {exc.segments} segments "
            f"long in every variant ({', '.join(settings.templates)}); the layout allows "
            f"{exc.max_segments}")


def check_sms(composition: Composition, layout: Layout) -> Unfit | None:
    """Why this document's SMS cannot be sent (for the channel plan), or None."""
    try:
        fit_sms(composition, layout)
    except SmsTooLong as exc:
        reason = _too_long(layout, exc)
        return Unfit(reason, (FieldViolation("sms.max_segments", reason),))
    return None


def render_sms(composition: Composition, layout: Layout) -> Output:
    recipient = composition.recipient
    if not recipient.mobile:
        raise InvalidInput.field("$.customer.mobile", "an SMS needs the recipient's mobile number")
    try:
        fit = fit_sms(composition, layout)
    except SmsTooLong as exc:
        raise InvalidInput.field("sms.max_segments", _too_long(layout, exc)) from exc
    message = fit.message
    content = message.text.encode("utf-8")
    return Output(
        channel=Channel.SMS,
        media_type=MEDIA_TYPE,
        content=content,
        sha256=hashlib.sha256(content).hexdigest(),
        facts={
            "encoding": message.encoding,
            "segments": message.segments,
            "units": message.units,
            "parts": json.dumps(list(message.parts), ensure_ascii=False),
            "data_coding": message.data_coding,
            "template": fit.template,
            "adapted": ",".join(fit.adapted),
        },
    )
