"""International e-mail addresses through the SMTP adapter (found by the new-user test: they
were accepted at Compose and then failed every attempt with `UnicodeEncodeError` for an hour).

- Against the real Postfix (STARTTLS, `smtputf8_enable`): an IDN domain (`exämple.no`) goes
  out as its A-label in RCPT TO and arrives; a UTF-8 local part (`ok-øystein@…`) is sent with
  SMTPUTF8 (RFC 6531) and arrives; an IDN return-path domain goes out as its A-label in MAIL
  FROM with and without SMTPUTF8 (the `Return-Path` Postfix writes on delivery).
- Against aiosmtpd with SMTPUTF8 switched off (Postfix always offers it here): the UTF-8
  local part is `Failed` at once, before MAIL FROM, so the fallback starts; the session stays
  usable for the next message; an IDN domain still goes through plain SMTP.
- A transaction broken by an error the adapter does not expect closes its session instead
  of leaving it open after MAIL FROM.
"""

from __future__ import annotations

import smtplib
import uuid
from email import message_from_bytes, message_from_string, policy
from email.message import EmailMessage
from pathlib import Path

import pytest
from aiosmtpd.controller import Controller

from server.delivery.model import Accepted, Failed, Outgoing, State
from server.delivery.providers.base import ProviderContext, build
from server.delivery.providers.smtp import SmtpProvider  # noqa: F401 (registers "smtp")
from tests.integration.delivery_fixtures import start_postfix, wait_for
from tests.postfix import BOUNCE_DOMAIN, DOMAIN, IDN_DOMAIN, IDN_DOMAIN_ASCII, free_port

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def postfix():
    postfix = start_postfix()
    yield postfix
    postfix.remove()


def outgoing(recipient: str, to_header: str) -> Outgoing:
    """What the dispatcher hands the adapter: the recipient as the outbox row holds it (the
    composer's normalised Unicode address) and an .eml whose To header is as the e-mail
    channel writes it (A-label domain; UTF-8 headers when the local part needs SMTPUTF8)."""
    n = uuid.uuid4().hex[:8]
    message = EmailMessage()
    message["From"] = "Fjordbank <faktura@fjordbank.no>"
    message["To"] = to_header
    message["Subject"] = "Kredittkortfaktura"
    message["Message-ID"] = f"<doc{n}@fjordbank.no>"
    message.set_content("Hei Øystein\n")
    utf8 = not to_header.isascii()
    content = message.as_bytes(policy=(policy.SMTPUTF8 if utf8 else policy.SMTP)
                               .clone(linesep="\r\n"))
    return Outgoing(f"01M8N1XH1T0X6MVPG205J{n[:5].upper()}", "nordkort", f"doc{n}", "c",
                    "email", recipient, content, "message/rfc822", f"<doc{n}@fjordbank.no>", 1)


IDN_BOUNCE_DOMAIN = "bounces.fjordbånk.test"  # on the wire:
IDN_BOUNCE_DOMAIN_ASCII = "bounces.xn--fjordbnk-f0a.test"


def provider(port: int, ca_file: Path | None = None, return_path_domain: str = BOUNCE_DOMAIN):
    settings = {"type": "smtp", "host": "127.0.0.1", "port": port, "timeout": 5,
                "return_path_domain": return_path_domain}
    if ca_file:
        settings.update(starttls=True, ca_file=str(ca_file))
    return build("relay", settings, ProviderContext(Path("."), {}, b"verp-secret"))


def test_an_idn_domain_goes_out_as_its_a_label_and_arrives(postfix):
    user = f"ok-idn-{uuid.uuid4().hex[:8]}"
    smtp = provider(postfix.port, postfix.ca_file)
    try:
        result = smtp.send(outgoing(f"{user}@{IDN_DOMAIN}", f"{user}@{IDN_DOMAIN_ASCII}"))
    finally:
        smtp.close()
    assert isinstance(result, Accepted), result
    [raw] = wait_for(lambda: postfix.mailbox(user, IDN_DOMAIN_ASCII),
                     "the message in the Postfix mailbox", explain=lambda: postfix.log()[-2000:])
    assert message_from_bytes(raw, policy=policy.default)["Subject"] == "Kredittkortfaktura"
    assert f"to=<{user}@{IDN_DOMAIN_ASCII}>" in postfix.log()  # the envelope, as Postfix saw it


def test_a_utf8_local_part_is_sent_with_smtputf8_and_arrives(postfix):
    user = f"ok-øystein-{uuid.uuid4().hex[:8]}"
    smtp = provider(postfix.port, postfix.ca_file)
    try:
        result = smtp.send(outgoing(f"{user}@{DOMAIN}", f"Øystein Berg <{user}@{DOMAIN}>"))
    finally:
        smtp.close()
    assert isinstance(result, Accepted), result
    [raw] = wait_for(lambda: postfix.mailbox(user), "the message in the Postfix mailbox",
                     explain=lambda: postfix.log()[-2000:])
    received = message_from_string(raw.decode("utf-8"), policy=policy.SMTPUTF8)
    assert received["To"].addresses[0].addr_spec == f"{user}@{DOMAIN}"
    assert received["To"].addresses[0].display_name == "Øystein Berg"


