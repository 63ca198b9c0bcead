"""Every log line carries exactly the context it belongs to (server.logs `bound`).

QA: a bulk worker bound its chunk's job id, chunk and tenant, and each document its document
id and layout, and nothing ever unbound them: the worker's "chunk done" named the chunk's
*last document*, and every later line of that process or thread (the next chunk's first
lines, even "kanal stopped") the previous chunk's and document's ids. The same happened in
any thread that composes (a survey page's thread, a delivery fallback). Here a real chunk
runs (a real JobStore, index and DocumentService on SQLite, the SMS renderer; S3 a
stand-in) and its log lines are captured as structlog makes them.
"""

from __future__ import annotations

import contextvars
import json
import threading
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
import structlog
from structlog.testing import capture_logs

from archive.index import DocumentIndex
from archive.retention import RetentionPolicy
from server import logs
from server.channels import Renderers
from server.compose.model import Channel
from server.documents import ComposeInput, DocumentService
from server.jobs.model import JobHeader
from server.jobs.store import JobStore
from server.jobs.worker import Pipeline, document_id_for
from server.printing.queue import PrintQueue, PrintSettings
from tests.layouts import shipped
from tests.unit.test_archiving import Store

log = logs.get_logger("test")
LAYOUT = shipped().get("card-invoice")
DOCUMENT_FIELDS = ("document_id", "layout")
CHUNK_FIELDS = ("job_id", "chunk", "tenant")


def document_service(folder: Path) -> DocumentService:
    """The real DocumentService over a SQLite index and print queue in `folder`; S3 a
    stand-in (tests/unit/test_archiving.py)."""
    index = DocumentIndex(f"sqlite:///{folder / 'index.db'}")
    index.create_schema()
    queue = PrintQueue(index, PrintSettings.from_dict({}))
    queue.create_schema()
    return DocumentService(shipped(), Renderers(), Store(), index,  # type: ignore[arg-type]
                           RetentionPolicy.default(), print_queue=queue)


