"""The archive step (server.archiving) commits a chunk as one: every object put, then ONE
index transaction holding every document's rows and print piece. A document whose object
is taken by other bytes fails alone; an unreachable S3 fails the whole call with nothing
indexed; a document another run indexed first is learnt one by one. A real SQLite index
and print queue; the S3 store is a stand-in (the integration tests use SeaweedFS)."""

from __future__ import annotations

import dataclasses
import hashlib
import threading
from datetime import UTC, datetime
from pathlib import Path

import pytest
from sqlalchemy import event, func, select

from archive.errors import ArchiveUnavailable, DuplicateDocument, ObjectConflict
from archive.index import DocumentIndex
from archive.retention import RetentionPolicy
from archive.tables import documents
from server.archiving import ArchiveStep, Rendered, output_key
from server.compose.composer import ComposeRequest, compose
from server.compose.model import Channel, Output
from server.delivery.stage import DeliverySettings, DeliveryStage
from server.delivery.tables import deliveries
from server.printing.queue import PrintQueue, PrintSettings, UnprintablePiece, print_pieces
from tests.layouts import shipped

LAYOUT = shipped().get("card-invoice")
NOW = datetime(2026, 11, 30, 5, 0, tzinfo=UTC)


class Store:
    """put() as ArchiveStore's (it keeps the sha256 each put is given); a key containing one
    of `conflicts` holds other bytes, any put while `down` is set finds S3 unreachable."""

    def __init__(self, conflicts: tuple[str, ...] = (), *, meet: bool = False):
        self.conflicts = conflicts
        self.down = False
        self.keys: list[str] = []
        self.sha256s: dict[str, str | None] = {}  # the digest each put was given
        self.threads: set[str] = set()
        self._lock = threading.Lock()
        # `meet`: the first two puts wait for each other (broken after 10 s when puts run
        # one at a time), so "side by side" does not depend on how fast a put returns
        self._meet = threading.Barrier(2, timeout=10) if meet else None
        self._met = 0

    def put(self, key, content, *, media_type, metadata, retain_until, sha256=None):
        with self._lock:
            self.threads.add(threading.current_thread().name)
            self.sha256s[key] = sha256
            meets = self._meet is not None and self._met < 2
            self._met += 1
        if meets:
            self._meet.wait()
        if self.down:
            raise ArchiveUnavailable("connection refused")
        if any(c in key for c in self.conflicts):
            raise ObjectConflict(f"{key} is archived with different content")
        with self._lock:
            self.keys.append(key)


@pytest.fixture
def index(tmp_path: Path) -> DocumentIndex:
    index = DocumentIndex(f"sqlite:///{tmp_path / 'index.db'}")
    index.create_schema()
    PrintQueue(index, PrintSettings.from_dict({})).create_schema()
    return index


def rendered(n: int) -> Rendered:
    composition = compose(ComposeRequest(
        tenant="t", layout=LAYOUT, data=LAYOUT.sample_data(), document_id=f"01JDOC{n:020d}",
        now=NOW, channels=(Channel.PRINT, Channel.SMS)))
    outputs = tuple(
        Output(channel, media, body, hashlib.sha256(body).hexdigest(),
               {"pages": 2} if channel == Channel.PRINT else {})
        for channel, media, body in ((Channel.PRINT, "application/pdf", b"%PDF-1.7 " + bytes(n)),
                                     (Channel.SMS, "text/plain; charset=utf-8", b"sms")))
    return Rendered(composition, LAYOUT, outputs)


def count(index: DocumentIndex, table) -> int:
    with index.engine.connect() as conn:
        return conn.execute(select(func.count()).select_from(table)).scalar()


def transactions(index: DocumentIndex) -> list[int]:
    """Counts the index's commits from now on."""
    commits: list[int] = []
    event.listen(index.engine, "commit", lambda conn: commits.append(1))
    return commits


def step(store: Store, index: DocumentIndex) -> ArchiveStep:
    return ArchiveStep(store, index, RetentionPolicy.default(),  # type: ignore[arg-type]
                       print_queue=PrintQueue(index, PrintSettings.from_dict({})))


def test_a_chunk_is_indexed_with_its_print_pieces_in_one_transaction(index):
    """Without a delivery stage, a printed document's piece commits with its index row."""
    store = Store(meet=True)
    commits = transactions(index)
    outcomes = step(store, index).commit([rendered(n) for n in range(5)])
    assert all(isinstance(o, tuple) and len(o) == 2 for o in outcomes)
    assert len(store.keys) == 10 and len(store.threads) > 1  # puts ran side by side
    assert count(index, documents) == 5 and count(index, print_pieces) == 5
    assert len(commits) == 1


def test_every_object_is_put_with_its_renderers_sha256(index):
    """The renderer hashed the bytes already: the store is given that digest (S3 checks it),
    not left to hash them again, and the index records the same one."""
    store = Store()
    docs = [rendered(n) for n in range(3)]
    outcomes = step(store, index).commit(docs)
    given = {output_key(d.composition, o): o.sha256 for d in docs for o in d.outputs}
    assert store.sha256s == given and len(given) == 6
    assert {r.key: r.sha256 for records in outcomes for r in records} == given


def test_the_sha256_given_is_the_renderers_own_not_one_computed_on_the_way(index):
    """A digest the archive step does not compute itself: an Output whose sha256 is not its
    bytes' (so a store hashing for itself would differ) still reaches the store as is."""
    store = Store()
    doc = rendered(1)
    claimed = "ab" * 32
    doc = dataclasses.replace(doc, outputs=tuple(
        dataclasses.replace(o, sha256=claimed) if o.channel == Channel.SMS else o
        for o in doc.outputs))
    step(store, index).commit([doc])
    sms = next(o for o in doc.outputs if o.channel == Channel.SMS)
    assert store.sha256s[output_key(doc.composition, sms)] == claimed


