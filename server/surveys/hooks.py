"""Where the survey stage tells the rest of Kanal what happened: the hook the lead wires.

`publish_follow_up_required` is called once per detractor's follow-up, after its
transaction committed (the webhook row is already in the outbox). `server.events` (issue
16 item 1, built on another branch) did not exist on main when this was written: wire it
here, e.g. ``publish_event(tenant, customer_id, "follow_up_required", occurred_at, data,
idempotency_key=f"follow-up:{follow_up_id}")``, so a journey (a letter, a call-back task)
can start from it. Until then it does nothing.

The other direction, for the same wiring: the events stage calls
`SurveyService.conversion_from_event(tenant, customer_id, event_type, occurred_at)` for
every accepted event; it counts the event as a conversion of every experiment that lists
its type (`[surveys.experiments.<id>] conversion_events`). A journey step with variants
asks `SurveyService.variant(tenant, customer_id, experiment_id)`, or sends its survey with
`SendSurvey(experiment_id=...)`, which assigns, records the exposure and attributes the
answer.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any


def publish_follow_up_required(event: Mapping[str, Any]) -> None:
    """`event`: the follow-up webhook's JSON (server.surveys.store.follow_up_body):
    type, follow_up_id, tenant, customer_id, invitation_id, survey_id, touchpoint,
    touchpoint_ref, document_id, score, comment, at, deadline (ISO 8601, UTC)."""
    return None
