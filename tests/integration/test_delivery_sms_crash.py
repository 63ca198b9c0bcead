"""kill -9 of `kanal serve` in the middle of a bulk job's SMS deliveries: after a restart
every SMS is delivered and none was submitted twice to the SMSC (counted in the SMSC's own
log, across the crash).

To be sure the crash hits the hard case, the SMSC takes some submit_sm without ever
answering them (the ESME never learns those message ids) and holds every receipt until
the server is back: those messages are in doubt when the server dies, and only their
receipts -- matched by the `user_message_reference` Kanal gave them -- keep them from
being sent again.
"""

from __future__ import annotations

import json
import os
import signal

import pytest
from sqlalchemy import create_engine, select

from kanal.v1 import common_pb2, jobs_pb2, jobs_pb2_grpc
from server.delivery.tables import deliveries, delivery_attempts
from tests.client import channel
from tests.integration.delivery_fixtures import fresh_database, sample, wait_for
from tests.integration.test_delivery_crash import start, write_config
from tests.integration.test_jobs_scaleout import kill_embedded_s3, layouts_dir
from tests.postfix import free_port
from tests.smsc import Smsc

pytestmark = pytest.mark.integration

RECORDS = 12
STALLED = 3


def test_kill_9_mid_sms_deliveries_sends_none_twice_to_the_smsc(tmp_path, pg_url):
    smsc = Smsc(tmp_path / "smsc")
    (tmp_path / "smsc").mkdir()
    smsc.start()
    databases = fresh_database(pg_url)
    database = next(databases)
    engine = create_engine(database)
    try:
        mobiles = [f"+4748{os.getpid() % 1000:03d}{n:03d}" for n in range(RECORDS)]
        config = write_config(tmp_path / "kanal.toml", database, {
            "lease_seconds": 3, "poll_seconds": 0.2,
            "channels": {"sms": "smsc"},
            "providers": {"smsc": smsc.provider_settings(in_doubt_seconds=8)},
            "rules": {"quiet_hours": {"sms": {}}},
        })
        smsc.receipts(hold=True)
        smsc.stall(STALLED)
        state, port, layouts = tmp_path / "state", free_port(), layouts_dir(tmp_path)
        server = start(state, port, config, layouts, tmp_path / "serve.log")
        try:
            key = json.loads((state / "dev-api-keys.json").read_text())["producer"]
            with channel(f"127.0.0.1:{port}", key) as ch:
                def requests():
                    yield jobs_pb2.SubmitBatchRequest(header=jobs_pb2.JobHeader(
                        layout_id="card-invoice", channels=[common_pb2.CHANNEL_SMS]))
                    for n, mobile in enumerate(mobiles):
                        yield jobs_pb2.SubmitBatchRequest(record=jobs_pb2.JobRecord(
                            record_key=f"r{n}", data_json=sample(
                                "card-invoice", "kari@example.no", mobile=mobile)))
                jobs_pb2_grpc.JobsStub(ch).SubmitBatch(requests())
            # Killed once the unanswered ones reached the SMSC and others are out too.
            wait_for(lambda: len(smsc.received()) >= STALLED + 2, "SMS at the SMSC", 180)
        finally:
            os.killpg(server.pid, signal.SIGKILL)  # the server and its worker processes
            server.wait()
            kill_embedded_s3(state)
        server = start(state, port, config, layouts, tmp_path / "serve.log")
        try:
            smsc.receipts(hold=False)  # the receipts held during the crash come now

            def all_delivered() -> bool:
                with engine.connect() as conn:
                    states = conn.execute(select(deliveries.c.state)).scalars().all()
                return len(states) == RECORDS and set(states) == {"delivered"}

            def states():
                with engine.connect() as conn:
                    return conn.execute(select(deliveries.c.state, deliveries.c.reason)).all()
            wait_for(all_delivered, "every SMS delivered after the restart", 120, explain=states)
        finally:
            server.send_signal(signal.SIGTERM)
            server.wait(timeout=60)

        received = smsc.received()
        for mobile in mobiles:  # each submitted exactly once, across the crash
            assert [r["destination_addr"] for r in received].count(mobile[1:]) == 1, mobile
        with engine.connect() as conn:
            rows = conn.execute(select(deliveries.c.delivery_id, deliveries.c.recipient,
                                       deliveries.c.provider_message_id)).all()
            accepted = conn.execute(select(delivery_attempts.c.delivery_id).where(
                delivery_attempts.c.outcome == "accepted")).scalars().all()
        by_number = {r["destination_addr"]: r["message_id"] for r in received}
        for _, recipient, provider_message_id in rows:
            assert provider_message_id == by_number[recipient[1:]]  # found by its receipt
        # The stalled ones never had an accepted attempt: their receipts decided them.
        assert len(rows) - len(set(accepted)) >= STALLED
    finally:
        engine.dispose()
        smsc.remove()
        next(databases, None)
