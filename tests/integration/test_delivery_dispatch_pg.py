"""Several dispatchers on one PostgreSQL outbox (as several `kanal serve` processes would
run them): every row is sent by exactly one of them (FOR UPDATE SKIP LOCKED plus the
compare-and-set on state and attempts)."""

from __future__ import annotations

import threading
import time
import uuid
from collections import Counter

import pytest

from server.delivery.model import Accepted
from server.delivery.store import DeliveryStore
from tests.unit.test_delivery_dispatcher import Clock, Double, add, dispatcher

pytestmark = pytest.mark.integration


def test_two_dispatchers_never_send_one_row_twice(pg_index):
    store = DeliveryStore(pg_index.engine)
    store.create_schema()
    tenant = f"t{uuid.uuid4().hex[:8]}"
    ids = set(add(store, 60, tenant=tenant, provider=f"double-{tenant}"))

    class Slow(Double):
        def send(self, message):
            time.sleep(0.005)  # long enough for the two to overlap
            return super().send(message)

    providers, dispatchers = [], []
    for _ in range(2):
        provider = Slow([Accepted("250 ok")], concurrency=4, rate_per_second=1000)
        provider.name = f"double-{tenant}"
        d = dispatcher(store, provider, Clock())
        d.slots = {provider.name: d.slots.pop("double")}
        providers.append(provider)
        dispatchers.append(d)
    done = threading.Event()

    def run(d):
        while not done.is_set():
            d.tick()
            time.sleep(0.01)

    threads = [threading.Thread(target=run, args=(d,)) for d in dispatchers]
    for t in threads:
        t.start()
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and sum(len(p.calls) for p in providers) < len(ids):
        time.sleep(0.05)
    time.sleep(0.2)  # let any double send show itself
    done.set()
    for t in threads:
        t.join()
    for d in dispatchers:
        d.stop()
    sent = Counter(m.delivery_id for p in providers for m in p.calls)
    assert set(sent) == ids and set(sent.values()) == {1}
    assert all(len(p.calls) > 0 for p in providers)  # both took a share
    assert {store.row(i)["state"] for i in ids} == {"sent"}
