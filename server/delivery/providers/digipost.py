"""Digipost (Norway): the print PDF and its invoice fields -> the recipient's Digipost.

Follows Digipost's published REST API v8 (api_v8.xsd and the request examples of
digipost.no/plattform/api, the Java client github.com/digipost/digipost-api-client-java,
the invoice data type of github.com/digipost/digipost-data-types):

    GET  {base}/                     the entry point; its link whose rel ends in
                                     `/relations/create_message` is where to send
    POST {create_message}            multipart/vnd.digipost-v8+xml: a `message` part
                                     (application/vnd.digipost-v8+xml) and the PDF, whose
                                     filename is the document's uuid
        <message xmlns="http://api.digipost.no/schema/v8">
          <message-id>{delivery message id}</message-id> <sender-id>...</sender-id>
          <recipient><personal-identification-number>11 digits</...> | <digipost-address>
          <primary-document><uuid/><subject/><file-type>pdf</file-type>
            <authentication-level>PASSWORD</...><sensitivity-level>NORMAL</...>
            <data-type><invoice xmlns="http://api.digipost.no/schema/datatypes">
              <due-date/><sum/><creditor-account>11 digits</...><kid/></invoice></data-type>
        -> 200 <message-delivery> with <status>DELIVERED</status>

Every request is signed (Digipost's security page): headers `Date`, `X-Digipost-UserId`
(the broker), `X-Content-SHA256` (base64 SHA-256 of the body) and `X-Digipost-Signature`:
base64 SHA256withRSA over "METHOD\\n/path\\n" + those headers (lower-case, sorted)
+ "\\n" for the (empty) parameters. Responses' signatures are not verified here.

Errors (`<error><error-code>`): UNKNOWN_RECIPIENT -> `bounced` (not a Digipost user; the
next channel, e.g. print, takes over); DUPLICATE_MESSAGE / MESSAGE_ALREADY_SENT: this
message id was delivered before (an answer lost) -> `delivered`. That is the idempotency:
the message id is the delivery's, identical on every attempt. The invoice data type is
only added for NOK with an 11-digit account (a pay button needs both); otherwise the PDF
goes as a letter. Limits before sending: Digipost's printability rules (at most 20 pages,
a 15 mm left margin; github.com/digipost/printability-validator), so a letter Digipost
may print stays printable.

Settings::

    [delivery.providers.digipost-no]
    type = "digipost"
    base_url = "https://api.digipost.no"
    broker_id = "123456"          # X-Digipost-UserId
    key_file = "/etc/kanal/digipost.pem"   # the broker's private key (PEM)
    sender_id = "123456"          # or per tenant: [delivery.tenants.<t>.digipost-no] sender_id
"""

from __future__ import annotations

import base64
import hashlib
import re
import threading
import uuid
from collections.abc import Mapping
from datetime import UTC, date, datetime
from email.utils import format_datetime
from pathlib import Path
from typing import Any
from xml.sax.saxutils import escape
from zoneinfo import ZoneInfo

from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa
from lxml import etree

from server.compose.text_limits import cut_at_space
from server.delivery.model import Accepted, Failed, Outgoing, Result, State
from server.delivery.providers import http
from server.delivery.providers.base import register
from server.delivery.providers.mailbox import Limits, MailboxProvider, national_id

V8 = "http://api.digipost.no/schema/v8"
DATATYPES = "http://api.digipost.no/schema/datatypes"
MEDIA_TYPE = "application/vnd.digipost-v8+xml"
SIGNED_HEADERS = ("date", "x-content-sha256", "x-digipost-userid")
NOT_REGISTERED = frozenset({"UNKNOWN_RECIPIENT", "UNKNOWN_USER"})
ALREADY = frozenset({"DUPLICATE_MESSAGE", "MESSAGE_ALREADY_SENT",
                     "DIGIPOST_MESSAGE_ALREADY_DELIVERED"})
SUBJECT_CHARS = 255  # api_v8.xsd: a document's subject, 1..255 characters


def canonical_request(method: str, path: str, headers: Mapping[str, str]) -> bytes:
    """Digipost's string to sign (RequestMessageSignatureUtil)."""
    lower = {k.lower(): v for k, v in headers.items()}
    signed = "".join(f"{k}: {lower[k]}\n" for k in sorted(SIGNED_HEADERS) if k in lower)
    return f"{method.upper()}\n{path.lower()}\n{signed}\n".encode()


def invoice_xml(payment: Mapping[str, Any]) -> str:
    """The Digipost invoice data type, or "" when the pay button cannot be offered."""
    account = str(payment.get("account", ""))
    if payment.get("currency") != "NOK" or not re.fullmatch(r"\d{11}", account):
        return ""
    due = datetime.combine(date.fromisoformat(payment["due_date"]), datetime.min.time(),
                           ZoneInfo("Europe/Oslo")).isoformat()
    kid = str(payment.get("reference", ""))[:25]
    return (f'<data-type><invoice xmlns="{DATATYPES}"><due-date>{due}</due-date>'
            f'<sum>{escape(str(payment["amount"]))}</sum>'
            f'<creditor-account>{account}</creditor-account>'
            + (f"<kid>{escape(kid)}</kid>" if kid else "") + "</invoice></data-type>")


