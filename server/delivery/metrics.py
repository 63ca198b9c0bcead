"""Delivery metrics per provider, on prometheus_client's default registry (so any
`/metrics` endpoint of the process shows them):

    kanal_delivery_attempts_total{provider, outcome}   accepted | retry | failed | held | suppressed
    kanal_delivery_sent_total{provider}                 accepted by the provider
    kanal_delivery_failed_total{provider, state}        bounced | failed | expired, however it
                                                        ended: the provider's answer, a receipt,
                                                        an expiry, a dead letter, an operator's
                                                        cancel, or no provider configured for
                                                        the channel (provider "none", counted
                                                        where the row is written: a job
                                                        worker's count is replayed in the server)
    kanal_delivery_delivered_total{provider}            receipts saying delivered
    kanal_delivery_latency_seconds{provider}            one provider call
    kanal_delivery_queue_depth{provider}                queued + sending rows (all processes)
    kanal_delivery_breaker_state{provider}              0 closed, 1 half-open, 2 open
"""

from __future__ import annotations

from prometheus_client import Counter, Gauge, Histogram

from server import metrics as _metrics

ATTEMPTS = Counter("kanal_delivery_attempts", "Delivery attempts by outcome",
                   ["provider", "outcome"])
SENT = Counter("kanal_delivery_sent", "Deliveries a provider accepted", ["provider"])
FAILED = Counter("kanal_delivery_failed", "Deliveries failed for good", ["provider", "state"])
DELIVERED = Counter("kanal_delivery_delivered", "Receipts saying delivered", ["provider"])
LATENCY = Histogram("kanal_delivery_latency_seconds", "One provider call", ["provider"],
                    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30))
QUEUE_DEPTH = Gauge("kanal_delivery_queue_depth", "Queued and sending deliveries",
                    ["provider"])
BREAKER = Gauge("kanal_delivery_breaker_state", "0 closed, 1 half-open, 2 open",
                ["provider"])

_metrics.register("delivery_failed", FAILED, "inc")


def failed(provider: str, state: str) -> None:
    """A delivery ended `state` (bounced, failed, expired); provider "" (none configured for
    its channel) is counted as "none"."""
    _metrics.record("delivery_failed", (provider or "none", state))
