"""The Finvoice Transmission Frame: how a Finvoice travels in the Finnish Finvoice
forwarding service (banks and e-invoice operators), as the Finvoice implementation
guidelines publish it (Finance Finland, "Finvoice 3.0 Implementation Guidelines", ch. 9.1
"Message transmission frame", and the frame models of the guidelines and of the
Finvoice/Finvoiceack/SenderInfo examples): a SOAP 1.1 envelope whose header is an ebXML
Message Service 2.0 `MessageHeader`, followed by the Finvoice document itself::

    <SOAP-ENV:Envelope xmlns:SOAP-ENV="http://schemas.xmlsoap.org/soap/envelope/"
        xmlns:xlink="http://www.w3.org/1999/xlink"
        xmlns:eb="http://www.oasis-open.org/committees/ebxml-msg/schema/msg-header-2_0.xsd">
      <SOAP-ENV:Header>
        <eb:MessageHeader SOAP-ENV:mustUnderstand="1" eb:version="2.0">
          <eb:From><eb:PartyId>003728470514</eb:PartyId><eb:Role>Sender</eb:Role></eb:From>
          <eb:From><eb:PartyId>NDEAFIHH</eb:PartyId><eb:Role>Intermediator</eb:Role></eb:From>
          <eb:To><eb:PartyId>FI4950009420028730</eb:PartyId><eb:Role>Receiver</eb:Role></eb:To>
          <eb:To><eb:PartyId>OKOYFIHH</eb:PartyId><eb:Role>Intermediator</eb:Role></eb:To>
          <eb:CPAId>yoursandmycpa</eb:CPAId>
          <eb:ConversationId>2026025201883</eb:ConversationId>
          <eb:Service>Routing</eb:Service>
          <eb:Action>ProcessInvoice</eb:Action>
          <eb:MessageData>
            <eb:MessageId>...</eb:MessageId><eb:Timestamp>2026-03-02T09:00:00+00:00</eb:Timestamp>
          </eb:MessageData>
        </eb:MessageHeader>
      </SOAP-ENV:Header>
      <SOAP-ENV:Body>
        <eb:Manifest eb:id="Manifest" eb:version="2.0">
          <eb:Reference eb:id="Finvoice" xlink:href="...the MessageId...">
            <eb:Schema eb:location="http://www.finanssiala.fi/finvoice/finvoice.xsd"
                       eb:version="3.0"/>
          </eb:Reference>
        </eb:Manifest>
      </SOAP-ENV:Body>
    </SOAP-ENV:Envelope>
    <?xml version="1.0" encoding="UTF-8"?>
    <Finvoice Version="3.0">...

The sender is the seller's e-invoice address (its OVT code, 0037 + the Y-tunnus without
the dash, unless the bank gave another) with its bank's BIC as intermediator; the receiver
a consumer's e-invoice address (InvoiceRecipientAddress, usually their IBAN) with their
bank's BIC. The Finvoice repeats them in `MessageTransmissionDetails` (FromIdentifier,
FromIntermediator, ToIdentifier, ToIntermediator, MessageIdentifier, MessageTimeStamp),
which the guidelines ask to match the frame: `transmitted` adds it to the archived
Finvoice (which leaves routing out, server.channels.einvoice.finvoice) for the copy sent.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from datetime import datetime

from lxml import etree

SOAP_ENV = "http://schemas.xmlsoap.org/soap/envelope/"
EB = "http://www.oasis-open.org/committees/ebxml-msg/schema/msg-header-2_0.xsd"
XLINK = "http://www.w3.org/1999/xlink"
CPA_ID = "yoursandmycpa"  # the guidelines' fixed CPAId of the forwarding service
SERVICE, ACTION = "Routing", "ProcessInvoice"
SCHEMA_LOCATION = "http://www.finanssiala.fi/finvoice/finvoice.xsd"
SCHEMA_VERSION = "3.0"
NS = {"SOAP-ENV": SOAP_ENV, "eb": EB, "xlink": XLINK}
_Y_TUNNUS = re.compile(r"^(\d{7})-?(\d)$")


class NotFinvoice(ValueError):
    """The archived output is no Finvoice 3.0 document."""


@dataclass(frozen=True, slots=True)
class Routing:
    """The frame's parties and message data. Addresses: 2..35 characters (Finvoice's
    ElectronicAddrIdType); intermediators: BICs."""

    sender: str
    sender_intermediator: str
    receiver: str
    receiver_intermediator: str
    message_id: str  # MessageId = MessageIdentifier, at most 48 characters
    timestamp: datetime  # timezone-aware
    conversation_id: str = ""


def message_identifier(message_id: str) -> str:
    """The frame's MessageId for a delivery's message id: the id itself when it fits the
    Finvoice MessageIdentifier (2..48 characters), else a digest of it; the same on every
    attempt, so the operator can tell a resend of the same message."""
    if 2 <= len(message_id) <= 48 and message_id.isascii():
        return message_id
    return "kanal-" + hashlib.sha256(message_id.encode()).hexdigest()[:40]


def ovt_code(y_tunnus: str | None) -> str:
    """The OVT code (e-invoice address) of a Finnish business id: "2847051-4" ->
    "003728470514"; "" when `y_tunnus` is no Y-tunnus."""
    found = _Y_TUNNUS.match((y_tunnus or "").strip())
    return f"0037{found.group(1)}{found.group(2)}" if found else ""


def parse_finvoice(content: bytes) -> etree._Element:
    """The archived Finvoice's root; NotFinvoice when it is not one."""
    try:
        root = etree.fromstring(content, etree.XMLParser(resolve_entities=False))
    except etree.XMLSyntaxError as exc:
        raise NotFinvoice(f"not XML: {exc}") from exc
    if root.tag != "Finvoice" or root.get("Version") != SCHEMA_VERSION:
        raise NotFinvoice(f"not a Finvoice {SCHEMA_VERSION} document (root {root.tag!r})")
    return root


