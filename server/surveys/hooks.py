"""Where the survey stage tells the rest of Kanal what happened: events for the journeys.

After an answer's transaction committed, the survey stage raises, through `EventHook` (set
by the server to `server.events.publish.publish_event` on its `EventService`):

- `survey_response` for every answer (data: document_id, survey_id, touchpoint, score,
  comment): the journeys' `responded` branch and the customer timeline read it;
- `follow_up_required` for a detractor (0-6; data: follow_up_id, survey_id, touchpoint,
  document_id, score, comment, deadline), so a journey (a letter, a call-back task) can
  start from it. The bank also gets it by the signed webhook (server.surveys.webhooks).

Each carries an idempotency key of its own (`survey-response:<invitation>`,
`follow-up:<follow_up_id>`): raised twice, it is one event. A failing hook never undoes the
answer; the webhook outbox still carries the follow-up.

The other direction: the events stage calls `SurveyService.conversion_from_event(tenant,
customer_id, event_type, occurred_at)` for every accepted event, counting it as a
conversion of every experiment that lists its type (`[surveys.experiments.<id>]
conversion_events`).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from datetime import datetime
from typing import Any

# (tenant, customer_id, event_type, data, occurred_at, idempotency_key) -> None
EventHook = Callable[[str, str, str, Mapping[str, Any], datetime, str], None]


def no_events(tenant: str, customer_id: str, event_type: str, data: Mapping[str, Any],
              occurred_at: datetime, idempotency_key: str) -> None:
    """The hook of a survey stage running without the events stage (tests, tools)."""
