"""Delivery: archived outputs -> the customer, as a transactional outbox with small
dispatchers per provider. The entry point is `stage.DeliveryStage`.

    outbox.py      a document's plan -> outbox rows (written in the index transaction)
    store.py       DeliveryStore: the outbox tables as one object, its methods by concept:
    transitions.py   rows written with the document; every state change (compare-and-set)
    housekeeping.py  lapsed leases reaped, queued rows expired, sealed inputs purged
    queries.py       rows, histories, queue depth, due fallbacks, sealed inputs read
    contacts.py      recent contacts and opt-outs, for the contact rules
    events.py        every change's event row and webhook row, read back
    dispatcher.py  due rows -> provider calls: leases, retries, rate, breaker, receipts
    policy.py      backoff with jitter, token bucket, circuit breaker, per-provider limits
    rules.py       contact rules at send time: consent, opt-out, caps, quiet hours
    providers/     the adapters behind one seam (base.py): smtp, print, ...
    bounces.py     VERP return paths, RFC 3464 DSNs, the SMTP listener for them
    fallback.py    failed for good -> the plan's next channel, rendered and queued
    sealed.py      the compose input, encrypted until every delivery has ended
    webhooks.py    signed HTTP notifications of every state change
    metrics.py     Prometheus metrics per provider
    cli.py         `kanal deliveries list|show|retry|cancel`
"""
