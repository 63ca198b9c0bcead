"""Several dispatchers on one PostgreSQL outbox (as several `kanal serve` processes would
run them), each with its own SMTP connections to a real Postfix: every delivery reaches
its mailbox exactly once (FOR UPDATE SKIP LOCKED plus the compare-and-set on state and
attempts), and both dispatchers take a share."""

from __future__ import annotations

import hashlib
import threading
import time
import uuid
from collections import Counter
from datetime import timedelta
from pathlib import Path

import pytest
from sqlalchemy import func, select, update

from server.delivery.dispatcher import Dispatcher
from server.delivery.providers.base import ProviderContext, build
from server.delivery.providers.smtp import SmtpProvider  # noqa: F401 (registers "smtp")
from server.delivery.rules import ContactRules
from server.delivery.store import DeliveryStore
from server.delivery.tables import deliveries, delivery_events
from tests.integration.delivery_fixtures import start_postfix, wait_for
from tests.unit.test_delivery_dispatcher import Clock, add

pytestmark = pytest.mark.integration

COUNT = 40


class Counting(DeliveryStore):
    """The real store, counting the rows this dispatcher claimed."""

    claimed = 0

    def claim(self, *args, **kwargs):
        rows = super().claim(*args, **kwargs)
        self.claimed += len(rows)
        return rows


@pytest.fixture
def postfix():
    postfix = start_postfix()
    yield postfix
    postfix.remove()


def test_two_dispatchers_send_each_row_once(pg_index, archive_store, postfix):
    store = DeliveryStore(pg_index.engine)
    store.create_schema()
    run = uuid.uuid4().hex[:8]
    content = (f"From: Fjordbank <faktura@fjordbank.no>\r\nSubject: Faktura\r\n"
               f"Message-ID: <{run}@fjordbank.no>\r\n\r\nHei\r\n").encode()
    key = f"test/{run}/email.eml"
    archive_store.put(key, content, media_type="message/rfc822", metadata={},
                      retain_until=None)
    sha256 = hashlib.sha256(content).hexdigest()
    provider_name = f"relay-{run}"
    ids = add(store, COUNT, tenant=f"t{run}", provider=provider_name, archive_key=key,
              sha256=sha256)
    users = {}
    with store.engine.begin() as conn:  # one mailbox per delivery
        for n, delivery_id in enumerate(ids):
            users[delivery_id] = f"ok-{run}-{n}"
            conn.execute(update(deliveries).where(deliveries.c.delivery_id == delivery_id)
                         .values(recipient=f"{users[delivery_id]}@example.no"))

    settings = {"type": "smtp", "host": "127.0.0.1", "port": postfix.port,
                "starttls": True, "ca_file": str(postfix.ca_file), "concurrency": 3}
    context = ProviderContext(Path("."), {}, b"verp")
    stores = [Counting(pg_index.engine) for _ in range(2)]  # as two processes would
    dispatchers = [Dispatcher(own, {provider_name: build(provider_name, settings, context)},
                              archive_store, ContactRules.from_dict({}), clock=Clock(),
                              lease=timedelta(seconds=60)) for own in stores]
    done = threading.Event()

    def run_loop(d: Dispatcher) -> None:
        while not done.is_set():
            d.tick()
            time.sleep(0.005)

    threads = [threading.Thread(target=run_loop, args=(d,)) for d in dispatchers]
    for t in threads:
        t.start()
    try:
        wait_for(lambda: all(store.row(i)["state"] == "sent" for i in ids),
                 "every row sent", 120)
    finally:
        done.set()
        for t in threads:
            t.join()
        for d in dispatchers:
            d.stop()
    wait_for(lambda: all(postfix.mailbox(u) for u in users.values()), "every mailbox", 60)
    assert all(len(postfix.mailbox(u)) == 1 for u in users.values())
    owners = Counter(store.get(f"t{run}", i).attempt_log[0].number for i in ids)
    assert owners == {1: COUNT}  # one attempt each
    with store.engine.connect() as conn:
        sending = conn.execute(select(func.count()).select_from(delivery_events).where(
            delivery_events.c.delivery_id.in_(ids), delivery_events.c.state == "sending"))
        assert sending.scalar() == COUNT
    assert sum(own.claimed for own in stores) == COUNT
    assert all(own.claimed > 0 for own in stores)  # both took a share


def test_a_parts_receipt_racing_the_send_that_records_its_id_is_applied(pg_index):
    """An SMSC answers a part's receipt while the dispatcher's transaction that records the
    part ids is still open: the receipts thread's insert of the same id waits on the
    unique index, then goes on (ON CONFLICT DO NOTHING) instead of failing with a
    UniqueViolation, which left the receipt unapplied."""
    store = DeliveryStore(pg_index.engine)
    store.create_schema()
    [delivery_id] = add(store, provider=f"smsc-{uuid.uuid4().hex[:8]}", channel="sms")
    row = store.row(delivery_id)
    sender = pg_index.engine.connect()
    transaction = sender.begin()
    store._record_provider_ids(sender, row, ["P1", "P2"])  # the send, not yet committed
    delivered: list[int] = []
    errors: list[BaseException] = []

    def receipt() -> None:
        try:
            delivered.append(store.part_receipt(row, "P1", "delivered"))
        except BaseException as exc:  # noqa: BLE001 (reported by the assertion below)
            errors.append(exc)

    thread = threading.Thread(target=receipt)
    thread.start()
    time.sleep(0.5)  # the receipt now waits on the sender's uncommitted row
    transaction.commit()
    sender.close()
    thread.join(10)
    assert not errors and delivered == [1]
