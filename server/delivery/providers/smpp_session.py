"""One bound SMPP 3.4 transceiver session to an SMSC, kept bound by its own thread
(smpplib for the PDUs and the socket).

    connect -> bind_transceiver (§4.1.5) -> read loop:
        submit_sm_resp   -> the waiting submit's answer (matched by sequence number)
        deliver_sm       -> `on_deliver(pdu)` in the receipts thread, then deliver_sm_resp
                            (ESME_RX_T_APPN when the handler failed: the SMSC keeps the
                            receipt and sends it again)
        enquire_link     -> enquire_link_resp; our own enquire_link after `enquire_link`
                            seconds of silence, and the link is dead when it gets no answer
        unbind / EOF     -> the link is down: every submit still waiting is in doubt
    down -> rebind after `rebind` seconds, again and again until closed

`submit(params_list)` sends the submit_sm PDUs of one message back to back and waits for
their answers; at most `window` submit_sm are outstanding on the link at once (§2.6:
asynchronous windowing). Thread-safe: dispatcher threads submit while the reader thread
reads. `on_submitted(context, message_id)` runs in the reader thread when a submit_sm_resp
arrives, before any later PDU is read, so a receipt that follows at once already finds
its message id.
"""

from __future__ import annotations

import contextlib
import logging
import queue
import select
import socket
import threading
import time
from collections.abc import Callable, Sequence
from concurrent.futures import Future, InvalidStateError
from concurrent.futures import TimeoutError as FutureTimeout
from dataclasses import dataclass
from typing import Any

import smpplib.client
import smpplib.consts
import smpplib.exceptions
import smpplib.smpp

from server import logs

log = logs.get_logger(__name__)
# smpplib warns on every close of a bound link (which is how links end here); our own log
# says what happened.
logging.getLogger("kanal.smpplib").setLevel(logging.ERROR)

ESME_RX_T_APPN = 0x00000064  # SMPP 3.4 §5.1.3: temporary application error, try again


class LinkDown(Exception):
    """The link is not bound. `in_doubt`: a submit_sm was written and its answer lost."""

    def __init__(self, reason: str, in_doubt: bool = False):
        super().__init__(reason)
        self.in_doubt = in_doubt


@dataclass(frozen=True, slots=True)
class Answer:
    status: int  # command_status of the submit_sm_resp (0: accepted)
    message_id: str


