"""A correction replaces the document it corrects, in the transaction that indexes it
(server.archiving): a second correction of one document is refused naming the first
(CorrectionRefused, FAILED_PRECONDITION), the corrected document's print piece still
waiting is withdrawn from the print queue, its deliveries not yet handed to a provider are
cancelled; what a batch took or a provider was given stays. A real SQLite index, print queue
and outbox; the S3 store is a stand-in (tests/integration/test_corrections.py runs the
server on SQLite and PostgreSQL)."""

from __future__ import annotations

import hashlib
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import select, update
from structlog.testing import capture_logs

from archive.index import DocumentIndex
from archive.retention import RetentionPolicy
from server.archiving import ArchiveStep, Rendered, output_record
from server.compose.composer import ComposeRequest, compose
from server.compose.model import Channel, Output
from server.corrections import CorrectionRefused
from server.delivery.model import State
from server.delivery.stage import DeliverySettings, DeliveryStage
from server.delivery.tables import deliveries
from server.errors import FailedPrecondition
from server.printing.queue import WITHDRAWN, PrintQueue, PrintSettings, print_pieces
from tests.layouts import shipped

LAYOUT = shipped().get("card-invoice")
NOW = datetime(2026, 12, 2, 9, 0, tzinfo=UTC)
ORIGINAL, FIRST, SECOND = (f"01JCORR{n:019d}" for n in range(3))


class Store:
    """put() as ArchiveStore's, keeping nothing."""

    def put(self, key, content, *, media_type, metadata, retain_until, sha256=None):
        pass


@pytest.fixture
def index(tmp_path: Path) -> DocumentIndex:
    index = DocumentIndex(f"sqlite:///{tmp_path / 'index.db'}")
    index.create_schema()
    PrintQueue(index, PrintSettings.from_dict({})).create_schema()
    return index


def letter(document_id: str, corrects: str | None = None, *, sealed: bool = False) -> Rendered:
    composition = compose(ComposeRequest(
        tenant="t", layout=LAYOUT, data=LAYOUT.sample_data(), document_id=document_id,
        now=NOW, channels=(Channel.PRINT, Channel.SMS)))
    outputs = tuple(
        Output(channel, media, body, hashlib.sha256(body).hexdigest(),
               {"pages": 1} if channel == Channel.PRINT else {})
        for channel, media, body in (
            (Channel.PRINT, "application/pdf", b"%PDF-1.7 " + document_id.encode()),
            (Channel.SMS, "text/plain; charset=utf-8", document_id.encode())))
    return Rendered(composition, LAYOUT, outputs, corrects, {"data": 1} if sealed else None)


def step(index: DocumentIndex, delivery: DeliveryStage | None = None) -> ArchiveStep:
    return ArchiveStep(Store(), index, RetentionPolicy.default(),  # type: ignore[arg-type]
                       print_queue=PrintQueue(index, PrintSettings.from_dict({})),
                       delivery=delivery)


def pieces(index: DocumentIndex) -> dict[str, str | None]:
    """document id -> its piece's batch id (None: waiting)"""
    with index.engine.connect() as conn:
        return dict(conn.execute(select(print_pieces.c.document_id, print_pieces.c.batch_id)).all())


def test_a_correction_withdraws_the_corrected_piece_still_waiting(index):
    archive = step(index)
    archive.commit([letter(ORIGINAL)])
    assert pieces(index) == {ORIGINAL: None}
    [outcome] = archive.commit([letter(FIRST, corrects=ORIGINAL)])
    assert isinstance(outcome, tuple)
    assert pieces(index) == {ORIGINAL: WITHDRAWN, FIRST: None}  # the batch gets FIRST only


def test_a_piece_a_batch_took_stays_in_it(index):
    """Closed (claimed) before the correction: printed, and the correction on its own."""
    archive = step(index)
    archive.commit([letter(ORIGINAL)])
    with index.engine.begin() as conn:  # as BatchService._claim does
        conn.execute(update(print_pieces).values(batch_id="01JBATCH"))
    archive.commit([letter(FIRST, corrects=ORIGINAL)])
    assert pieces(index) == {ORIGINAL: "01JBATCH", FIRST: None}


def test_a_second_correction_is_refused_naming_the_first(index):
    archive = step(index)
    archive.commit([letter(ORIGINAL)])
    archive.commit([letter(FIRST, corrects=ORIGINAL)])
    [outcome] = archive.commit([letter(SECOND, corrects=ORIGINAL)])
    assert isinstance(outcome, CorrectionRefused)
    assert f"correct {FIRST} instead" in str(outcome)
    assert index.get("t", SECOND) is None and SECOND not in pieces(index)
    assert index.corrected_by("t", [ORIGINAL]) == {ORIGINAL: [FIRST]}
    # correcting the correction keeps the chain linear: fine
    [outcome] = archive.commit([letter(SECOND, corrects=FIRST)])
    assert isinstance(outcome, tuple)
    assert pieces(index) == {ORIGINAL: WITHDRAWN, FIRST: WITHDRAWN, SECOND: None}