@pytest.mark.parametrize("user", ["ok-rp-{}", "ok-rp-øystein-{}"])  # plain, SMTPUTF8
def test_an_idn_return_path_domain_goes_out_as_its_a_label(postfix, user: str):
    user = user.format(uuid.uuid4().hex[:8])
    smtp = provider(postfix.port, postfix.ca_file, return_path_domain=IDN_BOUNCE_DOMAIN)
    try:
        result = smtp.send(outgoing(f"{user}@{DOMAIN}", f"{user}@{DOMAIN}"))
    finally:
        smtp.close()
    assert isinstance(result, Accepted), result
    [raw] = wait_for(lambda: postfix.mailbox(user), "the message in the Postfix mailbox",
                     explain=lambda: postfix.log()[-2000:])
    received = message_from_bytes(raw, policy=policy.SMTPUTF8)
    return_path = received["Return-Path"].strip("<> ")
    assert return_path.startswith("bounces+")
    assert return_path.endswith(f"@{IDN_BOUNCE_DOMAIN_ASCII}")  # the envelope Postfix saw


class Relay:
    """aiosmtpd handler: records each MAIL FROM and each accepted message, per session."""

    def __init__(self):
        self.mail_from: list[str] = []
        self.messages: list[tuple[int, list[str], bool]] = []  # session, rcpt_tos, smtp_utf8

    async def handle_MAIL(self, server, session, envelope, address, mail_options):  # noqa: N802
        self.mail_from.append(address)
        envelope.mail_from = address
        envelope.mail_options.extend(mail_options)
        return "250 OK"

    async def handle_DATA(self, server, session, envelope):  # noqa: N802
        self.messages.append((id(session), list(envelope.rcpt_tos), envelope.smtp_utf8))
        return "250 2.0.0 Ok: queued as TEST1"


@pytest.fixture
def ascii_relay():
    handler = Relay()
    controller = Controller(handler, hostname="127.0.0.1", port=free_port(),
                            enable_SMTPUTF8=False)
    controller.start()
    yield handler, controller.port
    controller.stop()


def test_a_relay_without_smtputf8_fails_a_utf8_local_part_at_once(ascii_relay):
    handler, port = ascii_relay
    smtp = provider(port)
    try:
        refused = smtp.send(outgoing(f"øystein@{DOMAIN}", f"øystein@{DOMAIN}"))
        idn = smtp.send(outgoing(f"kari@{IDN_DOMAIN}", f"kari@{IDN_DOMAIN_ASCII}"))
        plain = smtp.send(outgoing(f"kari@{DOMAIN}", f"kari@{DOMAIN}"))
    finally:
        smtp.close()
    # permanent (no retries for an hour): the plan's fallback starts now
    assert isinstance(refused, Failed) and refused.state is State.FAILED
    assert "SMTPUTF8" in refused.reason and f"øystein@{DOMAIN}" in refused.reason
    assert len(handler.mail_from) == 2  # nothing was started for the refused one
    assert [m[1:] for m in handler.messages] == [([f"kari@{IDN_DOMAIN_ASCII}"], False),
                                                 ([f"kari@{DOMAIN}"], False)]
    assert isinstance(idn, Accepted) and isinstance(plain, Accepted)
    assert len({m[0] for m in handler.messages}) == 1  # the same (clean) session throughout


def test_an_unexpected_error_mid_transaction_closes_the_session(ascii_relay, monkeypatch):
    handler, port = ascii_relay
    sessions: list[smtplib.SMTP] = []
    original = smtplib.SMTP.rcpt

    def rcpt_once_broken(self, recip, options=()):
        sessions.append(self)
        if len(sessions) == 1:  # what the old adapter hit with a Unicode address
            raise UnicodeEncodeError("ascii", recip, 0, 1, "ordinal not in range(128)")
        return original(self, recip, options)

    monkeypatch.setattr(smtplib.SMTP, "rcpt", rcpt_once_broken)
    smtp = provider(port)
    try:
        with pytest.raises(UnicodeEncodeError):  # the dispatcher records it as a retry
            smtp.send(outgoing(f"kari@{DOMAIN}", f"kari@{DOMAIN}"))
        assert sessions[0].sock is None  # closed, not left open after MAIL FROM
        assert isinstance(smtp.send(outgoing(f"kari@{DOMAIN}", f"kari@{DOMAIN}")), Accepted)
    finally:
        smtp.close()
    assert sessions[1] is not sessions[0]
    assert [m[1] for m in handler.messages] == [[f"kari@{DOMAIN}"]]


def test_an_address_no_relay_could_take_is_bounced_without_a_transaction(ascii_relay):
    handler, port = ascii_relay
    smtp = provider(port)
    try:
        result = smtp.send(outgoing("kari@exa_mple.no", "kari@example.no"))
    finally:
        smtp.close()
    assert isinstance(result, Failed) and result.state is State.BOUNCED
    assert "'kari@exa_mple.no' cannot be sent" in result.reason
    assert handler.mail_from == []