def test_a_document_whose_object_differs_fails_alone(index):
    store = Store(conflicts=("01JDOC00000000000000000002",))
    outcomes = step(store, index).commit([rendered(n) for n in range(4)])
    assert isinstance(outcomes[2], ObjectConflict)
    assert [isinstance(o, tuple) for o in outcomes] == [True, True, False, True]
    assert count(index, documents) == 3 and count(index, print_pieces) == 3


def test_an_unreachable_s3_indexes_nothing(index):
    store = Store()
    store.down = True
    with pytest.raises(ArchiveUnavailable):
        step(store, index).commit([rendered(n) for n in range(3)])
    assert count(index, documents) == 0 and count(index, print_pieces) == 0


def test_documents_indexed_by_a_racing_run_are_learnt_one_by_one(index):
    archive = step(Store(), index)
    archive.commit([rendered(1)])  # another run won the race for this one
    outcomes = archive.commit([rendered(n) for n in range(3)])
    assert isinstance(outcomes[1], DuplicateDocument)
    assert isinstance(outcomes[0], tuple) and isinstance(outcomes[2], tuple)
    assert count(index, documents) == 3 and count(index, print_pieces) == 3


def test_a_crash_before_the_transaction_leaves_objects_and_no_rows(index):
    store = Store()
    archive = step(store, index)

    def crash(document_id: str) -> None:
        raise RuntimeError("killed")
    archive.before_index = crash
    with pytest.raises(RuntimeError):
        archive.commit([rendered(n) for n in range(3)])
    assert len(store.keys) == 6 and count(index, documents) == 0
    archive.before_index = lambda document_id: None
    assert all(isinstance(o, tuple) for o in archive.commit([rendered(n) for n in range(3)]))
    assert count(index, documents) == 3 and count(index, print_pieces) == 3


def test_a_chunks_outboxes_are_one_statement_per_table_in_its_transaction(index, tmp_path):
    delivery = DeliveryStage(DeliverySettings.from_dict({}), index, tmp_path)
    delivery.create_schema()
    archive = ArchiveStep(Store(), index, RetentionPolicy.default(),  # type: ignore[arg-type]
                          print_queue=PrintQueue(index, PrintSettings.from_dict({})),
                          delivery=delivery)
    inserts: list[str] = []
    event.listen(index.engine, "before_cursor_execute",
                 lambda conn, cursor, statement, *args: inserts.append(statement.split()[2])
                 if statement.startswith("INSERT INTO deliver") else None)
    commits = transactions(index)
    documents_ = [dataclasses.replace(rendered(n), sealable={"data": n}) for n in range(4)]
    outcomes = archive.commit(documents_)
    assert all(isinstance(o, tuple) for o in outcomes) and len(commits) == 1
    assert sorted(inserts) == ["deliveries", "delivery_events"]
    assert count(index, deliveries) == 8  # print and sms of each document
    assert count(index, print_pieces) == 0  # their print deliveries queue them, after the rules
    # one document at a time (a racing run indexed one of them): the same rows each
    again = archive.commit([dataclasses.replace(rendered(n), sealable={"data": n})
                            for n in range(3, 6)])
    assert isinstance(again[0], DuplicateDocument) and count(index, deliveries) == 12


def test_a_piece_the_print_settings_cannot_make_fails_before_anything_is_stored(index):
    """QA H1, defence in depth: a piece's profile, feeders and envelope are decided before
    its objects are put; a piece no envelope takes (here 200 simplex sheets: the default
    profile's overflow chain ends at C4, 50 sheets) fails its document alone with
    UnprintablePiece (FAILED_PRECONDITION) and leaves no object and no row."""
    store = Store()
    thick = rendered(1)
    thick = dataclasses.replace(thick, outputs=tuple(
        dataclasses.replace(o, facts={"pages": 200}) if o.channel == Channel.PRINT else o
        for o in thick.outputs))
    outcomes = step(store, index).commit([rendered(0), thick, rendered(2)])
    assert isinstance(outcomes[1], UnprintablePiece)
    assert "fits no envelope of profile 'default'" in str(outcomes[1])
    assert not [k for k in store.keys if "01JDOC00000000000000000001" in k]
    assert isinstance(outcomes[0], tuple) and isinstance(outcomes[2], tuple)
    assert count(index, documents) == 2 and count(index, print_pieces) == 2


def test_a_commit_whose_rows_hand_over_to_no_fallback_asks_for_no_fallback_round(
        index, tmp_path):
    """A document's rows are born queued (its print delivery) or failed with nothing to
    fall back to (its SMS: no provider, and not the primary channel): the dispatcher is
    woken without a fallback round, which would read the outbox for nothing at every
    real-time call (server.delivery.outbox.hands_over says when one is due)."""
    delivery = DeliveryStage(DeliverySettings.from_dict({}), index, tmp_path)
    delivery.create_schema()
    archive = ArchiveStep(Store(), index, RetentionPolicy.default(),  # type: ignore[arg-type]
                          print_queue=PrintQueue(index, PrintSettings.from_dict({})),
                          delivery=delivery)
    asked: list[bool] = []
    delivery.notify = lambda fallbacks=True: asked.append(fallbacks)  # type: ignore[method-assign]
    archive.commit([dataclasses.replace(rendered(0), sealable={"data": 0})])
    assert asked == [False] and count(index, deliveries) == 2
