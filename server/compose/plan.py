"""The channel plan: which channels a document is rendered for, decided once.

For now the plan is the channels the request asks for, or the layout's default channels.
Rules from preferences, consents and contact data extend this (see issue: channel plan).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from server.compose.layouts import Layout
from server.compose.model import Channel, ChannelPlan, Recipient
from server.errors import InvalidInput


def plan_channels(
    layout: Layout,
    recipient: Recipient,
    requested: Sequence[Channel],
    facts: Mapping[str, Any],
) -> ChannelPlan:
    if requested:
        unsupported = [c.value for c in requested if c not in layout.channels]
        if unsupported:
            raise InvalidInput.field(
                "channels",
                f"layout {layout.ref} cannot render {', '.join(unsupported)} "
                f"(it has {', '.join(c.value for c in layout.channels)})",
            )
        return ChannelPlan(channels=tuple(dict.fromkeys(requested)), reason="requested")
    return ChannelPlan(channels=layout.channels, reason="layout default")
