"""Bounces: VERP return paths, RFC 3464 delivery status notifications -> `Receipt`s, and the
SMTP listener (aiosmtpd) the relay sends them to.

Return path (VERP, one per delivery)::

    bounces+<delivery id>-<tag>@<return path domain>

`tag` is 8 hex digits of HMAC-SHA256(secret, delivery id), so a forged bounce cannot move a
delivery; the relay routes the return-path domain to this listener (Postfix:
`transport_maps`, `bounces.bank.no smtp:[kanal-host]:2525`).

DSN parsing uses the standard library's email parser: a `multipart/report;
report-type=delivery-status` message whose `message/delivery-status` part holds the
per-message fields (`Original-Envelope-Id`) and one block per recipient (`Action`,
`Status`, `Diagnostic-Code`, RFC 3464 §2.3). flufl.bounce was considered, but its API
returns only the failed addresses (`scan_message`, `all_failures`), not the Status, the
Action or the Diagnostic-Code, which Kanal needs to tell 5.x.x from 4.x.x, to record a
success DSN as `delivered`, and to keep the relay's own words. A message sent with SMTPUTF8
(a non-ASCII local part) is reported in a `message/global-delivery-status` part (RFC 6533:
the same fields in UTF-8; Postfix writes it 8bit), which is read the same way. Mapping
(RFC 3463 classes):

    Action: delivered                       -> delivered (final: a later failure DSN
                                               for it changes nothing)
    Action: relayed | expanded              -> delivered, not final (a later hop may
                                               still bounce it: then bounced)
    Action: failed,  Status 5.x.x           -> bounced (permanent: the fallback is due)
    Action: failed,  Status 4.x.x           -> retry (Kanal sends again, with backoff)
    Action: delayed                         -> nothing (the relay still tries)
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import hashlib
import hmac
import quopri
import re
from collections.abc import Callable
from email import message_from_string, policy
from email.message import Message
from email.parser import HeaderParser

from aiosmtpd.controller import Controller

from server import logs
from server.delivery.model import Receipt

log = logs.get_logger(__name__)

_VERP = re.compile(r"^bounces\+(?P<id>[0-9A-Za-z]{26})-(?P<tag>[0-9a-f]{8})@", re.IGNORECASE)


def _tag(secret: bytes, delivery_id: str) -> str:
    return hmac.new(secret, delivery_id.encode(), hashlib.sha256).hexdigest()[:8]


def return_path(delivery_id: str, domain: str, secret: bytes) -> str:
    return f"bounces+{delivery_id}-{_tag(secret, delivery_id)}@{domain}"


def delivery_of(address: str, secret: bytes) -> str | None:
    """The delivery id of a VERP address, if its tag is genuine."""
    match = _VERP.match(address.strip("<>"))
    if match is None:
        return None
    delivery_id = match["id"].upper()
    if not hmac.compare_digest(match["tag"].lower(), _tag(secret, delivery_id)):
        return None
    return delivery_id


def _status_blocks(report: Message) -> list[Message]:
    """[per-message fields, per-recipient fields...] of the delivery-status part."""
    for part in report.walk():
        if part.get_content_type() == "message/delivery-status":
            payload = part.get_payload()
            return [p for p in payload if isinstance(p, Message)] if isinstance(
                payload, list) else []
        if part.get_content_type() == "message/global-delivery-status":
            return _global_status_blocks(part)
    return []


def _global_status_blocks(part: Message) -> list[Message]:
    """The blocks of an RFC 6533 `message/global-delivery-status` part. The email package
    knows only `message/delivery-status` as a list of blocks and parses this type as one
    embedded message (the per-message fields its headers, the rest its body), so the text
    is put together again, decoded (8bit as is; base64 or quoted-printable are allowed
    too) and split at blank lines."""
    payload = part.get_payload()
    inner = payload[0] if isinstance(payload, list) and payload else None
    if isinstance(inner, Message):
        text = "".join(f"{name}: {value}\n" for name, value in inner.items())
        text += "\n" + str(inner.get_payload())
    else:
        text = str(payload)
    encoding = (part.get("Content-Transfer-Encoding") or "").strip().lower()
    try:
        if encoding == "base64":
            text = base64.b64decode("".join(text.split())).decode("utf-8", "replace")
        elif encoding == "quoted-printable":
            text = quopri.decodestring(text.encode()).decode("utf-8", "replace")
    except (binascii.Error, ValueError):
        return []
    chunks = re.split(r"\n[ \t]*\n", text.replace("\r\n", "\n").strip())
    parser = HeaderParser(policy=policy.compat32)
    return [parser.parsestr(chunk) for chunk in chunks if chunk.strip()]


def parse_dsn(raw: bytes, delivery_id: str = "") -> list[Receipt]:
    """An RFC 3464 DSN -> one `Receipt` per recipient block that changes something.
    `delivery_id` (from VERP) wins over the DSN's `Original-Envelope-Id`. A message that
    is not a DSN gives []."""
    # As text: a DSN about an SMTPUTF8 message is 8bit UTF-8 (the recipient's address in
    # its fields and words), which the bytes parser would keep only as surrogates.
    message = message_from_string(raw.decode("utf-8", "replace"), policy=policy.compat32)
    if message.get_content_type() != "multipart/report" or (
            message.get_param("report-type") or "").lower() != "delivery-status":
        return []
    blocks = _status_blocks(message)
    if not blocks:
        return []
    envelope_id = (blocks[0].get("Original-Envelope-Id") or "").strip()
    target = delivery_id or envelope_id
    receipts = []
    for block in blocks[1:]:
        action = (block.get("Action") or "").strip().lower()
        status = (block.get("Status") or "").strip()
        diagnostic = " ".join((block.get("Diagnostic-Code") or "").split())
        reason = f"{status} {diagnostic}".strip()
        if action in ("delivered", "relayed", "expanded"):
            outcome = "delivered"
        elif action == "failed" and status.startswith("5"):
            outcome = "bounced"
        elif action == "failed" and status.startswith("4"):
            outcome = "retry"
        else:
            continue  # delayed, or an unknown action: the relay is still trying
        receipts.append(Receipt(outcome=outcome, reason=f"DSN {action}: {reason}",
                                delivery_id=target,
                                final=action not in ("relayed", "expanded")))
    return receipts


class _Handler:
    def __init__(self, secret: bytes, sink: Callable[[Receipt], None]):
        self.secret = secret
        self.sink = sink

    async def handle_RCPT(self, server, session, envelope, address, rcpt_options):  # noqa: ANN001
        if delivery_of(address, self.secret) is None:
            return "550 5.1.1 not a Kanal return path"
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server, session, envelope):  # noqa: ANN001
        raw = envelope.original_content or envelope.content
        receipts = []
        for address in envelope.rcpt_tos:
            receipts += parse_dsn(raw, delivery_of(address, self.secret) or "")
        if not receipts:
            log.info("bounce listener: not a DSN (or nothing to act on)")
            return "250 OK"
        try:
            await asyncio.get_running_loop().run_in_executor(
                None, lambda: [self.sink(r) for r in receipts])
        except Exception as exc:  # the index is down: let the relay retry later
            log.warning("bounce not recorded; asking the relay to retry", error=repr(exc))
            return "451 4.3.0 temporarily unable to record the DSN"
        return "250 OK"


class BounceListener:
    """An SMTP listener (aiosmtpd) for DSNs sent to VERP return paths."""

    def __init__(self, host: str, port: int, secret: bytes, sink: Callable[[Receipt], None]):
        self.controller = Controller(_Handler(secret, sink), hostname=host, port=port,
                                     ready_timeout=10)

    def start(self) -> None:
        self.controller.start()
        log.info("bounce listener started", listen=self.address)

    @property
    def address(self) -> str:
        return f"{self.controller.hostname}:{self.controller.port}"

    def stop(self) -> None:
        self.controller.stop()
