"""SMS over SMPP 3.4: one archived SMS text -> its parts as `submit_sm` on a bound
transceiver session (smpp_session.py), delivery receipts -> `Receipt`s.

Per attempt: the parts and data coding the SMS channel planned (smpp_messages.py: GSM-7
`data_coding` 0 or UCS-2 8, concatenation UDH for more than one part) are submitted back
to back within the session's window. Answers -> results:

    every part ESME_ROK                     -> Accepted: the message id (each part's, for
                                               a long SMS), recorded before any later attempt
    ESME_RTHROTTLED, ESME_RMSGQFUL          -> Retry(after=throttle_seconds); the adapter
                                               sends nothing more for that long
    ESME_RINVDSTADR / RINVDSTTON / RINVDSTNPI -> Failed(bounced): the next channel
    ESME_RSYSERR, RSUBMITFAIL, RX_T_APPN ... -> Retry (the SMSC's trouble, not the link's)
    other errors                            -> Failed
    not bound (SMSC down)                   -> Retry (the breaker counts it)
    the link dropped with parts unanswered  -> Retry(in_doubt=True): the dispatcher waits
                                               `in_doubt_seconds` for their receipt first

Parts already accepted when another part of the same message was throttled are remembered
(in this process) and not sent again. Receipts (`registered_delivery` 1) come back on the
same session as `deliver_sm`; `UNDELIV`/`REJECTD` bounce, `EXPIRED` expires, both hand
over to the plan's next channel (e.g. print).

Settings::

    [delivery.providers.smsc]
    type = "smpp"
    host = "smpp.operator.example"
    port = 2775
    system_id = "kanal"
    password = "..."
    system_type = ""
    source_addr = "Fjordbank"     # default sender; a tenant's: [delivery.tenants.<t>] sms_sender
    window = 10                   # outstanding submit_sm on the link (and, unless
                                  # `concurrency` says otherwise, sending threads)
    rate_per_second = 1000        # default; set it to the SMSC contract's TPS
    enquire_link_seconds = 30
    response_timeout = 10         # for a submit_sm_resp
    rebind_seconds = 2
    throttle_seconds = 1          # after ESME_RTHROTTLED
    receipt_id_format = "same"    # or "hex-as-decimal" / "decimal-as-hex" (operator quirks)
    in_doubt_seconds = 300        # (default) wait for a receipt before resending one in doubt
"""

from __future__ import annotations

import hashlib
import json
import threading
import time
from collections import OrderedDict
from collections.abc import Mapping
from dataclasses import replace
from datetime import timedelta
from typing import Any

import smpplib.consts as codes

from server import logs
from server.channels.sms import decode_gsm7
from server.delivery.model import Accepted, Failed, Outgoing, Receipt, Result, Retry, State
from server.delivery.providers.base import Provider, ProviderContext, ReceiptSink, register
from server.delivery.providers.smpp_messages import (
    ESM_DELIVERY_RECEIPT,
    parse_receipt,
    planned_parts,
    reference,
    sender_problem,
    source_address,
    submit_params,
)
from server.delivery.providers.smpp_session import Answer, LinkDown, Session

log = logs.get_logger(__name__)

THROTTLING = frozenset({codes.SMPP_ESME_RTHROTTLED, codes.SMPP_ESME_RMSGQFUL})
BAD_DESTINATION = frozenset({codes.SMPP_ESME_RINVDSTADR, codes.SMPP_ESME_RINVDSTTON,
                             codes.SMPP_ESME_RINVDSTNPI})
TRANSIENT = frozenset({codes.SMPP_ESME_RSYSERR, codes.SMPP_ESME_RSUBMITFAIL,
                       codes.SMPP_ESME_RINVBNDSTS, codes.SMPP_ESME_RDELIVERYFAILURE,
                       codes.SMPP_ESME_RUNKNOWNERR, 0x00000064})  # RX_T_APPN
DEFAULT_RATE = 1000.0  # submit_sm/s; set `rate_per_second` to the SMSC contract's TPS
DEFAULT_IN_DOUBT = 300.0  # s to wait for the receipt of an unanswered submit_sm
REMEMBERED_IDS = 200_000  # message id -> delivery id, for receipts that beat the finish


def status_words(status: int) -> str:
    return f"0x{status:08X} {codes.DESCRIPTIONS.get(status, 'unknown status')}"


