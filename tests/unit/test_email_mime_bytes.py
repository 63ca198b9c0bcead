"""The e-mail's fast writing of its PDF attachment (`email.message_bytes`) is the standard
library's message, byte for byte: the same MIME structure, headers, transfer encodings and
RFC 2045 base64 lines of 76 characters, for every length of attachment around a line's
57 bytes, for SMTPUTF8 messages, and for a real print PDF. Were the fast path to diverge,
the bytes would differ here; the parsed message is compared too, as a receiver reads it.
"""

from __future__ import annotations

import base64
import email
import hashlib
import json
from datetime import UTC, datetime
from email import policy
from email.message import EmailMessage
from email.utils import format_datetime

import pytest

from server.channels import email as email_channel
from server.channels.email import (
    MessageParts,
    build_message,
    message_bytes,
    message_parts,
    render_email,
)
from server.compose.composer import ComposeRequest, compose
from server.compose.model import Channel, Output
from tests.layouts import shipped
from tests.pdf_inspect import BLANK_PDF

LAYOUTS = shipped()
NOW = datetime(2026, 3, 2, 7, 30, tzinfo=UTC)


def _composition(layout_id: str = "card-invoice", sample: str = "sample.json", change=None):
    layout = LAYOUTS.get(layout_id)
    data = json.loads((layout.path / sample).read_text(encoding="utf-8"))
    if change:
        change(data)
    return compose(ComposeRequest(
        tenant="nordkort", layout=layout, data=json.dumps(data), document_id="01JN4Q7W2E",
        now=NOW, channels=(Channel.EMAIL,))), layout


def _stdlib(parts, attachment: bytes | None) -> bytes:
    """What the standard library writes for the same message, the PDF encoded by its own
    content manager and written by its own generator."""
    return build_message(parts, attachment).as_bytes(policy=parts.policy)


def _set_afterwards(parts, attachment: bytes | None) -> bytes:
    """The message as the e-mail channel built it before its multiparts were made with
    their boundaries: parts added, then every multipart's random boundary replaced by
    `=_kanal_<sha256 of the document id>_<n>` in walk order. The bytes must not change."""
    composition, settings = parts.composition, parts.settings
    message = EmailMessage(policy=parts.policy)
    message["From"] = settings.sender
    if settings.reply_to:
        message["Reply-To"] = settings.reply_to
    message["To"] = email_channel._to_header(composition, parts.address)
    message["Subject"] = parts.html.subject
    message["Date"] = format_datetime(composition.created_at)
    message["Message-ID"] = email_channel.message_id(composition, settings)
    if settings.marketing:
        targets = [f"<{parts.html.variables['email']['unsubscribe_url']}>"]
        if settings.unsubscribe_mailto:
            targets.append(f"<mailto:{settings.unsubscribe_mailto}"
                           f"?subject=unsubscribe%20{composition.document_id}>")
        message["List-Unsubscribe"] = ", ".join(targets)
        message["List-Unsubscribe-Post"] = "List-Unsubscribe=One-Click"
    message.set_content(parts.text, subtype="plain", charset="utf-8", cte="quoted-printable")
    message.add_alternative(parts.html.html, subtype="html", charset="utf-8",
                            cte="quoted-printable")
    if attachment is not None:
        message.add_attachment(attachment, maintype="application", subtype="pdf",
                               filename=email_channel._attachment_name(parts.layout,
                                                                       composition))
    message["Content-Language"] = composition.locale
    base = hashlib.sha256(composition.document_id.encode()).hexdigest()[:24]
    for number, part in enumerate(p for p in message.walk() if p.is_multipart()):
        part.set_boundary(f"=_kanal_{base}_{number}")
    return message.as_bytes(policy=parts.policy)


@pytest.mark.parametrize(("layout_id", "sample", "attach"), [
    ("card-invoice", "sample.json", True), ("card-invoice", "sample-sv-SE.json", True),
    ("card-invoice", "sample.json", False), ("welcome-letter", "sample.json", False),
    ("payment-reminder", "sample.json", True)])
def test_the_message_is_the_one_built_before(layout_id, sample, attach) -> None:
    """Same headers, structure, boundaries and bodies, byte for byte, as when the
    boundaries were set after the parts (marketing headers in the welcome letter)."""
    parts = message_parts(*_composition(layout_id, sample))
    attachment = _pseudo_pdf(3_000) if attach else None
    assert message_bytes(parts, attachment) == _set_afterwards(parts, attachment)


def test_an_smtputf8_message_is_the_one_built_before() -> None:
    def non_ascii_local_part(data):
        data["customer"]["email"] = "kåre@bø.no"

    parts = message_parts(*_composition(change=non_ascii_local_part))
    assert message_bytes(parts, BLANK_PDF) == _set_afterwards(parts, BLANK_PDF)