def message_xml(message_id: str, sender_id: str, recipient: str, document_uuid: str,
                details: Mapping[str, Any]) -> bytes:
    who = ("personal-identification-number" if re.fullmatch(r"\d{11}", recipient)
           else "digipost-address")
    payment = details.get("payment") or {}
    subject = cut_at_space(str(details.get("subject", "")), SUBJECT_CHARS)
    return (f'<?xml version="1.0" encoding="UTF-8"?><message xmlns="{V8}">'
            f"<message-id>{escape(message_id)}</message-id>"
            + (f"<sender-id>{escape(sender_id)}</sender-id>" if sender_id else "")
            + f"<recipient><{who}>{escape(recipient)}</{who}></recipient>"
            f"<primary-document><uuid>{document_uuid}</uuid>"
            f"<subject>{escape(subject)}</subject>"
            "<file-type>pdf</file-type><authentication-level>PASSWORD</authentication-level>"
            "<sensitivity-level>NORMAL</sensitivity-level>"
            + (invoice_xml(payment) if payment else "")
            + "</primary-document></message>").encode()


class DigipostProvider(MailboxProvider):
    service = "digipost"
    documented_limits = Limits(max_pages=20, min_left_margin_mm=15)

    def __init__(self, name: str, settings: Mapping[str, Any], context: Any):
        super().__init__(name, settings, context)
        self.base_url = str(settings.get("base_url", "https://api.digipost.no")).rstrip("/")
        self.broker_id = str(settings.get("broker_id", ""))
        key_file = settings.get("key_file")
        key = serialization.load_pem_private_key(Path(key_file).read_bytes(), None) \
            if key_file else None
        if key is not None and not isinstance(key, rsa.RSAPrivateKey):
            raise ValueError(f"delivery.providers.{name}.key_file: Digipost signs with RSA")
        self.key = key
        self._create_message: str | None = None
        self._lock = threading.Lock()

    def _signed(self, method: str, url: str, body: bytes, content_type: str) -> http.Response:
        path = "/" + url.split("://", 1)[-1].partition("/")[2].partition("?")[0]
        headers = {"Date": format_datetime(datetime.now(UTC), usegmt=True),
                   "X-Digipost-UserId": self.broker_id, "Accept": MEDIA_TYPE,
                   "X-Content-SHA256": base64.b64encode(hashlib.sha256(body).digest()).decode()}
        if content_type:
            headers["Content-Type"] = content_type
        if self.key is not None:
            signature = self.key.sign(canonical_request(method, path, headers),
                                      padding.PKCS1v15(), hashes.SHA256())
            headers["X-Digipost-Signature"] = base64.b64encode(signature).decode()
        return http.request(method, url, body=body if method != "GET" else None,
                            headers=headers, timeout=self.timeout, ca_file=self.ca_file)

    def _create_message_url(self) -> str:
        with self._lock:
            if self._create_message is None:
                response = self._signed("GET", f"{self.base_url}/", b"", "")
                if response.status != 200:
                    raise http.Unreachable(f"Digipost entry point: {response.words}")
                links = etree.fromstring(response.body).iter(f"{{{V8}}}link")
                uri = next((link.get("uri") for link in links
                            if str(link.get("rel", "")).endswith("/relations/create_message")),
                           None)
                if uri is None:
                    raise http.Unreachable("Digipost entry point has no create_message link")
                self._create_message = uri if "://" in uri else f"{self.base_url}{uri}"
            return self._create_message

    def deliver(self, message: Outgoing, recipient: str, details: Mapping[str, Any]) -> Result:
        if recipient.isdigit():
            recipient = national_id("NO", recipient)
        refused = self.check(message.content)
        if refused is not None:
            return refused
        document_uuid = str(uuid.uuid5(uuid.NAMESPACE_URL, f"kanal:{message.message_id}"))
        xml = message_xml(message.message_id,
                          str(self.tenant_setting(message.tenant, "sender_id", "")),
                          recipient, document_uuid, details)
        boundary = f"kanal-{hashlib.sha256(message.message_id.encode()).hexdigest()[:24]}"
        body = b"".join([
            f"--{boundary}\r\nContent-Type: {MEDIA_TYPE}\r\n"
            'Content-Disposition: attachment; filename="message"\r\n\r\n'.encode(), xml,
            f"\r\n--{boundary}\r\nContent-Type: application/pdf\r\n"
            f'Content-Disposition: attachment; filename="{document_uuid}"\r\n\r\n'.encode(),
            message.content, f"\r\n--{boundary}--\r\n".encode()])
        try:
            response = self._signed("POST", self._create_message_url(), body,
                                    f"multipart/vnd.digipost-v8+xml; boundary={boundary}")
        except http.Unreachable as exc:
            return http.unreachable(exc, "Digipost")
        code = _error_code(response)
        if response.status in (200, 201):
            return Accepted(f"Digipost {response.status}: {_status(response)}",
                            provider_message_id=document_uuid, delivered=True)
        if code in ALREADY:
            return Accepted(f"Digipost: already delivered ({code})",
                            provider_message_id=document_uuid, delivered=True)
        retry = http.transient(response, "Digipost")
        if retry is not None:
            return retry
        if code in NOT_REGISTERED:
            return Failed(f"Digipost: recipient not registered ({code}: "
                          f"{_error_message(response)})", State.BOUNCED)
        return Failed(f"Digipost refused the message: {code or response.words}")


def _find(response: http.Response, name: str) -> str:
    try:
        root = etree.fromstring(response.body)
    except etree.XMLSyntaxError:
        return ""
    found = root.find(f".//{{{V8}}}{name}")
    if found is None:
        found = root.find(f".//{name}")
    return (found.text or "").strip() if found is not None else ""


def _error_code(response: http.Response) -> str:
    return _find(response, "error-code") if response.status >= 400 else ""


def _error_message(response: http.Response) -> str:
    return _find(response, "error-message")


def _status(response: http.Response) -> str:
    return _find(response, "status") or "accepted"


register("digipost", DigipostProvider)