def frame(routing: Routing) -> bytes:
    """The SOAP envelope with its MessageHeader and Manifest (module docstring), UTF-8."""
    envelope = etree.Element(f"{{{SOAP_ENV}}}Envelope", nsmap=NS)
    header = etree.SubElement(etree.SubElement(envelope, f"{{{SOAP_ENV}}}Header"),
                              f"{{{EB}}}MessageHeader",
                              {f"{{{SOAP_ENV}}}mustUnderstand": "1", f"{{{EB}}}version": "2.0"})
    for side, parties in (("From", ((routing.sender, "Sender"),
                                    (routing.sender_intermediator, "Intermediator"))),
                          ("To", ((routing.receiver, "Receiver"),
                                  (routing.receiver_intermediator, "Intermediator")))):
        for party, role in parties:
            el = etree.SubElement(header, f"{{{EB}}}{side}")
            _eb(el, "PartyId", party)
            _eb(el, "Role", role)
    _eb(header, "CPAId", CPA_ID)
    _eb(header, "ConversationId", routing.conversation_id)
    _eb(header, "Service", SERVICE)
    _eb(header, "Action", ACTION)
    data = etree.SubElement(header, f"{{{EB}}}MessageData")
    _eb(data, "MessageId", routing.message_id)
    _eb(data, "Timestamp", routing.timestamp.isoformat(timespec="seconds"))
    manifest = etree.SubElement(etree.SubElement(envelope, f"{{{SOAP_ENV}}}Body"),
                                f"{{{EB}}}Manifest",
                                {f"{{{EB}}}id": "Manifest", f"{{{EB}}}version": "2.0"})
    reference = etree.SubElement(manifest, f"{{{EB}}}Reference",
                                 {f"{{{EB}}}id": "Finvoice",
                                  f"{{{XLINK}}}href": routing.message_id})
    etree.SubElement(reference, f"{{{EB}}}Schema", {f"{{{EB}}}location": SCHEMA_LOCATION,
                                                    f"{{{EB}}}version": SCHEMA_VERSION})
    return etree.tostring(envelope, xml_declaration=True, encoding="UTF-8", pretty_print=True)


def transmitted(finvoice: etree._Element, routing: Routing) -> bytes:
    """The Finvoice as sent: the archived one with `MessageTransmissionDetails` (its first
    element, Finvoice 3.0 XSD) holding the frame's parties and message data; one the
    document had already is replaced. `finvoice` is not changed."""
    root = etree.fromstring(etree.tostring(finvoice))
    for old in root.findall("MessageTransmissionDetails"):
        root.remove(old)
    details = etree.Element("MessageTransmissionDetails")
    sender = etree.SubElement(details, "MessageSenderDetails")
    etree.SubElement(sender, "FromIdentifier").text = routing.sender
    etree.SubElement(sender, "FromIntermediator").text = routing.sender_intermediator
    receiver = etree.SubElement(details, "MessageReceiverDetails")
    etree.SubElement(receiver, "ToIdentifier").text = routing.receiver
    etree.SubElement(receiver, "ToIntermediator").text = routing.receiver_intermediator
    message = etree.SubElement(details, "MessageDetails")
    etree.SubElement(message, "MessageIdentifier").text = routing.message_id
    etree.SubElement(message, "MessageTimeStamp").text = routing.timestamp.isoformat(
        timespec="seconds")
    root.insert(0, details)
    return etree.tostring(root, xml_declaration=True, encoding="UTF-8", pretty_print=True)


def message(finvoice: etree._Element, routing: Routing) -> bytes:
    """What the operator receives: the frame, then the Finvoice (two XML documents, as in
    the guidelines' models)."""
    return frame(routing) + transmitted(finvoice, routing)


def _eb(parent: etree._Element, name: str, text: str) -> None:
    etree.SubElement(parent, f"{{{EB}}}{name}").text = text
