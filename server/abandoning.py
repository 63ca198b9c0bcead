"""A real-time document whose call was answered with an error after its objects may have been
stored: a marker beside them, so that nothing ever indexes it.

A Compose call puts its objects, then writes its index row (server.archiving). When S3 does
not answer within the call's deadline, or the index is down, the call is answered
UNAVAILABLE or DEADLINE_EXCEEDED ("nothing was indexed") and the caller retries, under a
new document id. Yet the abandoned puts may still land, and `kanal archive reconcile`
indexes stored documents that have no index row (it is how a crash between the two writes
is repaired): the customer would find a second copy of the document in the portal, one
never delivered (QA: a 0.3 s deadline, then reconcile "indexed" it ten minutes later).

So the server puts an `abandoned` marker object under the document's key prefix
(`{tenant}/{customer}/{yyyy}/{document_id}/abandoned.json`, retained as long as the
document would have been), and the reconciler skips a document that has one
(archive.rebuild `ABANDONED`). The marker is put after the answer, in one background thread
with no call deadline, retried for about a minute (`RETRY_SECONDS`), well inside the
reconciler's 10 minutes of leaving young documents alone. A bulk chunk needs none: its
documents have ids derived from the job and the record, and its retry indexes them.

If S3 stays away all that minute, the marker is missing: logged as an error, naming the
document, for an operator to check before the next reconcile.
"""

from __future__ import annotations

import json
import threading
from concurrent.futures import ThreadPoolExecutor
from contextvars import Context
from typing import TYPE_CHECKING

from archive.errors import ArchiveError
from archive.keys import document_key
from archive.rebuild import ABANDONED
from server import logs
from server.archiving import object_metadata

if TYPE_CHECKING:
    from server.archiving import ArchiveStep, Rendered

log = logs.get_logger(__name__)

RETRY_SECONDS = (0.5, 1, 2, 4, 8, 15, 30)  # waits between tries: about a minute in all


class Abandonments:
    """Markers for abandoned real-time documents, put in one background thread."""

    def __init__(self, step: ArchiveStep, retry_seconds: tuple[float, ...] = RETRY_SECONDS):
        self.step = step
        self.retry_seconds = retry_seconds
        self._thread: ThreadPoolExecutor | None = None
        self._lock = threading.Lock()
        self._stopping = threading.Event()

    def mark(self, doc: Rendered, reason: str) -> None:
        """Put the document's marker soon (returns at once; see the module)."""
        with self._lock:
            if self._thread is None:
                self._thread = ThreadPoolExecutor(1, thread_name_prefix="abandoned")
        # a fresh context: no call deadline (archive.deadline), no request's log fields
        self._thread.submit(Context().run, self._put_logged, doc, reason)

    def _put_logged(self, doc: Rendered, reason: str) -> None:
        try:
            self._put(doc, reason)
        except Exception:  # noqa: BLE001 - nobody waits for this thread's result
            log.exception("abandoned document not marked",
                          document_id=doc.composition.document_id)

    def wait(self) -> None:
        """Until every marker asked for is put or given up (tests)."""
        with self._lock:
            thread, self._thread = self._thread, None
        if thread is not None:
            thread.shutdown(wait=True)

    def stop(self) -> None:
        """The server stops: markers still waiting to be retried get no more tries (each
        missing one is logged), before the store goes."""
        self._stopping.set()
        self.wait()

    def _put(self, doc: Rendered, reason: str) -> None:
        composition = doc.composition
        key = document_key(composition.tenant, composition.recipient.customer_id,
                           composition.created_at, composition.document_id, ABANDONED, "json")
        # the same bytes on every try: a try whose answer was lost has put it already
        body = json.dumps({"document_id": composition.document_id, "reason": reason}).encode()
        for wait in (*self.retry_seconds, None):
            try:
                self.step.store.put(
                    key, body, media_type="application/json",
                    metadata={**object_metadata(composition, doc.corrects_document_id),
                              "channel": ABANDONED, "pages": "", "facts": "{}"},
                    retain_until=self.step.retain_until(composition))
            except ArchiveError as exc:
                if wait is None or self._stopping.wait(wait):
                    log.error("abandoned document has no marker: `kanal archive reconcile` "
                              "would index it", document_id=composition.document_id,
                              tenant=composition.tenant, error=str(exc)[:300])
                    return
                continue
            log.info("abandoned document marked", document_id=composition.document_id,
                     tenant=composition.tenant, reason=reason[:200])
            return
