"""SMS channel: Composition + the layout's `sms.txt` -> the text as sent (an `Output`).

    sms.txt (Jinja2, plain text, over the composition's context)
    -> normalise_for_gsm (typography that would force UCS-2)
    -> plan_sms (encoding, units, segments, parts)  -- server/channels/sms.py, pure
    -> the layout's `[sms] max_segments`: refused, or the one `shortenable` field cut

Manifest::

    [sms]
    template = "sms.txt"
    max_segments = 1
    shortenable = "issuer.name"   # optional: a dotted context path the template prints once

A shortenable field is shortened by rendering the template with a marker in its place,
splitting the text at the marker, and letting `shorten_to_fit` cut only that field. Data
that still doesn't fit is refused with `InvalidInput` naming the manifest field
(`sms.max_segments`) and the segments needed. The archived bytes are the UTF-8 text; the
parts, encoding and SMPP data_coding are facts for the delivery step.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from typing import Any

from server.channels.sms import SmsTooLong, check_segments, normalise_for_gsm, plan_sms
from server.channels.sms import shorten_to_fit as _shorten
from server.compose.layouts import Layout
from server.compose.model import Channel, Composition, Output
from server.errors import InvalidInput

MEDIA_TYPE = "text/plain; charset=utf-8"
_MARKER = "\x00SHORTENABLE\x00"


def _with_marker(context: Mapping[str, Any], dotted: str) -> tuple[dict[str, Any], str]:
    """A copy of `context` whose `dotted` value is the marker, and the original value."""
    head, *rest = dotted.split(".")
    copy = dict(context)
    if not rest:
        return {**copy, head: _MARKER}, str(context[head])
    inner, value = _with_marker(context[head], ".".join(rest))
    copy[head] = inner
    return copy, value


def _render(layout: Layout, template: str, context: Mapping[str, Any]) -> str:
    return layout.templates.get_template(template).render(**context).strip()


def render_sms(composition: Composition, layout: Layout) -> Output:
    section = layout.section("sms")
    template = section.get("template", "sms.txt")
    max_segments = int(section.get("max_segments", 1))
    recipient = composition.recipient
    if not recipient.mobile:
        raise InvalidInput.field("$.customer.mobile", "an SMS needs the recipient's mobile number")
    context = {**composition.context, "locale": composition.locale}
    text = normalise_for_gsm(_render(layout, template, context))
    if not text:
        raise InvalidInput.field(f"layout {layout.ref} sms.txt", "renders an empty text")
    message = plan_sms(text)
    try:
        check_segments(message, max_segments)
    except SmsTooLong as exc:
        field = section.get("shortenable")
        if not field:
            raise _too_long(layout, exc) from exc
        marked, value = _with_marker(context, field)
        before, _, after = normalise_for_gsm(_render(layout, template, marked)).partition(_MARKER)
        try:
            text = _shorten(before, normalise_for_gsm(value), after, max_segments)
        except SmsTooLong as exc2:
            raise _too_long(layout, exc2) from exc2
        message = plan_sms(text)
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
        },
    )


def _too_long(layout: Layout, exc: SmsTooLong) -> InvalidInput:
    return InvalidInput.field(
        "sms.max_segments",
        f"the data makes the SMS of layout {layout.ref} {exc.segments} segments long; "
        f"the layout allows {exc.max_segments}",
    )