def _pseudo_pdf(size: int) -> bytes:
    seed = hashlib.sha256(str(size).encode()).digest()
    return (seed * (size // len(seed) + 1))[:size]


@pytest.mark.parametrize("size", [1, 2, 3, 56, 57, 58, 113, 114, 115, 57 * 40, 57 * 40 + 1])
def test_every_attachment_length_gives_the_stdlib_bytes(size: int) -> None:
    parts = message_parts(*_composition())
    attachment = _pseudo_pdf(size)
    assert message_bytes(parts, attachment) == _stdlib(parts, attachment)


def test_without_an_attachment_the_stdlib_writes_it_all() -> None:
    parts = message_parts(*_composition())
    assert message_bytes(parts, None) == _stdlib(parts, None)


def test_an_smtputf8_message_gives_the_stdlib_bytes() -> None:
    def non_ascii_local_part(data):
        data["customer"]["email"] = "kåre@bø.no"

    parts = message_parts(*_composition(change=non_ascii_local_part))
    assert parts.address.smtputf8
    attachment = _pseudo_pdf(10_001)
    assert message_bytes(parts, attachment) == _stdlib(parts, attachment)


def test_the_print_pdf_attachment_reads_back_as_the_stdlib_message() -> None:
    comp, layout = _composition(sample="sample-sv-SE.json")
    pdf = Output(channel=Channel.PRINT, media_type="application/pdf", content=BLANK_PDF,
                 sha256="", facts={})
    content = render_email(comp, layout, pdf=lambda: pdf).content
    parts = message_parts(comp, layout)
    assert content == _stdlib(parts, BLANK_PDF)

    fast = email.message_from_bytes(content, policy=policy.default)
    slow = email.message_from_bytes(_stdlib(parts, BLANK_PDF), policy=policy.default)
    assert [p.get_content_type() for p in fast.walk()] == [
        "multipart/mixed", "multipart/alternative", "text/plain", "text/html",
        "application/pdf"]
    for a, b in zip(fast.walk(), slow.walk(), strict=True):
        assert a.items() == b.items()
        if not a.is_multipart():
            assert a.get_content() == b.get_content()
    (attachment,) = fast.iter_attachments()
    assert attachment["Content-Transfer-Encoding"] == "base64"
    assert attachment.get_content() == BLANK_PDF
    head_end = content.index(b"\r\n\r\n", content.index(b"Content-Transfer-Encoding: base64"))
    body = content[head_end + 4:content.rindex(b"\r\n--")]  # ends with the last line's CRLF
    lines = body.split(b"\r\n")
    assert lines[-1] == b"" and 0 < len(lines[-2]) <= 76
    assert all(len(line) == 76 for line in lines[:-2]), "RFC 2045 lines of 76 characters"
    assert base64.b64decode(b"".join(lines)) == BLANK_PDF


def test_a_message_the_stdlib_writes_otherwise_is_left_to_it(monkeypatch) -> None:
    """Were the stand-in not the last line (a future generator writing an epilogue, say),
    the standard library writes the whole message: slower, never wrong."""
    parts = message_parts(*_composition())
    attachment = _pseudo_pdf(500)
    original = email_channel.build_message

    def with_epilogue(parts, attachment):
        message = original(parts, attachment)
        message.epilogue = "end"
        return message

    monkeypatch.setattr(email_channel, "build_message", with_epilogue)
    expected = with_epilogue(parts, attachment).as_bytes(policy=parts.policy)
    assert message_bytes(parts, attachment) == expected


def _plain_stdlib(parts, attachment: bytes | None, monkeypatch) -> bytes:
    """`_stdlib` with the standard library's own SMTP policy, whose header registry makes
    every header afresh."""
    plain = policy.SMTP.clone(utf8=True) if parts.address.smtputf8 else policy.SMTP
    with monkeypatch.context() as patched:
        patched.setattr(MessageParts, "policy", property(lambda self: plain))
        return build_message(parts, attachment).as_bytes(policy=plain)


def test_kept_header_objects_write_the_stdlib_bytes(monkeypatch) -> None:
    """The e-mail policy keeps the header objects its registry made (most repeat from
    message to message): messages written one after the other, each twice and in turns,
    so kept headers are reused, are the bytes of the standard library's own policy; ASCII
    and SMTPUTF8, with and without marketing headers, RFC 2047 names and subjects."""
    def non_ascii_local_part(data):
        data["customer"]["email"] = "kåre@bø.no"

    def long_foreign_name(data):
        data["customer"]["name"] = "Æsa Øvergård-Ågesen Üçgül Łęcka-Żółć"

    documents = [_composition(), _composition(sample="sample-sv-SE.json"),
                 _composition("welcome-letter"), _composition(change=non_ascii_local_part),
                 _composition(change=long_foreign_name), _composition("payment-reminder")]
    for _ in range(2):
        for composition, layout in documents:
            parts = message_parts(composition, layout)
            attachment = None if layout.id == "welcome-letter" else BLANK_PDF
            assert message_bytes(parts, attachment) == _plain_stdlib(parts, attachment,
                                                                     monkeypatch)


def test_a_repeated_header_is_made_once() -> None:
    first = build_message(message_parts(*_composition()), None)
    other = build_message(message_parts(*_composition(sample="sample-sv-SE.json")), None)
    assert first["From"] is other["From"]
    assert first["MIME-Version"] is other["MIME-Version"]
    assert first["Date"] == other["Date"] and first["To"] is not other["To"]
