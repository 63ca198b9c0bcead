"""server/channels/email_writer.py writes what the standard library writes: `qp_body` is
`quoprimime.body_encode` character for character (Hypothesis: every kind of byte, line
end, trailing whitespace, escapes at the line-length limit), a text part set through
`TEXT_CONTENT` is the part the standard library's content manager sets, and `as_bytes` is
`Message.as_bytes` for bodies with every kind of line end."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from email import policy as stdlib_policy
from email import quoprimime
from email.contentmanager import raw_data_manager
from email.message import EmailMessage

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from server.channels import email as email_channel
from server.channels.email_headers import SMTP_POLICY, SMTPUTF8_POLICY
from server.channels.email_writer import TEXT_CONTENT, as_bytes, qp_body
from server.compose.composer import ComposeRequest, compose
from server.compose.layouts import LayoutRegistry
from server.compose.model import Channel
from tests.pdf_inspect import BLANK_PDF

# Bytes that stress quoted-printable: "=", spaces and tabs (escaped at a line's end), line
# ends of every kind, controls, DEL, UTF-8 of Nordic letters, NBSP and U+2212, and letters.
_PIECES = st.sampled_from([b"=", b" ", b"\t", b"\r", b"\n", b"\r\n", b"\x00", b"\x0b",
                           b"\x0c", b"\x7f", b"\x85", "æøå ÆØÅ".encode(), "\u00a0".encode(),
                           "\u2212".encode(), b"a", b"Z", b"0", b".", b"<td style=\"x\">"])
_BODIES = st.one_of(
    st.binary(max_size=400),
    st.lists(st.one_of(_PIECES, st.binary(min_size=1, max_size=90)), max_size=60)
    .map(b"".join))


@settings(max_examples=1500, deadline=None)
@given(data=_BODIES, maxlinelen=st.sampled_from([4, 5, 6, 7, 8, 76, 78]))
def test_qp_body_is_body_encode(data: bytes, maxlinelen: int) -> None:
    assert qp_body(data, maxlinelen) == quoprimime.body_encode(data.decode("latin-1"),
                                                              maxlinelen)


def test_qp_body_refuses_a_line_too_short_as_body_encode() -> None:
    with pytest.raises(ValueError):
        quoprimime.body_encode("x", 3)
    with pytest.raises(ValueError):
        qp_body(b"x", 3)


@settings(max_examples=300, deadline=None)
@given(text=st.text(max_size=300), subtype=st.sampled_from(["plain", "html"]),
       cte=st.sampled_from(["quoted-printable", "base64", None]),
       policy=st.sampled_from([SMTP_POLICY, SMTPUTF8_POLICY, stdlib_policy.SMTP]))
def test_text_content_sets_the_stdlib_part(text, subtype, cte, policy) -> None:
    ours, theirs = EmailMessage(policy=policy), EmailMessage(policy=policy)
    ours.set_content(text, subtype=subtype, charset="utf-8", cte=cte,
                     content_manager=TEXT_CONTENT)
    theirs.set_content(text, subtype=subtype, charset="utf-8", cte=cte,
                       content_manager=raw_data_manager)
    assert as_bytes(ours, policy) == theirs.as_bytes(policy=policy)
    assert ours.get_content() == theirs.get_content()


@settings(max_examples=300, deadline=None)
@given(body=st.lists(st.sampled_from(["line", "", "=", " ", "\r\n", "\n", "\r", "ø"]),
                     max_size=40).map("".join))
def test_as_bytes_is_message_as_bytes(body: str) -> None:
    message = EmailMessage(policy=SMTP_POLICY)
    message["Subject"] = "x"
    message.set_payload(body.encode("utf-8").decode("ascii", "surrogateescape"))
    alternative = EmailMessage(policy=SMTP_POLICY)
    alternative.set_content("text with\nlines\n", cte="quoted-printable")
    alternative.add_alternative("<p>html</p>\r\n", subtype="html", cte="7bit")
    for written in (message, alternative):
        for policy in (SMTP_POLICY, SMTPUTF8_POLICY, stdlib_policy.default):
            assert as_bytes(written, policy) == written.as_bytes(policy=policy)


_LAYOUTS = LayoutRegistry()


@pytest.mark.parametrize(("layout_id", "sample"), [
    ("card-invoice", "sample.json"), ("card-invoice", "sample-sv-SE.json"),
    ("welcome-letter", "sample.json"), ("payment-reminder", "sample.json")])
def test_messages_are_those_of_the_stdlib_content_manager(layout_id, sample,
                                                          monkeypatch) -> None:
    layout = _LAYOUTS.get(layout_id)
    data = (layout.path / sample).read_text(encoding="utf-8")
    composition = compose(ComposeRequest(
        tenant="nordkort", layout=layout, data=data, document_id="01JN4Q7W2E",
        now=datetime(2026, 3, 2, 7, 30, tzinfo=UTC), channels=(Channel.EMAIL,)))
    parts = email_channel.message_parts(composition, layout)
    attachment = BLANK_PDF if parts.settings.attach_pdf else None
    ours = email_channel.message_bytes(parts, attachment)
    monkeypatch.setattr(email_channel, "TEXT_CONTENT", raw_data_manager)
    theirs = email_channel.build_message(parts, attachment).as_bytes(policy=parts.policy)
    assert ours == theirs
    assert json.dumps(parts.html.html)  # a real HTML body went through


@settings(max_examples=1000, deadline=None)
@given(html=st.lists(st.sampled_from(["\r", "\n", "\r\n", "\r\r\n", "a", "<", "ø", "\u00a0",
                                      "\u2212", "\U0001f600", " "]), max_size=60).map("".join)
       | st.text(st.characters(blacklist_categories=("Cs",)), max_size=60))
def test_html_size_is_the_size_of_the_html_as_sent(html: str) -> None:
    """`email.html_size` counts what it did by writing the text out: CRLF line ends, UTF-8."""
    sent = html.replace("\r\n", "\n").replace("\n", "\r\n").encode("utf-8")
    assert email_channel.html_size(html) == len(sent)