def test_two_corrections_of_one_document_in_one_chunk_the_first_wins(index):
    archive = step(index)
    archive.commit([letter(ORIGINAL)])
    first, second = archive.commit([letter(FIRST, corrects=ORIGINAL),
                                    letter(SECOND, corrects=ORIGINAL)])
    assert isinstance(first, tuple) and isinstance(second, CorrectionRefused)
    assert index.corrected_by("t", [ORIGINAL]) == {ORIGINAL: [FIRST]}


def test_a_held_delivery_of_the_corrected_document_is_cancelled(index, tmp_path):
    """The original's print delivery is held (quiet hours: queued, due later); its SMS was
    handed to the SMSC (sent). The correction cancels the held one with its reason and no
    fallback, and takes nothing back from the sent one."""
    delivery = DeliveryStage(DeliverySettings.from_dict({}), index, tmp_path)
    delivery.create_schema()
    archive = step(index, delivery)
    archive.commit([letter(ORIGINAL, sealed=True)])
    with index.engine.begin() as conn:
        conn.execute(update(deliveries).where(deliveries.c.channel == "print").values(
            next_attempt_at=NOW + timedelta(hours=9), reason="held: quiet hours"))
        conn.execute(update(deliveries).where(deliveries.c.channel == "sms").values(
            state=State.SENT.value, fallbacks="print"))
    archive.commit([letter(FIRST, corrects=ORIGINAL, sealed=True)])
    got = {d.channel: d for d in delivery.for_document("t", ORIGINAL)}
    assert got["print"].state == State.FAILED
    assert got["print"].reason == f"superseded by correction {FIRST}"
    assert got["print"].events[-1].reason == f"superseded by correction {FIRST}"
    assert got["sms"].state == State.SENT and got["sms"].fallbacks == ()
    assert [d.state for d in delivery.for_document("t", FIRST)
            if d.channel == "print"] == [State.QUEUED]  # the correction goes out
    # an operator's retry of the cancelled one is refused, naming the correction
    with pytest.raises(FailedPrecondition, match=f"document {ORIGINAL} was corrected by "
                       f"{FIRST}: its deliveries are superseded"):
        delivery.retry("t", got["print"].delivery_id, "ops")
    assert delivery.get("t", got["print"].delivery_id).state == State.FAILED


def test_a_print_delivery_whose_piece_is_withdrawn_fails_with_the_reason(index, tmp_path):
    """The print provider queued the piece (its delivery `sent`), no batch took it yet."""
    delivery = DeliveryStage(DeliverySettings.from_dict({}), index, tmp_path)
    delivery.create_schema()
    archive = step(index, delivery)
    original = letter(ORIGINAL, sealed=True)
    archive.commit([original])
    with index.engine.begin() as conn:
        conn.execute(update(deliveries).where(deliveries.c.channel == "print").values(
            state=State.SENT.value))
    records = [output_record(o, "k") for o in original.outputs]  # as the provider does:
    piece = archive._piece(original.composition, records)  # noqa: SLF001
    assert piece is not None
    PrintQueue(index, PrintSettings.from_dict({})).enqueue(piece, NOW)
    archive.commit([letter(FIRST, corrects=ORIGINAL, sealed=True)])
    [printed] = [d for d in delivery.for_document("t", ORIGINAL) if d.channel == "print"]
    assert printed.state == State.FAILED
    assert printed.reason.startswith(f"superseded by correction {FIRST}: its print piece")
    assert pieces(index)[ORIGINAL] == WITHDRAWN


def test_the_log_line_says_what_a_correction_took_back(index):
    """QA: "the corrected document's unsent letters withdrawn" was logged also when a batch
    had taken the letter already and nothing was withdrawn."""
    archive = step(index)
    archive.commit([letter(ORIGINAL)])
    with capture_logs() as lines:
        archive.commit([letter(FIRST, corrects=ORIGINAL)])
    [took] = [line for line in lines if line["event"].startswith("correction committed")]
    assert took["log_level"] == "info"
    assert "1 print piece(s) withdrawn and 0 delivery(ies) cancelled" in took["event"]
    with index.engine.begin() as conn:  # a batch claims FIRST's piece
        conn.execute(update(print_pieces).where(print_pieces.c.document_id == FIRST)
                     .values(batch_id="01JBATCH"))
    with capture_logs() as lines:
        archive.commit([letter(SECOND, corrects=FIRST)])
    [took] = [line for line in lines if line["event"].startswith("correction committed")]
    assert took["log_level"] == "debug"
    assert "nothing withdrawn or cancelled" in took["event"]
