"""A stand-in of Digipost's REST API v8, from what Digipost publishes: the schema
(api_v8.xsd), the request examples of digipost.no/plattform/api and its security page,
and the reference client (github.com/digipost/digipost-api-client-java), whose invoice
data type comes from github.com/digipost/digipost-data-types:

- every request must carry `X-Digipost-UserId` (the broker), `Date`, `X-Content-SHA256`
  (checked against the body) and `X-Digipost-Signature`, verified with the broker's
  public key over Digipost's canonical request string (403 INVALID_SIGNATURE otherwise);
- `GET /` -> the entry point, with the `create_message` link;
- `POST /messages`: `multipart/vnd.digipost-v8+xml` with the `message` part
  (application/vnd.digipost-v8+xml) and one part per document whose filename is the
  document's uuid; a recipient who is no Digipost user -> 400 UNKNOWN_RECIPIENT; a
  message id used before -> 409 DUPLICATE_MESSAGE (nothing delivered twice);
  -> 200 `message-delivery` with status DELIVERED.
"""

from __future__ import annotations

import base64
import hashlib
from collections.abc import Mapping
from dataclasses import dataclass
from email import message_from_bytes, policy
from typing import Any

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa
from lxml import etree

from server.delivery.providers.digipost import DATATYPES, MEDIA_TYPE, V8, canonical_request
from tests.standins import Answer, StandIn

BROKER_ID = "704235"


def error(status: int, code: str, message: str, kind: str = "CLIENT_DATA") -> Answer:
    body = (f'<?xml version="1.0" encoding="UTF-8"?><error xmlns="{V8}">'
            f"<error-code>{code}</error-code><error-message>{message}</error-message>"
            f"<error-type>{kind}</error-type></error>")
    return status, {"Content-Type": MEDIA_TYPE}, body.encode()


@dataclass
class Letter:
    message_id: str
    recipient: str
    subject: str
    invoice: dict[str, str] | None
    pdf: bytes


class Digipost(StandIn):
    def __init__(self, key_file: Any, registered: set[str]):
        super().__init__()
        key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        key_file.write_bytes(key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption()))
        self.key_file = key_file
        self.public_key = key.public_key()
        self.registered = registered
        self.letters: list[Letter] = []
        self.duplicates = 0

    def _verified(self, method: str, path: str, headers: Mapping[str, str], body: bytes
                  ) -> Answer | None:
        lower = {k.lower(): v for k, v in headers.items()}
        if lower.get("x-digipost-userid") != BROKER_ID:
            return error(403, "UNKNOWN_USER_ID", "unknown broker", "CLIENT_TECHNICAL")
        digest = base64.b64encode(hashlib.sha256(body).digest()).decode()
        if lower.get("x-content-sha256") != digest or "date" not in lower:
            return error(400, "MISSING_CONTENT_HASH", "bad content hash", "CLIENT_TECHNICAL")
        try:
            self.public_key.verify(base64.b64decode(lower.get("x-digipost-signature", "")),
                                   canonical_request(method, path, headers),
                                   padding.PKCS1v15(), hashes.SHA256())
        except (InvalidSignature, ValueError):
            return error(403, "INVALID_SIGNATURE", "signature does not verify",
                         "CLIENT_TECHNICAL")
        return None

    def handle(self, method: str, path: str, headers: Mapping[str, str], body: bytes
               ) -> Answer:
        refused = self._verified(method, path, headers, body)
        if refused is not None:
            return refused
        if method == "GET" and path == "/":
            entry = (f'<?xml version="1.0" encoding="UTF-8"?><entrypoint xmlns="{V8}">'
                     f'<link rel="{self.url}/relations/create_message" uri="{self.url}/messages"'
                     f' media-type="{MEDIA_TYPE}"/>'
                     f'<link rel="{self.url}/relations/identify_recipient"'
                     f' uri="{self.url}/identification" media-type="{MEDIA_TYPE}"/>'
                     "</entrypoint>")
            return 200, {"Content-Type": MEDIA_TYPE}, entry.encode()
        if method == "POST" and path == "/messages":
            return self._message(headers, body)
        return error(404, "NOT_FOUND", path, "CLIENT_TECHNICAL")

    def _message(self, headers: Mapping[str, str], body: bytes) -> Answer:
        content_type = next(v for k, v in headers.items() if k.lower() == "content-type")
        if not content_type.startswith("multipart/vnd.digipost-v8+xml"):
            return error(415, "ILLEGAL_CONTENT_TYPE", content_type)
        multipart = message_from_bytes(
            f"Content-Type: {content_type}\r\n\r\n".encode() + body, policy=policy.HTTP)
        parts = list(multipart.iter_parts())  # type: ignore[attr-defined]
        if len(parts) < 2 or parts[0].get_content_type() != MEDIA_TYPE:
            return error(400, "DOCUMENTS_AND_FILES_MISMATCH", "a message part and a file")
        message = etree.fromstring(parts[0].get_payload(decode=True))
        ns = {"d": V8, "t": DATATYPES}
        document = message.find("d:primary-document", ns)
        files = {p.get_filename(): p.get_payload(decode=True) for p in parts[1:]}
        uuid = document.findtext("d:uuid", namespaces=ns) if document is not None else None
        if uuid not in files or document.findtext("d:file-type", namespaces=ns) != "pdf":
            return error(400, "DOCUMENTS_AND_FILES_MISMATCH", "primary document file")
        message_id = message.findtext("d:message-id", namespaces=ns) or ""
        recipient = message.find("d:recipient/*", ns)
        who = recipient.text if recipient is not None else ""
        if who not in self.registered:
            return error(400, "UNKNOWN_RECIPIENT", "the recipient is not a Digipost user")
        invoice_element = document.find("d:data-type/t:invoice", ns)
        invoice = None if invoice_element is None else {
            etree.QName(child).localname: child.text or "" for child in invoice_element}
        with self.lock:
            if any(letter.message_id == message_id for letter in self.letters):
                self.duplicates += 1
                return error(409, "DUPLICATE_MESSAGE", f"message {message_id} exists")
            self.letters.append(Letter(message_id, who, document.findtext(
                "d:subject", namespaces=ns) or "", invoice, files[uuid]))
        delivery = (f'<?xml version="1.0" encoding="UTF-8"?><message-delivery xmlns="{V8}">'
                    f"<message-id>{message_id}</message-id>"
                    "<delivery-method>DIGIPOST</delivery-method>"
                    f"<sender-id>{BROKER_ID}</sender-id><status>DELIVERED</status>"
                    f"<primary-document><uuid>{uuid}</uuid><file-type>pdf</file-type>"
                    "</primary-document></message-delivery>")
        return 200, {"Content-Type": MEDIA_TYPE}, delivery.encode()
