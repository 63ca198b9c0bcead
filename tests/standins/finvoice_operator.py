"""A stand-in of a Finvoice operator's receiving endpoint (the sender's bank or e-invoice
operator in the Finnish Finvoice forwarding service), built from the published frame: the
Finvoice Transmission Frame of Finance Finland's "Finvoice 3.0 Implementation Guidelines"
(ch. 9.1, and the frame models in the guidelines and their examples): a SOAP 1.1 envelope
with an ebXML MS 2.0 `eb:MessageHeader` -- `eb:From` PartyId/Role Sender and Intermediator,
`eb:To` Receiver and Intermediator, `eb:CPAId` yoursandmycpa, `eb:ConversationId`,
`eb:Service` Routing, `eb:Action` ProcessInvoice, `eb:MessageData` MessageId and Timestamp
-- and a Body `eb:Manifest` whose `eb:Reference eb:id="Finvoice"` points (xlink:href) at the
MessageId, with the Finvoice XSD's location and version 3.0; the Finvoice follows the
envelope. Parsed here on its own, with none of Kanal's frame code.

It checks what an operator checks before routing: the header (mustUnderstand, both roles
on each side, the fixed CPAId, Service and Action, a MessageId and a timestamp), the
manifest's reference, that the Finvoice validates against the Finvoice 3.0 XSD the tests
use (tests/schemas/finvoice) and that its MessageTransmissionDetails repeat the frame.
Answers (SOAP 1.1 §6.2: faults with HTTP 500):

    accepted        200, an ebXML envelope with an eb:Acknowledgment (RefToMessageId)
    a resend        200 again for a MessageId it has (counted in `repeats`)
    unknown receiver (`unknown` addresses) or a bad frame or Finvoice
                    500, SOAP Fault `Client` with the reason
    `outages` > 0   503, SOAP Fault `Server` ("temporarily unavailable"), one per request
    `slow` > 0      takes the message, then answers only after `slow_seconds` (the
                    sender's timeout loses the answer), one per request
    wrong credentials 401
"""

from __future__ import annotations

import base64
import time
import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime

from lxml import etree

from tests.einvoice_validation import validate_finvoice
from tests.standins import Answer, StandIn

SOAP = "http://schemas.xmlsoap.org/soap/envelope/"
EB = "http://www.oasis-open.org/committees/ebxml-msg/schema/msg-header-2_0.xsd"
XLINK = "http://www.w3.org/1999/xlink"
USERNAME, PASSWORD = "fjordbank-fi", "s3cret-operator"
OPERATOR_BIC = "NDEAFIHH"


class Refused(Exception):
    """The message breaks the frame's rules: a Client fault."""


@dataclass
class Received:
    message_id: str
    sender: str
    sender_intermediator: str
    receiver: str
    receiver_intermediator: str
    conversation_id: str
    timestamp: str
    finvoice: bytes
    operator_id: str


def _one(parent: etree._Element, path: str) -> str:
    found = parent.findall(path, {"eb": EB, "SOAP-ENV": SOAP})
    if len(found) != 1 or not (found[0].text or "").strip():
        raise Refused(f"frame: expected one {path} with a value, found {len(found)}")
    return found[0].text.strip()


def _parties(header: etree._Element, side: str) -> dict[str, str]:
    out = {}
    for party in header.findall(f"eb:{side}", {"eb": EB}):
        out[_one(party, "eb:Role")] = _one(party, "eb:PartyId")
    if set(out) != ({"Sender", "Intermediator"} if side == "From" else
                    {"Receiver", "Intermediator"}):
        raise Refused(f"frame: eb:{side} roles {sorted(out)}")
    return out


def split(body: bytes) -> tuple[bytes, bytes]:
    """The frame and the Finvoice: two XML documents, one after the other."""
    second = body.find(b"<?xml", 1)
    if second < 0:
        raise Refused("no Finvoice after the SOAP frame")
    return body[:second], body[second:]


def read(body: bytes) -> Received:
    """Check the frame and the Finvoice (module docstring); Refused says what is wrong."""
    head, document = split(body)
    envelope = etree.fromstring(head)
    if envelope.tag != f"{{{SOAP}}}Envelope":
        raise Refused(f"frame: root {envelope.tag}")
    header = envelope.find(f"{{{SOAP}}}Header/{{{EB}}}MessageHeader")
    if header is None or header.get(f"{{{SOAP}}}mustUnderstand") != "1" \
            or header.get(f"{{{EB}}}version") != "2.0":
        raise Refused("frame: no eb:MessageHeader (mustUnderstand 1, version 2.0)")
    sender, receiver = _parties(header, "From"), _parties(header, "To")
    fixed = {"eb:CPAId": "yoursandmycpa", "eb:Service": "Routing", "eb:Action": "ProcessInvoice"}
    for path, value in fixed.items():
        if _one(header, path) != value:
            raise Refused(f"frame: {path} is not {value}")
    conversation = header.find(f"{{{EB}}}ConversationId")
    if conversation is None:
        raise Refused("frame: no eb:ConversationId")
    message_id = _one(header, "eb:MessageData/eb:MessageId")
    timestamp = _one(header, "eb:MessageData/eb:Timestamp")
    datetime.fromisoformat(timestamp)
    reference = envelope.find(f"{{{SOAP}}}Body/{{{EB}}}Manifest/{{{EB}}}Reference")
    if reference is None or reference.get(f"{{{EB}}}id") != "Finvoice" \
            or reference.get(f"{{{XLINK}}}href") != message_id:
        raise Refused("frame: the manifest does not reference the Finvoice by its MessageId")
    schema = reference.find(f"{{{EB}}}Schema")
    if schema is None or schema.get(f"{{{EB}}}version") != "3.0":
        raise Refused("frame: the manifest names no Finvoice 3.0 schema")
    report = validate_finvoice(document)
    if not report.ok:
        raise Refused(f"Finvoice invalid: {report.errors[:3]}")
    finvoice = etree.fromstring(document)
    details = finvoice.find("MessageTransmissionDetails")
    if details is None:
        raise Refused("Finvoice: no MessageTransmissionDetails")
    repeated = {
        "MessageSenderDetails/FromIdentifier": sender["Sender"],
        "MessageSenderDetails/FromIntermediator": sender["Intermediator"],
        "MessageReceiverDetails/ToIdentifier": receiver["Receiver"],
        "MessageReceiverDetails/ToIntermediator": receiver["Intermediator"],
        "MessageDetails/MessageIdentifier": message_id}
    for path, value in repeated.items():
        if details.findtext(path) != value:
            raise Refused(f"Finvoice: {path} {details.findtext(path)!r} is not the frame's "
                          f"{value!r}")
    return Received(message_id, sender["Sender"], sender["Intermediator"],
                    receiver["Receiver"], receiver["Intermediator"], conversation.text or "",
                    timestamp, document, f"op-{uuid.uuid4().hex[:16]}")


