"""The email Kanal builds for an international address goes through a real SMTP session
(issue 11, item 6): Python's smtplib, as a delivery step would use it, against aiosmtpd
(an SMTP server from PyPI, RFC 6531 SMTPUTF8 switched on or off), on a free local port.

- `kari@bø.no`: the envelope and the To header carry the IDNA domain; plain ASCII SMTP.
- `kåre@bø.no`: SMTPUTF8 is negotiated and the server receives the address and the UTF-8
  header unchanged; a server without SMTPUTF8 is refused by the client before any data is
  sent (so a delivery step sees a clear error and can fall back), never mangled.
"""

from __future__ import annotations

import email
import json
import smtplib
import socket
from datetime import UTC, datetime
from email import policy

import pytest
from aiosmtpd.controller import Controller

from server.channels import Renderers
from server.channels.pdf import RenderedPdf
from server.compose.composer import ComposeRequest, compose
from server.compose.layouts import LayoutRegistry
from server.compose.model import Channel
from tests.pdf_inspect import BLANK_PDF

pytestmark = pytest.mark.integration

LAYOUTS = LayoutRegistry()


class FakePdf:
    def render(self, layout, composition) -> RenderedPdf:
        return RenderedPdf(content=BLANK_PDF, pages=1)


class Inbox:
    """aiosmtpd handler: keeps every envelope it accepts."""

    def __init__(self):
        self.envelopes = []

    async def handle_DATA(self, server, session, envelope):  # noqa: N802 - aiosmtpd's name
        self.envelopes.append(envelope)
        return "250 OK"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture(params=[True, False], ids=["smtputf8", "ascii-only"])
def smtp(request):
    inbox = Inbox()
    controller = Controller(inbox, hostname="127.0.0.1", port=free_port(),
                            enable_SMTPUTF8=request.param)
    controller.start()
    try:
        yield controller, inbox, request.param
    finally:
        controller.stop()


def built_message(address: str) -> tuple[email.message.EmailMessage, dict]:
    layout = LAYOUTS.get("card-invoice")
    data = json.loads(layout.sample_data())
    data["customer"]["email"] = address
    composition = compose(ComposeRequest(
        tenant="t", layout=layout, data=json.dumps(data), document_id="01JN4Q7W2E",
        now=datetime(2026, 3, 2, 7, 30, tzinfo=UTC), channels=(Channel.EMAIL,)))
    [output] = Renderers(FakePdf(), mark_zones=()).render(composition, layout)
    # What a delivery step reads back from the archived .eml
    parsed = email.message_from_string(output.content.decode("utf-8"), policy=policy.SMTPUTF8)
    return parsed, dict(output.facts)


def test_idna_domain_goes_through_plain_smtp(smtp) -> None:
    controller, inbox, _ = smtp
    message, facts = built_message("kari@bø.no")
    assert "smtputf8" not in facts
    with smtplib.SMTP(controller.hostname, controller.port) as client:
        client.send_message(message)
    [envelope] = inbox.envelopes
    assert envelope.rcpt_tos == ["kari@xn--b-5ga.no"] and not envelope.smtp_utf8
    received = email.message_from_bytes(envelope.original_content, policy=policy.default)
    assert received["To"].addresses[0].addr_spec == "kari@xn--b-5ga.no"


def test_non_ascii_local_part_needs_and_gets_smtputf8(smtp) -> None:
    controller, inbox, server_has_smtputf8 = smtp
    message, facts = built_message("kåre@bø.no")
    assert facts["smtputf8"] is True
    with smtplib.SMTP(controller.hostname, controller.port) as client:
        if not server_has_smtputf8:
            with pytest.raises(smtplib.SMTPNotSupportedError, match="SMTPUTF8"):
                client.send_message(message)
            assert inbox.envelopes == []
            return
        client.send_message(message)
    [envelope] = inbox.envelopes
    assert envelope.smtp_utf8 and envelope.rcpt_tos == ["kåre@xn--b-5ga.no"]
    received = email.message_from_string(envelope.original_content.decode("utf-8"),
                                         policy=policy.SMTPUTF8)
    assert received["To"].addresses[0].addr_spec == "kåre@xn--b-5ga.no"
    assert received["To"].addresses[0].display_name == "Kari Nordmann"
