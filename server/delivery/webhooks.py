"""Signed webhooks: every delivery event of a tenant -> an HTTPS POST to the tenant's URL.

Body (JSON, UTF-8)::

    {"event_id": 42, "delivery_id": "01J...", "document_id": "01J...", "channel": "email",
     "state": "bounced", "at": "2026-11-30T01:31:44.120000+00:00",
     "reason": "DSN failed: 5.1.1 X-Postfix; unknown user: ..."}

Headers: `X-Kanal-Timestamp: <unix seconds>` and
`X-Kanal-Signature: v1=<hex HMAC-SHA256(secret, "<timestamp>.<body>")>`. The receiver
recomputes the HMAC over the timestamp and the raw body, compares in constant time, and
refuses a timestamp older than a few minutes (replay). Events are posted in order per
tenant at least once (a receiver dedupes on `event_id`); a non-2xx answer or no answer is
retried with exponential backoff and jitter, up to `webhook_attempts` (then dropped and
logged).

    [delivery.tenants.nordkort]
    webhook_url = "https://core.nordkort.no/kanal/deliveries"
    webhook_secret = "..."
"""

from __future__ import annotations

import hashlib
import hmac
import json
import urllib.error
import urllib.request
from collections.abc import Callable, Mapping
from datetime import datetime
from typing import Any

from server import logs
from server.delivery.model import DeliveryEvent
from server.delivery.policy import Limits, backoff
from server.delivery.store import DeliveryStore
from server.polling import Poller

log = logs.get_logger(__name__)

TIMESTAMP_HEADER = "X-Kanal-Timestamp"
SIGNATURE_HEADER = "X-Kanal-Signature"
WEBHOOK_BACKOFF = Limits(backoff_seconds=5, backoff_max_seconds=600)


def event_body(event: DeliveryEvent) -> bytes:
    return json.dumps({
        "event_id": event.event_id, "delivery_id": event.delivery_id,
        "document_id": event.document_id, "channel": event.channel,
        "state": event.state.value, "at": event.at.isoformat(), "reason": event.reason,
    }, sort_keys=True, ensure_ascii=False).encode()


def signature(secret: str, timestamp: int, body: bytes) -> str:
    mac = hmac.new(secret.encode(), f"{timestamp}.".encode() + body, hashlib.sha256)
    return f"v1={mac.hexdigest()}"


def verify(secret: str, timestamp: str, body: bytes, presented: str, *, now: float,
           tolerance: float = 300) -> bool:
    """What a receiver does (and the tests): signature and freshness."""
    try:
        ts = int(timestamp)
    except ValueError:
        return False
    fresh = abs(now - ts) <= tolerance
    return fresh and hmac.compare_digest(signature(secret, ts, body), presented)


class WebhookSender:
    def __init__(self, store: DeliveryStore, tenants: Mapping[str, Mapping[str, Any]], *,
                 clock: Callable[[], datetime], attempts: int = 8,
                 limits: Limits = WEBHOOK_BACKOFF,
                 timeout: float = 10, poll_seconds: float = 1.0):
        self.store = store
        self.tenants = tenants
        self.clock = clock
        self.attempts = attempts
        self.limits = limits
        self.timeout = timeout
        self._poller = Poller("delivery-webhooks", self.post_due, poll_seconds,
                              "webhook round failed")

    def start(self) -> None:
        self._poller.start()

    def notify(self) -> None:
        self._poller.notify()

    def stop(self) -> None:
        self._poller.stop()

    def post_due(self) -> int:
        posted = 0
        failed_tenants: set[str] = set()  # keep a tenant's events in order
        for event_id, event, attempts in self.store.webhooks_due(self.clock()):
            if event.tenant in failed_tenants or self._poller.stopping:
                continue
            tenant = self.tenants.get(event.tenant, {})
            error = self._post(tenant, event)
            if error is None:
                self.store.webhook_done(event_id, ok=True, error="", retry_at=None)
                posted += 1
                continue
            failed_tenants.add(event.tenant)
            retry_at = None
            if attempts + 1 < self.attempts:
                retry_at = self.clock() + backoff(attempts + 1, self.limits)
            else:
                log.warning("webhook dropped after retries", tenant=event.tenant,
                            event_id=event_id, error=error)
            self.store.webhook_done(event_id, ok=False, error=error, retry_at=retry_at)
        return posted

    def _post(self, tenant: Mapping[str, Any], event: DeliveryEvent) -> str | None:
        url, secret = tenant.get("webhook_url"), tenant.get("webhook_secret", "")
        if not url:
            return "no webhook_url configured"
        body = event_body(event)
        timestamp = int(self.clock().timestamp())
        request = urllib.request.Request(url, data=body, method="POST", headers={
            "Content-Type": "application/json", TIMESTAMP_HEADER: str(timestamp),
            SIGNATURE_HEADER: signature(str(secret), timestamp, body)})
        try:
            with urllib.request.urlopen(request, timeout=self.timeout) as response:
                if 200 <= response.status < 300:
                    return None
                return f"HTTP {response.status}"
        except urllib.error.HTTPError as exc:
            return f"HTTP {exc.code}"
        except (urllib.error.URLError, OSError) as exc:
            return f"unreachable: {exc}"