def fault(code: str, text: str, status: int) -> Answer:
    body = (f'<?xml version="1.0" encoding="UTF-8"?><SOAP-ENV:Envelope xmlns:SOAP-ENV="{SOAP}">'
            f"<SOAP-ENV:Body><SOAP-ENV:Fault><faultcode>SOAP-ENV:{code}</faultcode>"
            f"<faultstring>{text}</faultstring></SOAP-ENV:Fault></SOAP-ENV:Body>"
            "</SOAP-ENV:Envelope>")
    return status, {"Content-Type": "text/xml; charset=utf-8"}, body.encode()


def acknowledgment(received: Received) -> Answer:
    """The operator's ebXML answer: its own MessageId, an Acknowledgment of ours."""
    now = datetime.now(UTC).isoformat(timespec="seconds")
    body = (f'<?xml version="1.0" encoding="UTF-8"?><SOAP-ENV:Envelope xmlns:SOAP-ENV="{SOAP}" '
            f'xmlns:eb="{EB}"><SOAP-ENV:Header>'
            '<eb:MessageHeader SOAP-ENV:mustUnderstand="1" eb:version="2.0">'
            f"<eb:From><eb:PartyId>{OPERATOR_BIC}</eb:PartyId><eb:Role>Intermediator</eb:Role>"
            f"</eb:From><eb:To><eb:PartyId>{received.sender}</eb:PartyId><eb:Role>Sender"
            "</eb:Role></eb:To><eb:CPAId>yoursandmycpa</eb:CPAId><eb:ConversationId>"
            f"{received.conversation_id}</eb:ConversationId><eb:Service>Routing</eb:Service>"
            "<eb:Action>Acknowledgment</eb:Action><eb:MessageData>"
            f"<eb:MessageId>{received.operator_id}</eb:MessageId><eb:Timestamp>{now}"
            f"</eb:Timestamp><eb:RefToMessageId>{received.message_id}</eb:RefToMessageId>"
            "</eb:MessageData></eb:MessageHeader>"
            '<eb:Acknowledgment SOAP-ENV:mustUnderstand="1" eb:version="2.0">'
            f"<eb:Timestamp>{now}</eb:Timestamp><eb:RefToMessageId>{received.message_id}"
            "</eb:RefToMessageId></eb:Acknowledgment></SOAP-ENV:Header><SOAP-ENV:Body/>"
            "</SOAP-ENV:Envelope>")
    return 200, {"Content-Type": "text/xml; charset=utf-8"}, body.encode()


class FinvoiceOperator(StandIn):
    def __init__(self, unknown: set[str] | None = None, path: str = "/finvoice"):
        super().__init__()
        self.unknown = unknown or set()  # receiver addresses no bank knows
        self.path = path
        self.outages = 0  # answer this many requests with a Server fault (503)
        self.slow, self.slow_seconds = 0, 8.0  # take this many, answer them late
        self.received: dict[str, Received] = {}  # by MessageId
        self.repeats = 0
        self.refused: list[str] = []

    def handle(self, method: str, path: str, headers: Mapping[str, str], body: bytes
               ) -> Answer:
        expected = "Basic " + base64.b64encode(f"{USERNAME}:{PASSWORD}".encode()).decode()
        if headers.get("Authorization") != expected:
            return 401, {"WWW-Authenticate": 'Basic realm="finvoice"'}, b"unauthorized"
        if method != "POST" or path != self.path:
            return 404, {}, path.encode()
        with self.lock:
            answer = self._take(body)
            late = self.slow > 0 and answer[0] == 200
            self.slow -= 1 if late else 0
        if late:
            time.sleep(self.slow_seconds)
        return answer

    def _take(self, body: bytes) -> Answer:
        if self.outages > 0:
            self.outages -= 1
            return fault("Server", "Service temporarily unavailable, try again later", 503)
        try:
            received = read(body)
        except (Refused, etree.XMLSyntaxError, ValueError) as exc:
            self.refused.append(str(exc))
            return fault("Client", str(exc), 500)
        if received.message_id in self.received:
            self.repeats += 1
            return acknowledgment(self.received[received.message_id])
        if received.receiver in self.unknown:
            reason = (f"Receiver not found: e-invoice address {received.receiver} is unknown "
                      f"at {received.receiver_intermediator}")
            self.refused.append(reason)
            return fault("Client", reason, 500)
        self.received[received.message_id] = received
        return acknowledgment(received)