class SmppProvider(Provider):
    channel = "sms"
    # The text travels in the outbox row: the SMS channel's parts (its facts), checked
    # against the archived object's sha256; no archive read per message.
    needs_content = False

    def __init__(self, name: str, settings: Mapping[str, Any], context: ProviderContext):
        super().__init__(name, settings, context)
        window = int(settings.get("window", 10))
        if "concurrency" not in settings:  # one sending thread per window slot
            self.limits = replace(self.limits, concurrency=window)
        if "rate_per_second" not in settings:  # SMPP paces itself: the window, RTHROTTLED
            self.limits = replace(self.limits, rate_per_second=DEFAULT_RATE)
        if "in_doubt_seconds" not in settings:  # receipts come within seconds to minutes
            self.limits = replace(self.limits, in_doubt_seconds=DEFAULT_IN_DOUBT)
        self.source_addr = str(settings.get("source_addr", "Kanal"))
        senders = {f"delivery.providers.{name}.source_addr": self.source_addr} | {
            f"delivery.tenants.{tenant}.sms_sender": str(own["sms_sender"])
            for tenant, own in context.tenants.items() if own.get("sms_sender")}
        for setting, sender in senders.items():  # refused at start, not on every attempt
            if (problem := sender_problem(sender)) is not None:
                raise ValueError(f"{setting}: {problem}")
        self.throttle_seconds = float(settings.get("throttle_seconds", 1.0))
        self.id_format = str(settings.get("receipt_id_format", "same"))
        if self.id_format not in ("same", "hex-as-decimal", "decimal-as-hex"):
            raise ValueError(f"delivery.providers.{name}.receipt_id_format: "
                             f"unknown {self.id_format!r}")
        system_id, password = str(settings.get("system_id", "")), str(
            settings.get("password", ""))
        if len(system_id) > 15 or len(password) > 8:  # SMPP 3.4 §4.1.1: C-Octet Strings
            raise ValueError(f"delivery.providers.{name}: system_id is at most 15 and "
                             "password at most 8 characters (SMPP 3.4 §4.1.1)")
        self.session = Session(
            name, str(settings.get("host", "127.0.0.1")), int(settings.get("port", 2775)),
            system_id, password,
            system_type=str(settings.get("system_type", "")),
            window=window,
            enquire_link=float(settings.get("enquire_link_seconds", 30)),
            response_timeout=float(settings.get("response_timeout", 10)),
            rebind=float(settings.get("rebind_seconds", 2)),
            on_deliver=self._deliver, on_submitted=self._submitted)
        self._sink: ReceiptSink = lambda receipt: None
        self._ids: OrderedDict[str, str] = OrderedDict()
        self._partial: dict[str, dict[int, str]] = {}  # delivery id -> part -> message id
        self._lock = threading.Lock()
        self._paused_until = 0.0

    def start(self, receipts: ReceiptSink) -> None:
        self._sink = receipts
        self.session.start()

    def close(self) -> None:
        self.session.close()

    def client_reference(self, message_id: str) -> str:
        return str(reference(message_id))

    # --- sending ----------------------------------------------------------------------------

    def _source(self, tenant: str) -> tuple[int, int, str]:
        own = self.context.tenants.get(tenant, {}).get("sms_sender")
        return source_address(str(own or self.source_addr))

    def send(self, message: Outgoing) -> Result:
        wait = self._paused_until - time.monotonic()
        if wait > 0:
            return Retry(f"SMSC throttling (ESME_RTHROTTLED): pausing {wait:.1f} s",
                         after=timedelta(seconds=wait), provider_down=False)
        text = message.content.decode("utf-8") if message.content else "".join(
            json.loads(message.facts.get("parts") or "[]"))
        expected = message.details.get("sha256")
        if expected and hashlib.sha256(text.encode()).hexdigest() != expected:
            return Failed("the SMS text of the outbox row is not the archived one (sha256)")
        parts, data_coding = planned_parts(text, message.facts)
        params = submit_params(parts, data_coding, message.message_id,
                               self._source(message.tenant), message.recipient)
        with self._lock:
            ids = dict(self._partial.pop(message.delivery_id, {}))
        todo = [n for n in range(len(params)) if n not in ids]
        answers = self.session.submit([params[n] for n in todo], context=message.delivery_id)
        problems: list[Answer | LinkDown] = []
        for n, answer in zip(todo, answers, strict=True):
            if isinstance(answer, Answer) and answer.status == codes.SMPP_ESME_ROK:
                ids[n] = answer.message_id
            else:
                problems.append(answer)
        if not problems:
            ordered = tuple(ids[n] for n in range(len(params)))
            return Accepted(f"submit_sm_resp ESME_ROK: {len(ordered)} part(s), message id "
                            f"{' '.join(ordered)} (data_coding {data_coding})",
                            provider_message_id=ordered[0],
                            parts=ordered if len(ordered) > 1 else ())
        if ids:
            with self._lock:
                self._partial[message.delivery_id] = ids
        return self._refused(problems)

    def _refused(self, problems: list[Answer | LinkDown]) -> Result:
        in_doubt = [p for p in problems if isinstance(p, LinkDown) and p.in_doubt]
        if in_doubt:
            return Retry(f"SMSC link lost: {in_doubt[0]}", in_doubt=True)
        down = [p for p in problems if isinstance(p, LinkDown)]
        if down:
            return Retry(f"SMSC unavailable: {down[0]}")
        statuses = [p.status for p in problems if isinstance(p, Answer)]
        words = f"submit_sm_resp {status_words(statuses[0])}"
        if THROTTLING & set(statuses):
            self._paused_until = time.monotonic() + self.throttle_seconds
            return Retry(f"{words}; pausing {self.throttle_seconds:g} s",
                         after=timedelta(seconds=self.throttle_seconds), provider_down=False)
        if BAD_DESTINATION & set(statuses):
            return Failed(words, State.BOUNCED)
        if set(statuses) <= TRANSIENT:
            return Retry(words, provider_down=False)
        return Failed(words)

    # --- receipts ---------------------------------------------------------------------------

    def _submitted(self, delivery_id: Any, message_id: str) -> None:
        with self._lock:
            self._ids[message_id] = str(delivery_id or "")
            while len(self._ids) > REMEMBERED_IDS:
                self._ids.popitem(last=False)

    def _deliver(self, pdu: Any) -> None:
        """A deliver_sm: a delivery receipt -> the sink (raises when it could not be
        applied: the session answers ESME_RX_T_APPN and the SMSC sends it again)."""
        if (pdu.esm_class or 0) & 0x3C != ESM_DELIVERY_RECEIPT:
            self._mobile_originated(pdu)
            return
        receipt = parse_receipt(pdu.short_message, getattr(pdu, "receipted_message_id", None),
                                getattr(pdu, "message_state", None), self.id_format)
        if receipt.outcome is None:
            return
        source = pdu.source_addr.decode("ascii", "replace") if isinstance(
            pdu.source_addr, bytes) else str(pdu.source_addr or "")
        reference_back = getattr(pdu, "user_message_reference", None)
        with self._lock:
            delivery_id = self._ids.get(receipt.message_id, "")
        self._sink(Receipt(
            receipt.outcome, f"SMSC receipt: {receipt.words}", delivery_id=delivery_id,
            provider=self.name, provider_message_id=receipt.message_id,
            recipient=f"+{source}" if pdu.source_addr_ton == 1 else source,
            client_reference="" if reference_back is None else str(reference_back)))


    def _mobile_originated(self, pdu: Any) -> None:
        """A customer's own SMS (an answer to a survey: "NPS 9 ...") -> the server's
        `inbound_sms(msisdn, text)` service (server.surveys). Text that is no answer is
        logged and acknowledged; a failure to record (the database down) raises, so the
        SMSC sends it again."""
        inbound = self.context.services.get("inbound_sms")
        if inbound is None:
            log.info("smpp mobile-originated message ignored", provider=self.name)
            return
        source = pdu.source_addr.decode("ascii", "replace") if isinstance(
            pdu.source_addr, bytes) else str(pdu.source_addr or "")
        if pdu.source_addr_ton == 1 or source.isdigit():
            source = "+" + source.lstrip("+")
        inbound(source, mo_text(pdu.short_message or b"", pdu.data_coding or 0))


def mo_text(octets: bytes, data_coding: int) -> str:
    """A deliver_sm's short_message as text: UCS-2 (8) big-endian, Latin-1 (3), else the
    GSM-7 default alphabet one septet an octet (0 and the SMSC defaults)."""
    if isinstance(octets, str):
        return octets
    if data_coding == 8:
        return octets.decode("utf-16-be", "replace")
    if data_coding == 3:
        return octets.decode("latin-1")
    return decode_gsm7(octets)


register("smpp", SmppProvider)
