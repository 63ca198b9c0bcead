"""E-mail over SMTP: one archived `.eml` -> a configured relay (STARTTLS, AUTH), DKIM-signed.

Per attempt: the archived message (its `Message-ID` is `<document id@sender domain>`,
fixed when the document was rendered and recorded in the outbox row before the first
attempt) is signed with the tenant domain's DKIM key (dkimpy, RFC 6376), and sent with a
VERP return path `bounces+<delivery id>-<tag>@<return path domain>` (server.delivery.bounces).
With `dsn = true` the envelope asks for RFC 3461 delivery status notifications:
`MAIL FROM:<...> RET=HDRS ENVID=<delivery id>`, `RCPT TO:<...> NOTIFY=SUCCESS,FAILURE`; the
relay then reports success as well as failure to the bounce listener, which makes
`delivered` a real state and lets a resend after an interrupted attempt wait for the
relay's word first (`in_doubt_seconds`).

Connections are reused: a pool of at most `concurrency` open sessions; a session the relay
closed while idle is replaced transparently (before anything was sent). A transaction that
did not end in 250 after DATA is reset (RSET) before its session goes back to the pool, or
the session is closed when its state is unknown (an error we did not expect), so the next
message never starts inside a half-open transaction.

Recipient (RFC 5321, RFC 6531): the address is written as the e-mail channel writes the To
header (server.channels.email.parse_address): domain in IDNA A-labels (`kari@bø.no` ->
`RCPT TO:<kari@xn--b-5ga.no>`), which every relay routes. A local part that is not ASCII
(`kåre@…`) can only be sent with SMTPUTF8 (`MAIL FROM:<…> SMTPUTF8 BODY=8BITMIME`); a relay
that does not offer it can never take the message, so that is `Failed` at once (no MAIL
FROM is sent), and the plan's fallback starts instead of retrying for an hour. An address
that does not parse is `Failed(bounced)` the same way.

Return path (MAIL FROM): its domain is written in IDNA A-labels like the recipient's
(`return_path_domain = "bounces.bø.no"` -> `MAIL FROM:<bounces+…@bounces.xn--b-5ga.no>`),
with or without SMTPUTF8, so the DSNs come back to the same routable name. A configured
domain that is not a domain name stops the start; one taken from a message's From header
makes that message `Failed` (no relay could take it).

Replies -> results: 250 after DATA -> `Accepted` (the relay's words, e.g. "250 2.0.0 Ok:
queued as 1409A20E12F"); 5xx to RCPT -> `Failed(bounced)`; other 5xx -> `Failed`; 4xx ->
`Retry`; no connection -> `Retry` (the breaker counts it); a connection lost during DATA ->
`Retry(in_doubt=True)`.

Settings::

    [delivery.providers.relay]
    type = "smtp"
    host = "smtp-relay.bank.internal"
    port = 587
    starttls = true                 # required when true: no plain-text fallback
    ca_file = "/etc/ssl/relay-ca.pem"   # default: the system's CAs
    username = "kanal"              # AUTH when set
    password = "..."
    timeout = 30
    dsn = true
    in_doubt_seconds = 600          # wait this long for a DSN before resending
    [delivery.tenants.nordkort]
    return_path_domain = "bounces.nordkort.no"
    dkim = { selector = "kanal1", key_file = "/etc/kanal/dkim/nordkort.pem" }
"""

from __future__ import annotations

import queue
import re
import smtplib
import socket
import ssl
from collections.abc import Mapping
from email.parser import BytesHeaderParser
from email.utils import parseaddr
from pathlib import Path
from typing import Any

import dkim
from email_validator import EmailNotValidError

from server import logs
from server.channels.email_address import RecipientAddress, ascii_domain, parse_address
from server.delivery.bounces import return_path
from server.delivery.model import Accepted, Failed, Outgoing, Result, Retry, State
from server.delivery.providers.base import Provider, ProviderContext, register

log = logs.get_logger(__name__)

_DKIM_HEADERS = [b"from", b"to", b"subject", b"date", b"message-id", b"reply-to",
                 b"mime-version", b"content-type", b"content-language",
                 b"list-unsubscribe", b"list-unsubscribe-post"]


_QUEUE_ID = re.compile(r"queued as ([0-9A-Za-z]+)")


def _words(code: int, message: bytes | str) -> str:
    text = message.decode("utf-8", "replace") if isinstance(message, bytes) else message
    return f"{code} {' '.join(text.split())}"


class _Refused(Exception):
    def __init__(self, result: Result):
        self.result = result