class Session:
    def __init__(self, name: str, host: str, port: int, system_id: str, password: str, *,
                 system_type: str = "", window: int = 10, enquire_link: float = 30.0,
                 response_timeout: float = 10.0, rebind: float = 2.0,
                 on_deliver: Callable[[Any], None] = lambda pdu: None,
                 on_submitted: Callable[[Any, str], None] = lambda context, mid: None):
        self.name = name
        self.host, self.port = host, port
        self.system_id, self.password, self.system_type = system_id, password, system_type
        self.enquire_link = enquire_link
        self.response_timeout = response_timeout
        self.rebind = rebind
        self.on_deliver = on_deliver
        self.on_submitted = on_submitted
        self._window = threading.BoundedSemaphore(window)
        self._write = threading.Lock()
        self._bound = threading.Event()
        self._stop = threading.Event()
        self._client: smpplib.client.Client | None = None
        self._pending: dict[int, tuple[Future[Answer], Any]] = {}
        self._pending_lock = threading.Lock()
        self._thread: threading.Thread | None = None
        self._receipts_thread: threading.Thread | None = None
        self._delivered: queue.SimpleQueue[tuple[Any, Any] | None] = queue.SimpleQueue()
        self.binds = 0  # how many times the session bound (1 + rebinds)
        self.last_error = ""

    # --- lifecycle ---------------------------------------------------------------------

    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, name=f"smpp-{self.name}",
                                        daemon=True)
        self._thread.start()
        self._receipts_thread = threading.Thread(target=self._receipts, daemon=True,
                                                 name=f"smpp-{self.name}-receipts")
        self._receipts_thread.start()

    def close(self) -> None:
        self._stop.set()
        client = self._client
        if client is not None and self._bound.is_set():
            try:
                with self._write:
                    client.send_pdu(smpplib.smpp.make_pdu("unbind", client=client))
            except (smpplib.exceptions.ConnectionError, smpplib.exceptions.PDUError, OSError):
                pass
        self._drop()
        if self._thread is not None:
            self._thread.join(timeout=10)
        self._delivered.put(None)
        if self._receipts_thread is not None:
            self._receipts_thread.join(timeout=10)

    def wait_bound(self, timeout: float) -> bool:
        return self._bound.wait(timeout)

    @property
    def bound(self) -> bool:
        return self._bound.is_set()

    def drop(self) -> None:
        """Close the socket (the reader thread rebinds)."""
        self._drop()

    def _drop(self) -> None:
        client = self._client
        if client is not None and client._socket is not None:
            with contextlib.suppress(OSError):
                client._socket.shutdown(socket.SHUT_RDWR)

    # --- submitting ----------------------------------------------------------------------

    def submit(self, params_list: Sequence[dict[str, Any]], context: Any = None,
               bind_timeout: float = 5.0) -> list[Answer | LinkDown]:
        """Send one message's submit_sm PDUs; -> per PDU its answer, or LinkDown (not
        sent, or sent and its answer lost: `in_doubt`)."""
        futures: list[Future[Answer] | LinkDown] = []
        for params in params_list:
            if not self._bound.wait(bind_timeout):
                futures.append(LinkDown(f"not bound to {self.host}:{self.port}"
                                        + (f" ({self.last_error})" if self.last_error else "")))
                continue
            if not self._window.acquire(timeout=self.response_timeout):
                futures.append(LinkDown("window full: the SMSC is not answering"))
                continue
            future: Future[Answer] = Future()
            future.add_done_callback(lambda _f: self._window.release())
            client = self._client
            try:
                with self._write:
                    if client is None or not self._bound.is_set():
                        raise smpplib.exceptions.ConnectionError()
                    pdu = smpplib.smpp.make_pdu("submit_sm", client=client, **params)
                    with self._pending_lock:
                        self._pending[pdu.sequence] = (future, context)
                    client.send_pdu(pdu)
            except (smpplib.exceptions.ConnectionError, OSError):
                with self._pending_lock:
                    for seq, (f, _) in list(self._pending.items()):
                        if f is future:
                            del self._pending[seq]
                _settle(future, LinkDown("link lost before the submit_sm was sent"))
            futures.append(future)
        answers: list[Answer | LinkDown] = []
        for item in futures:
            if isinstance(item, LinkDown):
                answers.append(item)
                continue
            try:
                answers.append(item.result(timeout=self.response_timeout))
            except LinkDown as exc:
                answers.append(exc)
            except FutureTimeout:
                self._forget(item, LinkDown("no submit_sm_resp in time", in_doubt=True))
                answers.append(LinkDown("no submit_sm_resp in time", in_doubt=True))
        return answers

    def _forget(self, future: Future[Answer], exc: LinkDown) -> None:
        with self._pending_lock:
            for seq, (f, _) in list(self._pending.items()):
                if f is future:
                    del self._pending[seq]
        _settle(future, exc)

    # --- the link -------------------------------------------------------------------------

    def _run(self) -> None:
        while not self._stop.is_set():
            client = smpplib.client.Client(self.host, self.port, timeout=self.response_timeout,
                                           allow_unknown_opt_params=True,
                                           logger_name="kanal.smpplib")
            try:
                client.connect()
                client.bind_transceiver(system_id=self.system_id, password=self.password,
                                        system_type=self.system_type)
                self._client = client
                self.binds += 1
                self.last_error = ""
                self._bound.set()
                log.info("smpp bound", provider=self.name, binds=self.binds)
                self._read(client)
            except (smpplib.exceptions.ConnectionError, smpplib.exceptions.PDUError, OSError,
                    LinkDown) as exc:
                self.last_error = str(exc) or type(exc).__name__
                if not self._stop.is_set():
                    log.warning("smpp link down", provider=self.name, error=self.last_error)
            finally:
                self._bound.clear()
                self._fail_pending()
                with contextlib.suppress(OSError):
                    client.disconnect()
                client._socket = None  # noqa: SLF001 (smpplib warns on a socket left set)
            self._stop.wait(self.rebind)

    def _fail_pending(self) -> None:
        with self._pending_lock:
            pending, self._pending = self._pending, {}
        for future, _ in pending.values():
            _settle(future, LinkDown("link lost with the submit_sm unanswered", in_doubt=True))

    def _read(self, client: smpplib.client.Client) -> None:
        waiting_since: float | None = None  # our enquire_link is unanswered since
        while not self._stop.is_set():
            readable, _, _ = select.select([client._socket], [], [], self.enquire_link)
            if not readable:
                if waiting_since is not None:
                    raise LinkDown("no answer to enquire_link")
                waiting_since = time.monotonic()
                with self._write:
                    client.send_pdu(smpplib.smpp.make_pdu("enquire_link", client=client))
                continue
            pdu = client.read_pdu()
            waiting_since = None  # anything from the SMSC shows the link is alive
            self._handle(client, pdu)

    def _handle(self, client: smpplib.client.Client, pdu: Any) -> None:
        command = pdu.command
        if command in ("submit_sm_resp", "generic_nack"):
            with self._pending_lock:
                future, context = self._pending.pop(pdu.sequence, (None, None))
            if future is None:
                return
            message_id = _text(getattr(pdu, "message_id", None))
            if pdu.status == smpplib.consts.SMPP_ESME_ROK and message_id:
                self.on_submitted(context, message_id)
            _settle(future, Answer(int(pdu.status), message_id))
        elif command == "deliver_sm":  # applied by the receipts thread, answered after
            self._delivered.put((client, pdu))
        elif command == "enquire_link":
            self._respond(client, "enquire_link_resp", pdu)
        elif command == "unbind":
            self._respond(client, "unbind_resp", pdu)
            raise LinkDown("the SMSC unbound")

    def _receipts(self) -> None:
        """Apply deliver_sm off the reader thread (a receipt's database work must not hold
        up the submit_sm_resp behind it), and answer each once it is applied: a receipt
        the process dies with is unanswered, so the SMSC sends it again."""
        while True:
            item = self._delivered.get()
            if item is None:
                return
            client, pdu = item
            status = smpplib.consts.SMPP_ESME_ROK
            try:
                self.on_deliver(pdu)
            except Exception as exc:  # the database is away: the SMSC sends it again
                log.warning("receipt not applied", provider=self.name, error=repr(exc))
                status = ESME_RX_T_APPN
            # A link gone meanwhile: the SMSC sends the receipt again on the next one.
            with contextlib.suppress(smpplib.exceptions.ConnectionError,
                                     smpplib.exceptions.PDUError, OSError):
                self._respond(client, "deliver_sm_resp", pdu, status=status)

    def _respond(self, client: smpplib.client.Client, command: str, pdu: Any,
                 **params: Any) -> None:
        response = smpplib.smpp.make_pdu(command, client=client, **params)
        response.sequence = pdu.sequence
        with self._write:
            client.send_pdu(response)


def _settle(future: Future[Answer], outcome: Answer | LinkDown) -> None:
    """Answer a waiting submit once (the reader, a timeout and a lost link may race)."""
    try:
        if isinstance(outcome, LinkDown):
            future.set_exception(outcome)
        else:
            future.set_result(outcome)
    except InvalidStateError:
        pass


def _text(value: Any) -> str:
    if isinstance(value, bytes):
        return value.decode("ascii", "replace")
    return "" if value is None else str(value)
