"""The SMTP return path (MAIL FROM) carries its domain as IDNA A-labels, as RCPT TO carries
the recipient's (RFC 5321 §4.1.2, RFC 5890), with and without SMTPUTF8 (RFC 6531).

Before: a non-ASCII `return_path_domain` went out as Unicode: smtplib raised
`UnicodeEncodeError` on a plain session (every attempt, retried for an hour) and wrote the
U-label on an SMTPUTF8 session. The relay session here is a stand-in that records the
commands (unit test); the real Postfix run is in
tests/integration/test_delivery_smtp_international.py.
"""

from __future__ import annotations

from email.message import EmailMessage
from email.policy import SMTP
from pathlib import Path

import pytest

from server.channels.email_address import ascii_domain, parse_address
from server.delivery.model import Accepted, Failed, Outgoing, State
from server.delivery.providers.base import ProviderContext
from server.delivery.providers.smtp import SmtpProvider

DELIVERY_ID = "01M8N1XH1T0X6MVPG205JABCDE"


class RecordingSession:
    """What `_transaction` uses of `smtplib.SMTP`; records MAIL FROM and RCPT TO."""

    def __init__(self, extensions: set[str]):
        self.extensions = extensions
        self.commands: list[tuple[str, str, tuple[str, ...]]] = []

    def has_extn(self, name: str) -> bool:
        return name.lower() in self.extensions

    def mail(self, sender: str, options=()) -> tuple[int, bytes]:
        sender.encode("utf-8" if "SMTPUTF8" in options else "ascii")  # as smtplib writes it
        self.commands.append(("MAIL", sender, tuple(options)))
        return 250, b"OK"

    def rcpt(self, recipient: str, options=()) -> tuple[int, bytes]:
        self.commands.append(("RCPT", recipient, tuple(options)))
        return 250, b"OK"

    def data(self, content: bytes) -> tuple[int, bytes]:
        return 250, b"2.0.0 Ok: queued as ABC123"

    def rset(self) -> None:
        pass

    def close(self) -> None:
        pass


def message(recipient: str, sender: str = "Fjordbank <faktura@fjordbank.no>") -> Outgoing:
    eml = EmailMessage()
    eml["From"] = sender
    eml["To"] = parse_address(recipient).addr_spec
    eml["Subject"] = "Faktura"
    eml.set_content("Hei\n")
    return Outgoing(DELIVERY_ID, "nordkort", "doc1", "c1", "email", recipient,
                    eml.as_bytes(policy=SMTP), "message/rfc822", "<doc1@fjordbank.no>", 1)


def provider(settings: dict, tenants: dict | None = None) -> SmtpProvider:
    return SmtpProvider("relay", {"type": "smtp", **settings},
                        ProviderContext(Path("."), tenants or {}, b"verp-secret"))


@pytest.mark.parametrize(("recipient", "extensions"), [
    ("kari@example.no", {"size"}),  # plain SMTP: the command must be ASCII
    ("kåre@example.no", {"smtputf8", "8bitmime"}),  # SMTPUTF8: still the A-label, as RCPT
])
def test_mail_from_domain_is_written_as_idna_a_labels(recipient: str, extensions: set[str],
                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    smtp = provider({"return_path_domain": "bounces.bø.no"})
    session = RecordingSession(extensions)
    monkeypatch.setattr(smtp, "_connect", lambda: session)
    result = smtp.send(message(recipient))
    assert isinstance(result, Accepted), result
    [(_, sender, options), (_, rcpt, _)] = session.commands
    assert sender.startswith(f"bounces+{DELIVERY_ID}-")
    assert sender.endswith("@bounces.xn--b-5ga.no")
    assert rcpt == parse_address(recipient).addr_spec
    assert ("SMTPUTF8" in options) == ("smtputf8" in extensions)


def test_tenant_domain_and_from_header_domain_are_encoded_too(
        monkeypatch: pytest.MonkeyPatch) -> None:
    tenant = provider({}, {"nordkort": {"return_path_domain": "Retur.Fjordbånk.no"}})
    assert tenant._return_path(message("kari@example.no")).endswith(
        "@retur.xn--fjordbnk-f0a.no")
    from_header = provider({})  # no return_path_domain: the From address's domain
    assert from_header._return_path(message("kari@example.no")).endswith("@fjordbank.no")


def test_a_configured_return_path_domain_that_is_no_domain_stops_the_start() -> None:
    with pytest.raises(ValueError, match=r"delivery\.providers\.relay\.return_path_domain"):
        provider({"return_path_domain": "bounces..bø.no"})
    with pytest.raises(ValueError, match=r"delivery\.tenants\.nordkort\.return_path_domain"):
        provider({}, {"nordkort": {"return_path_domain": "bad domain.no"}})


def test_a_from_domain_that_is_no_domain_fails_without_a_transaction(
        monkeypatch: pytest.MonkeyPatch) -> None:
    smtp = provider({})
    session = RecordingSession({"smtputf8"})
    monkeypatch.setattr(smtp, "_connect", lambda: session)
    result = smtp.send(message("kari@example.no", sender="Fjordbank <faktura@bad..no>"))
    assert isinstance(result, Failed) and result.state is State.FAILED
    assert "return path domain" in result.reason and "bad..no" in result.reason
    assert session.commands == []


@pytest.mark.parametrize("domain", ["bø.no", "BØ.no", "exämple.de", "пример.рф",
                                    "παράδειγμα.gr", "xn--b-5ga.no", "example.no"])
def test_ascii_domain_writes_what_the_recipient_helper_writes(domain: str) -> None:
    assert ascii_domain(domain) == parse_address(f"kari@{domain}").domain


def test_ascii_domain_keeps_reserved_names_a_bank_may_route_internally() -> None:
    assert ascii_domain("bounces.fjordbånk.internal") == "bounces.xn--fjordbnk-f0a.internal"
