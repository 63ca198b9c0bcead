"""The SMTP adapter against a relay that insists on STARTTLS and AUTH (aiosmtpd as the
relay: Postfix's SASL needs Cyrus or Dovecot, which the tests do not install), reusing one
connection for several messages."""

from __future__ import annotations

import ssl
from pathlib import Path

import pytest
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult, LoginPassword

from server.delivery.model import Accepted, Outgoing, Retry
from server.delivery.providers.base import ProviderContext, build
from server.delivery.providers.smtp import SmtpProvider  # noqa: F401 (registers "smtp")
from tests.postfix import _certificates, free_port

pytestmark = pytest.mark.integration


class Relay:
    def __init__(self):
        self.sessions: list[int] = []
        self.messages: list[tuple[str, list[str], bytes]] = []

    async def handle_DATA(self, server, session, envelope):
        self.sessions.append(id(session))
        self.messages.append((envelope.mail_from, envelope.rcpt_tos, envelope.content))
        return "250 2.0.0 Ok: queued as TEST1"


def authenticator(server, session, envelope, mechanism, auth_data):
    ok = isinstance(auth_data, LoginPassword) and (auth_data.login, auth_data.password) == (
        b"kanal", b"relay-secret")
    return AuthResult(success=ok)


@pytest.fixture
def relay(tmp_path):
    ca_file = _certificates(tmp_path)
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(tmp_path / "server.pem")
    handler = Relay()
    controller = Controller(handler, hostname="127.0.0.1", port=free_port(),
                            tls_context=context, require_starttls=True,
                            auth_required=True, authenticator=authenticator)
    controller.start()
    yield handler, controller.port, ca_file
    controller.stop()


def message(n: int) -> Outgoing:
    content = (f"From: Fjordbank <faktura@fjordbank.no>\r\nTo: kari@example.no\r\n"
               f"Subject: Faktura {n}\r\nMessage-ID: <doc{n}@fjordbank.no>\r\n\r\nHei\r\n").encode()
    return Outgoing(f"01M8N1XH1T0X6MVPG205JXFR{n:02d}", "nordkort", f"doc{n}", "c", "email",
                    "kari@example.no", content, "message/rfc822", f"<doc{n}@fjordbank.no>", 1)


def provider(port: int, ca_file: Path, password: str = "relay-secret"):
    return build("relay", {"type": "smtp", "host": "127.0.0.1", "port": port,
                           "starttls": True, "ca_file": str(ca_file), "username": "kanal",
                           "password": password, "return_path_domain": "bounces.bank.no"},
                 ProviderContext(Path("."), {}, b"verp-secret"))


def test_starttls_auth_and_one_connection_for_many_messages(relay):
    handler, port, ca_file = relay
    smtp = provider(port, ca_file)
    results = [smtp.send(message(n)) for n in range(3)]
    smtp.close()
    assert all(isinstance(r, Accepted) and r.reason == "250 2.0.0 Ok: queued as TEST1"
               for r in results)
    assert len(handler.messages) == 3 and len(set(handler.sessions)) == 1  # reused
    sender, recipients, _ = handler.messages[0]
    assert sender.startswith("bounces+01M8N1XH1T0X6MVPG205JXFR00-")
    assert sender.endswith("@bounces.bank.no") and recipients == ["kari@example.no"]


def test_the_relay_certificate_is_verified(relay, tmp_path):
    handler, port, _ = relay
    (tmp_path / "other").mkdir()
    other_ca = _certificates(tmp_path / "other")  # a CA that did not sign the relay's
    result = provider(port, other_ca).send(message(1))
    assert isinstance(result, Retry) and "CERTIFICATE_VERIFY_FAILED" in result.reason
    assert handler.messages == []
