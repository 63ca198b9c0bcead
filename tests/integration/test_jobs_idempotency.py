"""Resubmitting a bulk job with an idempotency key (found by the new-user test: the same
records sent twice made 2 documents per customer and twice the print pieces, so a core
system that lost the SubmitBatch response had no safe retry).

Over real gRPC against a KanalServer whose index and job tables are on PostgreSQL (a fresh
database): the same key and content -> the first job, documents made once; the same key
with other records or another header -> ALREADY_EXISTS naming the key; keys are per tenant.
And the race the unique constraint settles: two submissions sealing with one key.
"""

from __future__ import annotations

import json
import uuid
from datetime import UTC, datetime

import grpc
import pytest
from sqlalchemy import func, select

from archive.tables import documents as index_documents
from kanal.v1 import common_pb2, jobs_pb2, jobs_pb2_grpc
from server.app import KanalServer
from server.compose.layouts import DEFAULT_LAYOUTS_DIR
from server.config import Settings
from server.errors import Conflict
from server.jobs.idempotency import JobDigest, JobKeys
from server.jobs.model import JobHeader
from server.jobs.tables import job_keys, jobs
from server.printing.queue import print_pieces
from tests.client import Keys, channel
from tests.integration.delivery_fixtures import fresh_database, wait_for

pytestmark = pytest.mark.integration

KEYS = Keys(("nordkort", "producer"), ("other", "producer"))
SAMPLE = json.loads((DEFAULT_LAYOUTS_DIR / "card-invoice/1.0.0/sample.json").read_text())


@pytest.fixture(scope="module")
def database(pg_url):
    yield from fresh_database(pg_url)


@pytest.fixture(scope="module")
def kanal(tmp_path_factory: pytest.TempPathFactory, database):
    state = tmp_path_factory.mktemp("kanal-job-keys")
    layouts = tmp_path_factory.mktemp("layouts")  # only what these tests use
    for name in ("card-invoice", "_shared"):
        (layouts / name).symlink_to(DEFAULT_LAYOUTS_DIR / name)
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("KANAL_JOB_CHUNK_SIZE", "2")
        mp.setenv("KANAL_JOB_WORKERS", "1")
        with KanalServer(Settings(listen="127.0.0.1:0", state_dir=state, index_url=database,
                                  layouts_dir=layouts, api_keys=KEYS.api_keys)) as server:
            yield server


@pytest.fixture(scope="module")
def stub(kanal: KanalServer):
    with channel(kanal.address, KEYS["nordkort", "producer"]) as ch:
        yield jobs_pb2_grpc.JobsStub(ch)


@pytest.fixture(scope="module")
def other_stub(kanal: KanalServer):
    with channel(kanal.address, KEYS["other", "producer"]) as ch:
        yield jobs_pb2_grpc.JobsStub(ch)


def messages(customers: list[str], key: str, name: str = "nightly", amount: str = ""):
    yield jobs_pb2.SubmitBatchRequest(header=jobs_pb2.JobHeader(
        layout_id="card-invoice", job_name=name, channels=[common_pb2.CHANNEL_PRINT],
        idempotency_key=key))
    for n, customer in enumerate(customers):
        data = json.loads(json.dumps(SAMPLE))
        data["customer"]["customer_id"] = customer
        if amount and n == len(customers) - 1:
            data["transactions"][0]["amount"] = amount
        yield jobs_pb2.SubmitBatchRequest(
            record=jobs_pb2.JobRecord(record_key=f"r{n}", data_json=json.dumps(data)))


def finish(stub, job_id: str) -> jobs_pb2.JobProgress:
    return list(stub.WatchJob(jobs_pb2.GetJobRequest(job_id=job_id), timeout=120))[-1]


def documents_of(kanal: KanalServer, customers: list[str]) -> int:
    with kanal.index.engine.connect() as conn:
        return conn.execute(select(func.count()).select_from(index_documents).where(
            index_documents.c.customer_id.in_(customers))).scalar()


def pieces_of(kanal: KanalServer, customers: list[str]) -> int:
    with kanal.index.engine.connect() as conn:
        ids = select(index_documents.c.document_id).where(
            index_documents.c.customer_id.in_(customers))
        return conn.execute(select(func.count()).select_from(print_pieces).where(
            print_pieces.c.document_id.in_(ids))).scalar()


def layout_version(kanal: KanalServer, job_id: str) -> str:
    return kanal.jobs.get(job_id).header.layout_version


def jobs_named(kanal: KanalServer, name: str) -> int:
    with kanal.jobs.engine.connect() as conn:
        return conn.execute(select(func.count()).select_from(jobs).where(
            jobs.c.job_name == name)).scalar()


def test_the_same_key_and_records_twice_make_one_job_and_documents_once(kanal, stub):
    customers = [f"idem-{uuid.uuid4().hex[:8]}" for _ in range(3)]
    name, key = f"nightly-{uuid.uuid4().hex[:6]}", f"run-{uuid.uuid4().hex}"
    first = stub.SubmitBatch(messages(customers, key, name))
    assert (first.records, first.replayed) == (3, False)
    assert finish(stub, first.job_id).job.state == "completed"
    again = stub.SubmitBatch(messages(customers, key, name))  # the response was "lost"
    assert (again.job_id, again.records, again.replayed) == (first.job_id, 3, True)
    # and once more while nothing is running: still nothing new
    assert finish(stub, again.job_id).job.counts.done == 3
    assert jobs_named(kanal, name) == 1
    assert documents_of(kanal, customers) == 3  # one per customer
    wait_for(lambda: pieces_of(kanal, customers) == 3, "one print piece per customer")


