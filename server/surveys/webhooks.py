"""Follow-ups -> the bank: each detractor's `follow_up_required` as a signed HTTPS POST to
the tenant's webhook URL, the delivery stage's machinery (server.delivery.webhooks): the
same URL and secret (`[delivery.tenants.<t>] webhook_url / webhook_secret`), the same
headers (`X-Kanal-Timestamp`, `X-Kanal-Signature: v1=<hex HMAC-SHA256(secret,
"<timestamp>.<body>")>`, so a receiver verifies both kinds with one function), the same
backoff. A third header, `X-Kanal-Event: follow_up_required`, tells it from delivery events.

Body (JSON, UTF-8)::

    {"type": "follow_up_required", "follow_up_id": "01K...", "tenant": "nordkort",
     "customer_id": "...", "invitation_id": "01K...", "survey_id": "nps-service",
     "touchpoint": "parcel_delivered", "touchpoint_ref": "...", "document_id": "01K...",
     "score": 3, "comment": "...", "at": "2026-11-30T05:01:02+00:00",
     "deadline": "2026-12-02T05:01:02+00:00"}

At least once, in order per tenant (a receiver dedupes on `follow_up_id`); rows come from
`survey_webhooks`, written in the answer's transaction, so a crash never loses one.
"""

from __future__ import annotations

import urllib.error
import urllib.request
from collections.abc import Callable, Mapping
from datetime import datetime
from typing import Any

from server import logs
from server.delivery.policy import backoff
from server.delivery.webhooks import (
    SIGNATURE_HEADER,
    TIMESTAMP_HEADER,
    WEBHOOK_BACKOFF,
    signature,
)
from server.polling import Poller
from server.surveys.store import SurveyStore

log = logs.get_logger(__name__)

EVENT_HEADER = "X-Kanal-Event"


class FollowUpWebhooks:
    def __init__(self, store: SurveyStore, tenants: Mapping[str, Mapping[str, Any]], *,
                 clock: Callable[[], datetime], attempts: int = 8, timeout: float = 10,
                 poll_seconds: float = 1.0):
        self.store = store
        self.tenants = tenants
        self.clock = clock
        self.attempts = attempts
        self.timeout = timeout
        self._poller = Poller("survey-webhooks", self.post_due, poll_seconds,
                              "follow-up webhook round failed")

    def start(self) -> None:
        self._poller.start()

    def notify(self) -> None:
        self._poller.notify()

    def stop(self) -> None:
        self._poller.stop()

    def post_due(self) -> int:
        posted = 0
        failed: set[str] = set()  # keep a tenant's follow-ups in order
        for row in self.store.webhooks_due(self.clock()):
            if row["tenant"] in failed or self._poller.stopping:
                continue
            error = self._post(self.tenants.get(row["tenant"], {}), row["body"].encode())
            if error is None:
                self.store.webhook_done(row["webhook_id"], ok=True, error="", retry_at=None)
                posted += 1
                continue
            failed.add(row["tenant"])
            retry_at = None
            if row["attempts"] + 1 < self.attempts:
                retry_at = self.clock() + backoff(row["attempts"] + 1, WEBHOOK_BACKOFF)
            else:
                log.warning("follow-up webhook dropped after retries", tenant=row["tenant"],
                            follow_up_id=row["follow_up_id"], error=error)
            self.store.webhook_done(row["webhook_id"], ok=False, error=error, retry_at=retry_at)
        return posted

    def _post(self, tenant: Mapping[str, Any], body: bytes) -> str | None:
        url, secret = tenant.get("webhook_url"), tenant.get("webhook_secret", "")
        if not url:
            return "no webhook_url configured"
        timestamp = int(self.clock().timestamp())
        request = urllib.request.Request(url, data=body, method="POST", headers={
            "Content-Type": "application/json", TIMESTAMP_HEADER: str(timestamp),
            SIGNATURE_HEADER: signature(str(secret), timestamp, body),
            EVENT_HEADER: "follow_up_required"})
        try:
            with urllib.request.urlopen(request, timeout=self.timeout) as response:
                return None if 200 <= response.status < 300 else f"HTTP {response.status}"
        except urllib.error.HTTPError as exc:
            return f"HTTP {exc.code}"
        except (urllib.error.URLError, OSError) as exc:
            return f"unreachable: {exc}"