@pytest.fixture
def documents(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> DocumentService:
    service = document_service(tmp_path)
    render = service.renderers.render_planned

    def render_and_log(composition: Any, layout: Any) -> Any:  # a line logged mid-document
        log.info("rendering", of=composition.document_id)
        return render(composition, layout)

    monkeypatch.setattr(service.renderers, "render_planned", render_and_log)
    return service


@pytest.fixture
def lines():
    """The log lines of the test, with the context fields bound when each was logged. The
    test starts from an empty context: an earlier test in this process may have bound
    fields in this thread (a servicer called directly, without the interceptor's per-call
    `logs.clear`), and they are not the pipeline's (CI: a job_id left by another test)."""
    saved = structlog.contextvars.get_contextvars()
    structlog.contextvars.clear_contextvars()
    try:
        with capture_logs(processors=[structlog.contextvars.merge_contextvars]) as entries:
            yield entries
    finally:
        structlog.contextvars.clear_contextvars()
        structlog.contextvars.bind_contextvars(**saved)


def sample(n: int) -> str:
    data = json.loads(LAYOUT.sample_data())
    data["customer"]["customer_id"] = f"c{n}"
    return json.dumps(data)


def test_a_chunks_lines_name_their_chunk_and_document_and_no_line_after_them_does(
        tmp_path: Path, documents: DocumentService, lines: list[dict[str, Any]]):
    jobs = JobStore(f"sqlite:///{tmp_path / 'jobs.db'}", chunk_size=2)
    jobs.create_schema()
    created = datetime(2026, 12, 2, 8, 0, tzinfo=UTC)
    header = JobHeader(tenant="nordkort", layout_id="card-invoice", layout_version="",
                       channels=(Channel.SMS.value,))
    jobs.create_job("J1", header, created)
    jobs.add_records("J1", [(f"r{n}", sample(n)) for n in range(4)])
    jobs.seal("J1", 4)
    pipeline = Pipeline(documents, jobs)

    assert pipeline.run_chunk("J1", 0).documents == 2
    log.info("between chunks")
    assert pipeline.run_chunk("J1", 1).documents == 2
    log.info("kanal stopped")

    rendering = [line for line in lines if line["event"] == "rendering"]
    assert [line["of"] for line in rendering] == [
        document_id_for("J1", created, f"r{n}") for n in range(4)]
    for n, line in enumerate(rendering):  # mid-document: the chunk's and the document's
        assert (line["document_id"], line["layout"]) == (line["of"], LAYOUT.ref)
        assert (line["job_id"], line["chunk"], line["tenant"]) == ("J1", n // 2, "nordkort")
    done = [line for line in lines if line["event"] == "chunk done"]
    assert [(line["job_id"], line["chunk"], line["tenant"]) for line in done] == [
        ("J1", 0, "nordkort"), ("J1", 1, "nordkort")]
    for line in done:
        assert not set(DOCUMENT_FIELDS) & line.keys(), line  # no document's: the chunk's
    for event in ("between chunks", "kanal stopped"):
        [after] = [line for line in lines if line["event"] == event]
        assert not set(DOCUMENT_FIELDS + CHUNK_FIELDS) & after.keys(), after
    jobs.close()


def test_a_thread_that_composes_keeps_its_own_fields_and_no_documents(
        documents: DocumentService, lines: list[dict[str, Any]]):
    """A real-time document composed in a long-lived thread (a survey page's, say): its lines
    name it, the thread's next lines do not, and what the thread had bound stays."""

    failures: list[BaseException] = []

    def serve() -> None:
        logs.bind(tenant="thread's own", handler="survey-pages")
        try:
            for n in range(2):
                documents.compose(ComposeInput(tenant="nordkort", layout_id="card-invoice",
                                               data=sample(n), channels=(Channel.SMS,)))
                log.info("request handled")
        except BaseException as exc:  # noqa: BLE001 - the test's to see
            failures.append(exc)

    thread = threading.Thread(target=serve)
    thread.start()
    thread.join()
    assert failures == []
    rendering = [line for line in lines if line["event"] == "rendering"]
    composed = [line for line in lines if line["event"] == "composed"]
    assert len(rendering) == len(composed) == 2
    for during, stored in zip(rendering, composed, strict=True):
        assert during["document_id"] == during["of"] == stored["document_id"]
        assert (during["tenant"], during["layout"]) == ("nordkort", LAYOUT.ref)
        assert (stored["tenant"], stored["layout"]) == ("nordkort", LAYOUT.ref)
    handled = [line for line in lines if line["event"] == "request handled"]
    assert len(handled) == 2
    for line in handled:
        assert not set(DOCUMENT_FIELDS) & line.keys(), line
        assert (line["tenant"], line["handler"]) == ("thread's own", "survey-pages")


def test_a_delivery_fallbacks_render_names_its_document_and_leaves_the_dispatcher_as_it_was(
        documents: DocumentService, lines: list[dict[str, Any]],
        monkeypatch: pytest.MonkeyPatch):
    """The delivery dispatcher's thread renders a fallback channel from a sealed input
    (`render_fallback`): its lines name that document, the dispatcher's next lines not."""
    rendered = contextvars.copy_context().run(  # made elsewhere: no fields of it here
        documents.render_as,
        ComposeInput(tenant="nordkort", layout_id="card-invoice", data=sample(0),
                     channels=(Channel.SMS,)),
        document_id_for("J0", datetime(2026, 12, 2, tzinfo=UTC), "r0"),
        datetime(2026, 12, 2, tzinfo=UTC), indexed=False)
    sealed = rendered.sealable  # type: ignore[union-attr]
    render = documents.renderers.render

    def render_and_log(composition: Any, layout: Any) -> Any:
        log.info("rendering fallback", of=composition.document_id)
        return render(composition, layout)

    monkeypatch.setattr(documents.renderers, "render", render_and_log)
    with logs.bound(dispatcher="d1"):
        documents.render_fallback(sealed, Channel.SMS.value)
        log.info("delivery dispatched")
    [during] = [line for line in lines if line["event"] == "rendering fallback"]
    assert (during["document_id"], during["layout"], during["tenant"]) == (
        sealed["document_id"], LAYOUT.ref, "nordkort")
    assert during["dispatcher"] == "d1"
    [after] = [line for line in lines if line["event"] == "delivery dispatched"]
    assert not set(DOCUMENT_FIELDS) & after.keys(), after
    assert after["dispatcher"] == "d1" and "tenant" not in after