def test_the_same_key_with_other_content_is_already_exists(kanal, stub):
    customers = [f"idem-{uuid.uuid4().hex[:8]}" for _ in range(2)]
    name, key = f"nightly-{uuid.uuid4().hex[:6]}", f"run-{uuid.uuid4().hex}"
    first = stub.SubmitBatch(messages(customers, key, name))
    for other in (messages(customers, key, name, amount="999.00"),  # a record differs
                  messages(customers, key, name + "-b"),            # the header differs
                  messages(customers[:1], key, name)):              # a record is missing
        with pytest.raises(grpc.RpcError) as caught:
            stub.SubmitBatch(other)
        assert caught.value.code() == grpc.StatusCode.ALREADY_EXISTS
        assert caught.value.details() == (
            f"idempotency key {key!r} was already used for job {first.job_id} "
            f"(card-invoice@{layout_version(kanal, first.job_id)}) with a different layout, "
            f"layout version, job name, channels, print profile, priority or records; use a "
            f"new key for a new job")
    assert jobs_named(kanal, name) == 1 and jobs_named(kanal, name + "-b") == 0
    finish(stub, first.job_id)
    assert documents_of(kanal, customers) == 2


def test_keys_belong_to_one_tenant(kanal, stub, other_stub):
    customers = [f"idem-{uuid.uuid4().hex[:8]}"]
    key = f"run-{uuid.uuid4().hex}"
    mine = stub.SubmitBatch(messages(customers, key))
    theirs = other_stub.SubmitBatch(messages(customers, key))
    assert theirs.job_id != mine.job_id and not theirs.replayed
    finish(stub, mine.job_id)
    finish(other_stub, theirs.job_id)


def test_the_job_status_shows_its_idempotency_key(kanal, stub):
    """GetJob, WatchJob and CancelJob answer with the key the job was submitted with (a core
    system checking which of its runs a job is); a job submitted without one shows none."""
    key = f"run-øst-{uuid.uuid4().hex}"  # any text up to 200 characters
    keyed = stub.SubmitBatch(messages([f"idem-{uuid.uuid4().hex[:8]}"], key))
    plain = stub.SubmitBatch(messages([f"idem-{uuid.uuid4().hex[:8]}"], ""))
    get = stub.GetJob(jobs_pb2.GetJobRequest(job_id=keyed.job_id))
    assert (get.job_id, get.idempotency_key) == (keyed.job_id, key)
    watched = list(stub.WatchJob(jobs_pb2.GetJobRequest(job_id=keyed.job_id), timeout=120))
    assert watched and {u.job.idempotency_key for u in watched} == {key}
    running = stub.SubmitBatch(messages([f"idem-{uuid.uuid4().hex[:8]}" for _ in range(10)],
                                        f"{key}-cancelled"))
    cancelled = stub.CancelJob(jobs_pb2.GetJobRequest(job_id=running.job_id))
    assert cancelled.idempotency_key == f"{key}-cancelled"
    finish(stub, running.job_id)
    finish(stub, plain.job_id)
    unkeyed = stub.GetJob(jobs_pb2.GetJobRequest(job_id=plain.job_id))
    assert (unkeyed.job_id, unkeyed.idempotency_key) == (plain.job_id, "")


def test_a_key_over_200_characters_is_invalid_argument(stub):
    with pytest.raises(grpc.RpcError) as caught:
        stub.SubmitBatch(messages(["c"], "k" * 201))
    assert caught.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert "idempotency_key" in caught.value.details()


def test_two_submissions_racing_with_one_key_seal_one_job(kanal):
    """Both stored their records before either sealed: the key's unique constraint lets the
    first seal win; the second is told which job holds the key and nothing of it runs."""
    store, keys = kanal.jobs, JobKeys(kanal.jobs)
    tenant, key = "racing", f"run-{uuid.uuid4().hex}"
    now = datetime.now(UTC).replace(microsecond=0)
    header = JobHeader(tenant=tenant, layout_id="card-invoice", layout_version="1.0.0")
    digests = []
    for job_id in ("01JRACE0000000000000000001", "01JRACE0000000000000000002"):
        digest = JobDigest("card-invoice", "", "", [], "", 0)
        store.create_job(job_id, header, now)
        store.add_records(job_id, digest.records([("r0", json.dumps(SAMPLE))]))
        digests.append(digest.hexdigest())
    assert digests[0] == digests[1]
    assert keys.seal("01JRACE0000000000000000001", 1, tenant, key, digests[0], now) is None
    winner = keys.seal("01JRACE0000000000000000002", 1, tenant, key, digests[1], now)
    assert winner is not None and winner.job_id == "01JRACE0000000000000000001"
    assert keys.replay(winner, key, digests[1]) == winner
    with pytest.raises(Conflict, match="was already used for job 01JRACE0000000000000000001"):
        keys.replay(winner, key, "0" * 64)
    assert store.get("01JRACE0000000000000000002").state == "receiving"  # not sealed
    assert store.pending_chunks("01JRACE0000000000000000002") == []
    with store.engine.connect() as conn:
        assert conn.execute(select(job_keys.c.job_id).where(
            job_keys.c.tenant == tenant)).scalars().all() == ["01JRACE0000000000000000001"]
    store.discard("01JRACE0000000000000000002")
    store.cancel("01JRACE0000000000000000001", tenant)  # not for the runner to compose