class SmtpProvider(Provider):
    channel = "email"

    def __init__(self, name: str, settings: Mapping[str, Any], context: ProviderContext):
        super().__init__(name, settings, context)
        self.host = str(settings.get("host", "127.0.0.1"))
        self.port = int(settings.get("port", 25))
        self.starttls = bool(settings.get("starttls", False))
        self.ca_file = settings.get("ca_file")
        self.username = settings.get("username")
        self.password = settings.get("password")
        self.timeout = float(settings.get("timeout", 30))
        self.dsn = bool(settings.get("dsn", True))
        self.helo = settings.get("helo") or socket.getfqdn()
        self._idle: queue.LifoQueue[smtplib.SMTP] = queue.LifoQueue()
        self._dkim_keys: dict[str, tuple[bytes, bytes, bytes] | None] = {}
        for tenant in context.tenants:  # a missing or unreadable key stops the start
            try:
                self._dkim_key(tenant)
            except (OSError, KeyError) as exc:
                raise ValueError(f"delivery.tenants.{tenant}.dkim: {exc!r}") from exc
        configured = {f"delivery.tenants.{tenant}.return_path_domain": spec.get(
            "return_path_domain") for tenant, spec in context.tenants.items()}
        configured[f"delivery.providers.{name}.return_path_domain"] = settings.get(
            "return_path_domain")
        for key, domain in configured.items():  # a broken domain stops the start too
            if domain:
                try:
                    ascii_domain(str(domain))
                except ValueError as exc:
                    raise ValueError(f"{key}: {exc}") from exc

    # --- connections ----------------------------------------------------------------------

    def _connect(self) -> smtplib.SMTP:
        conn = smtplib.SMTP(self.host, self.port, local_hostname=self.helo,
                            timeout=self.timeout)
        try:
            conn.ehlo()
            if self.starttls:
                if not conn.has_extn("starttls"):  # never in clear text: wait, and alert
                    raise _Refused(Retry(f"relay {self.host}:{self.port} offers no STARTTLS"))
                context = ssl.create_default_context(cafile=self.ca_file)
                conn.starttls(context=context)
                conn.ehlo()
            if self.username:
                conn.user, conn.password = str(self.username), str(self.password or "")
                if "PLAIN" in conn.esmtp_features.get("auth", "").upper().split():
                    conn.auth("PLAIN", conn.auth_plain)  # one round trip, inside TLS
                else:
                    conn.login(conn.user, conn.password)
        except BaseException:
            conn.close()
            raise
        return conn

    def _take(self) -> tuple[smtplib.SMTP, bool]:
        try:
            return self._idle.get_nowait(), True
        except queue.Empty:
            return self._connect(), False

    def close(self) -> None:
        while True:
            try:
                conn = self._idle.get_nowait()
            except queue.Empty:
                return
            try:
                conn.quit()
            except (smtplib.SMTPException, OSError):
                conn.close()

    # --- signing --------------------------------------------------------------------------

    def _dkim_key(self, tenant: str) -> tuple[bytes, bytes, bytes] | None:
        """(selector, domain, private key PEM) of the tenant, or None when not configured."""
        if tenant not in self._dkim_keys:
            spec = self.context.tenants.get(tenant, {}).get("dkim")
            if not spec:
                self._dkim_keys[tenant] = None
            else:
                key = Path(spec["key_file"]).read_bytes()
                self._dkim_keys[tenant] = (str(spec["selector"]).encode(),
                                           str(spec.get("domain", "")).encode(), key)
        return self._dkim_keys[tenant]

    def sign(self, message: Outgoing) -> bytes:
        """The message with a DKIM-Signature of the tenant's key (domain: the configured one,
        else the From address's domain), or unchanged when the tenant has no key."""
        key = self._dkim_key(message.tenant)
        if key is None:
            return message.content
        selector, domain, private = key
        if not domain:
            sender = BytesHeaderParser().parsebytes(message.content).get("From", "")
            domain = parseaddr(sender)[1].rpartition("@")[2].encode()
        signature = dkim.sign(message.content, selector, domain, private,
                              include_headers=_DKIM_HEADERS)
        return signature + message.content

    # --- sending ---------------------------------------------------------------------------

    def _return_path(self, message: Outgoing) -> str:
        """The VERP return path for MAIL FROM, its domain in IDNA A-labels (RFC 5321
        §4.1.2, RFC 5890) as RCPT TO writes the recipient's: the tenant's or the provider's
        `return_path_domain`, else the From header's domain. Raises `_Refused(Failed)` when
        that domain is not a domain name."""
        tenant = self.context.tenants.get(message.tenant, {})
        domain = tenant.get("return_path_domain") or self.settings.get("return_path_domain")
        if not domain:
            sender = BytesHeaderParser().parsebytes(message.content).get("From", "")
            domain = parseaddr(sender)[1].rpartition("@")[2]
        try:
            domain = ascii_domain(str(domain))
        except ValueError as exc:  # no relay could take it: no retry
            raise _Refused(Failed(f"return path domain cannot be sent: {exc}")) from exc
        return return_path(message.delivery_id, domain, self.context.verp_secret)

    def send(self, message: Outgoing) -> Result:
        try:
            recipient = parse_address(message.recipient)
        except EmailNotValidError as exc:  # no relay could take it: no retry
            return Failed(f"recipient address {message.recipient!r} cannot be sent: {exc}",
                          State.BOUNCED)
        try:
            sender = self._return_path(message)
        except _Refused as refused:
            return refused.result
        content = self.sign(message)
        for _ in range(2):  # a pooled session the relay closed while idle: once more, fresh
            try:
                conn, reused = self._take()
            except _Refused as refused:
                return refused.result
            except smtplib.SMTPAuthenticationError as exc:
                return Retry(f"relay {self.host}:{self.port} refused our login: "
                             f"{_words(exc.smtp_code, exc.smtp_error)}")
            except (OSError, smtplib.SMTPException) as exc:
                return Retry(f"cannot reach relay {self.host}:{self.port}: {exc}")
            try:
                result = self._transaction(conn, sender, recipient, message, content)
            except smtplib.SMTPServerDisconnected as exc:
                conn.close()
                if reused and not getattr(exc, "in_data", False):
                    continue
                return Retry(f"relay closed the connection: {exc}",
                             in_doubt=getattr(exc, "in_data", False))
            except (OSError, smtplib.SMTPException) as exc:
                conn.close()
                return Retry(f"relay connection failed: {exc!r}",
                             in_doubt=getattr(exc, "in_data", False))
            except BaseException:  # unknown session state: never pool it mid-transaction
                conn.close()
                raise
            if isinstance(result, Accepted):
                self._idle.put(conn)
            else:
                self._reset(conn)
            return result
        return Retry("relay keeps closing the connection")

    def _reset(self, conn: smtplib.SMTP) -> None:
        try:
            conn.rset()
            self._idle.put(conn)
        except (smtplib.SMTPException, OSError):
            conn.close()

    def _transaction(self, conn: smtplib.SMTP, sender: str, recipient: RecipientAddress,
                     message: Outgoing, content: bytes) -> Result:
        dsn = self.dsn and conn.has_extn("dsn")
        mail_options = ["RET=HDRS", f"ENVID={message.delivery_id}"] if dsn else []
        rcpt_options = ["NOTIFY=SUCCESS,FAILURE"] if dsn else []
        if conn.has_extn("size"):
            mail_options.append(f"SIZE={len(content)}")
        if recipient.smtputf8:
            if not conn.has_extn("smtputf8"):  # before MAIL FROM: the session stays clean
                return Failed(f"relay {self.host}:{self.port} does not offer SMTPUTF8 "
                              f"(RFC 6531), which the recipient's non-ASCII local part "
                              f"needs: {recipient.addr_spec}")
            # smtplib then writes the commands in UTF-8; the message's headers are UTF-8
            mail_options.append("SMTPUTF8")
            if conn.has_extn("8bitmime"):
                mail_options.append("BODY=8BITMIME")
        code, reply = conn.mail(sender, mail_options)
        if code != 250:
            return self._refused(code, reply, "MAIL FROM")
        code, reply = conn.rcpt(recipient.addr_spec, rcpt_options)
        if code not in (250, 251):
            return self._refused(code, reply, "RCPT TO", recipient=True)
        try:
            code, reply = conn.data(content)
        except smtplib.SMTPDataError as exc:  # DATA itself refused: nothing was sent
            return self._refused(exc.smtp_code, exc.smtp_error, "DATA")
        except (OSError, smtplib.SMTPException) as exc:
            exc.in_data = True  # type: ignore[attr-defined]
            raise
        if code != 250:
            return self._refused(code, reply, "DATA")
        words = _words(code, reply)
        queued = _QUEUE_ID.search(words)  # the relay's queue id, to find it in its logs
        return Accepted(words, provider_message_id=queued.group(1) if queued else "")

    @staticmethod
    def _refused(code: int, reply: bytes, step: str, recipient: bool = False) -> Result:
        words = f"{step}: {_words(code, reply)}"
        if 400 <= code < 500:
            return Retry(words, provider_down=False)
        return Failed(words, State.BOUNCED if recipient else State.FAILED)


register("smtp", SmtpProvider)
