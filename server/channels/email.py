"""Email channel: Composition -> one RFC 5322 message (`.eml` bytes) and its facts.

    layout [email] section  -> subject, sender, flags (checked first: no subject, no render)
    email.html (Jinja2, autoescaped) -> CSS inlined by css-inline, @media rules kept in
                                        <style> (dark mode, small screens) -> size check
    email.txt  (Jinja2, plain)       -> the text/plain alternative, written for reading,
                                        not a tag strip of the HTML
    print PDF (when attach_pdf)      -> attachment, rendered once by `Renderers`; with
                                        attach_facturx the Factur-X e-invoice instead when
                                        the plan makes one (`server.channels.email_attachment`)
    -> EmailMessage (policy SMTP): multipart/alternative (text, html), wrapped in
       multipart/mixed when the PDF is attached

The renderer is pure and deterministic: `Date` is the composition's `created_at` (never the
wall clock), `Message-ID` is `<document_id@sender domain>`, and the MIME boundaries are
derived from the document id, so the same Composition always gives the same bytes (and the
same sha256 in the archive). Text parts are quoted-printable, so a boundary (`=_kanal...`)
can never occur inside a body.

Sender (From / Reply-To): the layout manifest's `[email]` defaults, overridden per tenant by
`[email.senders.<tenant>]`. The sender is layout data like the logo and the labels: it is
versioned with the layout and an archived document can be re-rendered exactly.

Manifest section::

    [email]
    subject = "{{ labels.document_title }} {{ invoice.number }}"   # Jinja over the context
    html = "email.html"              # default
    text = "email.txt"               # default
    attach_pdf = true                # attach the print PDF
    attach_facturx = true            # ... or the plan's Factur-X (needs attach_pdf)
    marketing = false                # true: List-Unsubscribe + List-Unsubscribe-Post
    from = "Fjordbank <faktura@fjordbank.no>"
    reply_to = "kort@fjordbank.no"
    unsubscribe_url = "https://fjordbank.no/avmeld?d={{ document_id }}"  # marketing only
    unsubscribe_mailto = "avmeld@fjordbank.no"                         # marketing only
    [email.senders.nordkort]        # a tenant's own sender
    from = "Nordkort <faktura@nordkort.no>"

Recipient address (RFC 5321/6531): the composer checked it with email-validator. The domain
is always written as IDNA A-labels (`kari@bø.no` -> `kari@xn--b-5ga.no`), which every
MTA routes; a non-ASCII local part (`kåre@…`) cannot be written in ASCII at all, so that
message is built for SMTPUTF8 (RFC 6531/6532: UTF-8 headers, fact `smtputf8 = true`): the
delivery step must send it with the SMTPUTF8 extension (Python's `smtplib.send_message`
does so by itself and refuses when the server does not offer it), and a relay that lacks
it bounces, which the plan's fallback covers. ASCII addresses give the same bytes as before.

Size: an HTML part over MAX_HTML_BYTES would be clipped by Gmail, hiding the payment facts.
The composer asks `check_email` while planning, so such an email is left out of the plan with
its reason (it never blocks the document); `render_email` refuses it (`TooLarge`) only when
called on a plan that still holds it.

Logo: a text/CSS wordmark and a CSS-drawn mark, no image at all. Most clients block remote
images by default, Gmail and Outlook do not show SVG, and an embedded PNG (cid:) shows as an
attachment in some clients; text always arrives and follows dark mode.
"""

from __future__ import annotations

import base64
import binascii
import functools
import hashlib
import re
import struct
import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from email.headerregistry import Address
from email.message import EmailMessage
from email.policy import Policy
from email.utils import format_datetime, parseaddr
from operator import itemgetter
from typing import Any

import css_inline
import jinja2
from email_validator import EmailNotValidError

from server.channels.email_address import RecipientAddress, parse_address
from server.channels.email_headers import (
    SMTP_POLICY,
    SMTPUTF8_POLICY,
    check_header_text,
    check_subject_values,
    header_line,
    headers_read_back,
)
from server.channels.pdf import template_variables
from server.compose.layouts import Layout, LayoutError
from server.compose.model import Channel, Composition, Output
from server.compose.plan import FACTURX, Unfit, einvoice_syntax
from server.errors import FieldViolation, InvalidInput, TooLarge

EMAIL_MEDIA_TYPE = "message/rfc822"
# Gmail clips an HTML body above 102 KB ("[Message clipped]"): the facts below the cut, the
# amount or the payment reference, would be hidden behind a link. Counted in bytes of the
# HTML as sent, decimal kilobytes to stay on the safe side.
MAX_HTML_BYTES = 102_000

_INLINER = css_inline.CSSInliner(
    keep_at_rules=True,  # @media (dark mode, small screens) stay in a <style> block
    load_remote_stylesheets=False,
)


@dataclass(frozen=True, slots=True)
class EmailSettings:
    """A layout's `[email]` section, checked."""

    subject: str  # Jinja template source
    html: str
    text: str
    attach_pdf: bool
    attach_facturx: bool  # the plan's Factur-X in place of the print PDF, when it has one
    marketing: bool
    sender: str
    reply_to: str | None
    unsubscribe_url: str | None
    unsubscribe_mailto: str | None


@functools.lru_cache(maxsize=256)
def email_settings(layout: Layout, tenant: str) -> EmailSettings:
    """The `[email]` section with the tenant's sender applied; a broken section is a
    `LayoutError` naming the layout and the key. Read once per layout and tenant (a layout
    version never changes, its files included; the plan and the renderer ask for every
    document)."""
    section: Mapping[str, Any] = layout.section("email")
    where = f"layout {layout.ref} [email]"
    subject = section.get("subject")
    if not isinstance(subject, str) or not subject.strip():
        raise LayoutError(f"{where}: an email layout needs a subject (a Jinja template)")
    sender_section = {**section, **section.get("senders", {}).get(tenant, {})}
    sender = sender_section.get("from")
    if not sender or "@" not in parseaddr(sender)[1]:
        raise LayoutError(f"{where}: 'from' must be an address, e.g. 'Bank <post@bank.no>'")
    marketing = bool(section.get("marketing", False))
    unsubscribe_url = section.get("unsubscribe_url")
    unsubscribe_mailto = section.get("unsubscribe_mailto")
    if marketing and not unsubscribe_url:
        raise LayoutError(f"{where}: a marketing layout needs unsubscribe_url")
    attach_facturx = bool(section.get("attach_facturx", False))
    if attach_facturx and not section.get("attach_pdf", False):
        raise LayoutError(f"{where}: attach_facturx replaces the attached print PDF: "
                          "it needs attach_pdf = true")
    for name in ("html", "text"):
        template = section.get(name, f"email.{'html' if name == 'html' else 'txt'}")
        if not (layout.path / template).is_file():
            raise LayoutError(f"{where}: template {template!r} is missing")
    return EmailSettings(
        subject=subject,
        html=section.get("html", "email.html"),
        text=section.get("text", "email.txt"),
        attach_pdf=bool(section.get("attach_pdf", False)),
        attach_facturx=attach_facturx,
        marketing=marketing,
        sender=sender,
        reply_to=sender_section.get("reply_to"),
        unsubscribe_url=unsubscribe_url,
        unsubscribe_mailto=unsubscribe_mailto,
    )


def needs_pdf(layout: Layout) -> bool:
    """Whether the email of this layout carries the print PDF (Renderers renders it once)."""
    return bool(layout.section("email").get("attach_pdf", False))


# --- the parts ------------------------------------------------------------------------------


@functools.lru_cache(maxsize=256)
def _compiled(layout: Layout, source: str) -> jinja2.Template:
    """A manifest's template string compiled once per layout (compiling costs milliseconds,
    rendering microseconds; the composer renders the subject while planning, too). These
    are plain text (the Subject header, a List-Unsubscribe URL), never HTML: the layout's
    environment escapes string templates for HTML, which turned `"Kari" & co` into
    `&#34;Kari&#34; &amp; co` in the subject, so escaping is off here; the HTML template
    escapes the subject once where it shows it (<title>)."""
    return layout.templates.from_string(
        "{% autoescape false %}" + source + "{% endautoescape %}")


def render_subject(layout: Layout, settings: EmailSettings, variables: Mapping[str, Any]) -> str:
    subject = header_line(_compiled(layout, settings.subject).render(**variables))
    if not subject:
        raise LayoutError(f"layout {layout.ref} [email]: the subject renders empty")
    return subject


def inline_css(html: str) -> str:
    """<style> rules into style attributes; @media rules stay in the <style> block."""
    return _INLINER.inline(html)


def html_size(html: str) -> int:
    """The HTML's size in bytes as sent (UTF-8, CRLF line ends): the size of
    `html.replace("\r\n", "\n").replace("\n", "\r\n")` in UTF-8, counted without making it
    (a CR less per CRLF, one more per LF; each one byte)."""
    return len(html.encode("utf-8")) - html.count("\r\n") + html.count("\n")


def check_html_size(html: str, layout: Layout) -> int:
    """The HTML's size as sent (UTF-8, CRLF line ends), refused above MAX_HTML_BYTES."""
    size = html_size(html)
    if size > MAX_HTML_BYTES:
        raise TooLarge(
            f"email HTML of layout {layout.ref} is {size} bytes, over the {MAX_HTML_BYTES} "
            "byte limit (Gmail clips larger messages and hides the payment facts)"
        )
    return size


def _render_url(layout: Layout, source: str, variables: Mapping[str, Any]) -> str:
    return header_line(_compiled(layout, source).render(**variables))


@functools.lru_cache(maxsize=256)  # one sender per layout and tenant
def _sender_domain(settings: EmailSettings) -> str:
    return parseaddr(settings.sender)[1].rpartition("@")[2].lower()


def message_id(composition: Composition, settings: EmailSettings) -> str:
    """Deterministic: the document id at the tenant's sending domain."""
    return f"<{composition.document_id}@{_sender_domain(settings)}>"


def _boundary_base(document_id: str) -> str:
    """The MIME boundaries' common part, derived from the document id (never random, so the
    same Composition gives the same bytes); a QP body cannot hold `=_`."""
    return f"=_kanal_{hashlib.sha256(document_id.encode()).hexdigest()[:24]}"


def recipient_address(composition: Composition) -> RecipientAddress:
    """The recipient's email address, checked (email-validator, no DNS), domain as IDNA."""
    email = composition.recipient.email
    if not email:
        raise InvalidInput.field(
            "$.customer.email", "the recipient has no email address: no email channel"
        )
    try:
        return parse_address(email)
    except EmailNotValidError as exc:
        raise InvalidInput.field("$.customer.email", f"not an email address: {exc}") from exc


def _to_header(composition: Composition, address: RecipientAddress) -> Address:
    try:
        return Address(display_name=header_line(composition.recipient.name),
                       username=address.local_part, domain=address.domain)
    except ValueError as exc:
        raise InvalidInput.field("$.customer.email", f"not an email address: {exc}") from exc


# --- the renderer ---------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class _Html:
    variables: dict[str, Any]
    subject: str
    html: str
    size: int  # bytes as sent (UTF-8, CRLF)


# The last `_html` made in this thread: the composer's channel check (`check_email`) and
# the renderer (`render_email`) ask for the same document's HTML one after the other, and
# Jinja plus CSS inlining is the e-mail's largest cost. A hit needs the very same context
# and campaign objects (the composer's `replace` keeps them) and equal identity fields, so
# a different document can never be served another's HTML.
_last_html = threading.local()


def _html_key(composition: Composition, layout: Layout, settings: EmailSettings) -> tuple:
    return (composition.context, composition.campaigns, composition.document_id,
            composition.layout_ref, composition.locale, composition.recipient.email,
            layout.ref, settings)


def _html(composition: Composition, layout: Layout, settings: EmailSettings) -> _Html:
    """Subject and inlined HTML: everything of the message the data can make large."""
    key = _html_key(composition, layout, settings)
    last = getattr(_last_html, "entry", None)
    if last is not None and last[0][0] is key[0] and last[0][1] is key[1] \
            and last[0][2:] == key[2:]:
        return last[1]
    part = _make_html(composition, layout, settings)
    _last_html.entry = (key, part)
    return part


def _make_html(composition: Composition, layout: Layout, settings: EmailSettings) -> _Html:
    variables = {
        **template_variables(composition),
        "email": {
            "pdf_attached": settings.attach_pdf,
            "marketing": settings.marketing,
            "recipient": composition.recipient.email,
        },
    }
    if settings.marketing:
        variables["email"]["unsubscribe_url"] = _render_url(
            layout, settings.unsubscribe_url or "", variables)
    subject = render_subject(layout, settings, variables)
    variables["email"]["subject"] = subject
    html = inline_css(layout.templates.get_template(settings.html).render(**variables))
    html = html.rstrip("\r\n") + "\n"  # the part as sent ends with one line break
    return _Html(variables, subject, html, html_size(html))


def check_email(composition: Composition, layout: Layout) -> Unfit | None:
    """Why this document's email cannot be sent (for the channel plan), or None."""
    settings = email_settings(layout, composition.tenant)
    part = _html(composition, layout, settings)
    if part.size > MAX_HTML_BYTES:
        reason = (f"the data makes the email HTML {part.size} bytes, over the {MAX_HTML_BYTES} "
                  "byte limit (Gmail clips larger messages and hides the payment facts)")
        return Unfit(reason, (FieldViolation(f"layout {layout.ref} {settings.html}", reason),))
    return None


def render_email(
    composition: Composition,
    layout: Layout,
    pdf: Callable[[], Output] | None = None,
) -> Output:
    """The `.eml` of one composition. `pdf` returns the Output `email_attachment` names
    (passed in by `Renderers`, so no PDF is rendered twice); ValueError for another one.
    Fact `attachment`: "print" or "factur-x-en16931" (plan.FACTURX), when one is attached."""
    parts = message_parts(composition, layout)
    attachment: bytes | None = None
    facts: dict[str, Any] = {"html_bytes": parts.html.size}
    if parts.settings.attach_pdf:
        if pdf is None:
            raise LayoutError(f"layout {layout.ref} attaches the PDF but none was rendered")
        attached, wanted = pdf(), email_attachment(composition, layout)
        if attached.channel != wanted or attached.media_type != "application/pdf":
            raise ValueError(f"the e-mail of {layout.ref} attaches the {wanted} output, "
                             f"not the {attached.channel} one ({attached.media_type})")
        facts["attachment"] = attached.facts["syntax"] if wanted == Channel.EINVOICE else "print"
        attachment = attached.content
    content = message_bytes(parts, attachment)
    facts.update({"pdf_attached": attachment is not None, "subject": parts.html.subject})
    if parts.address.smtputf8:
        facts["smtputf8"] = True
    return Output(
        channel=Channel.EMAIL,
        media_type=EMAIL_MEDIA_TYPE,
        content=content,
        sha256=hashlib.sha256(content).hexdigest(),
        facts=facts,
    )


def email_attachment(composition: Composition, layout: Layout) -> Channel | None:
    """Which of the document's outputs its e-mail attaches: none without `attach_pdf`; the
    e-invoice when the layout asks for the Factur-X (`attach_facturx`) and the plan makes a
    Factur-X e-invoice (the print pages as a PDF/A-3 with the EN 16931 CII inside, which a
    buyer's system reads); else the print PDF (also when a Factur-X is only a fallback)."""
    settings = email_settings(layout, composition.tenant)
    if not settings.attach_pdf:
        return None
    if settings.attach_facturx and Channel.EINVOICE in composition.channel_plan.channels \
            and einvoice_syntax(composition.kind, composition.recipient, layout) == FACTURX:
        return Channel.EINVOICE
    return Channel.PRINT


@dataclass(frozen=True, slots=True)
class MessageParts:
    """Everything one message is made of but the attachment's bytes, checked."""

    composition: Composition
    layout: Layout
    settings: EmailSettings
    address: RecipientAddress
    html: _Html
    text: str  # the text/plain alternative

    @property
    def policy(self) -> Policy:
        """SMTP (CRLF, 78-character lines); SMTPUTF8 only when the address needs it: ASCII
        messages keep RFC 2047 headers, which every relay on the way accepts."""
        return SMTPUTF8_POLICY if self.address.smtputf8 else SMTP_POLICY


def message_parts(composition: Composition, layout: Layout) -> MessageParts:
    """The checked parts of a composition's message: `InvalidInput` for a recipient address
    that is none, `TooLarge` for HTML over MAX_HTML_BYTES, `LayoutError` for a broken
    `[email]` section; `InvalidInput` for a name or subject holding an RFC 2047 encoded word."""
    settings = email_settings(layout, composition.tenant)
    address = recipient_address(composition)
    part = _html(composition, layout, settings)
    check_header_text(header_line(composition.recipient.name), composition, "$.customer.name")
    check_header_text(part.subject, composition, "$")
    check_subject_values(part.subject, composition)
    check_html_size(part.html, layout)
    text = layout.templates.get_template(settings.text).render(**part.variables).strip() + "\n"
    return MessageParts(composition, layout, settings, address, part, text)


def build_message(parts: MessageParts, attachment: bytes | None) -> EmailMessage:
    """The message as the standard library builds it: multipart/alternative (text, html),
    in multipart/mixed with `attachment` as the PDF when given; the boundaries derived from
    the document id."""
    composition, settings = parts.composition, parts.settings
    message = EmailMessage(policy=parts.policy)
    message["From"] = settings.sender
    if settings.reply_to:
        message["Reply-To"] = settings.reply_to
    message["To"] = _to_header(composition, parts.address)
    message["Subject"] = parts.html.subject
    message["Date"] = format_datetime(composition.created_at)
    message["Message-ID"] = message_id(composition, settings)
    if settings.marketing:
        targets = [f"<{parts.html.variables['email']['unsubscribe_url']}>"]
        if settings.unsubscribe_mailto:
            targets.append(f"<mailto:{settings.unsubscribe_mailto}"
                           f"?subject=unsubscribe%20{composition.document_id}>")
        message["List-Unsubscribe"] = ", ".join(targets)
        message["List-Unsubscribe-Post"] = "List-Unsubscribe=One-Click"
    # Each multipart made with its boundary (a boundary set afterwards re-parses and
    # rewrites the part's headers): the outermost is `_0`, the alternative inside the
    # mixed one `_1`, as they come in the message.
    base = _boundary_base(composition.document_id)
    message.set_content(parts.text, subtype="plain", charset="utf-8", cte="quoted-printable")
    message.make_alternative(boundary=f"{base}_{0 if attachment is None else 1}")
    message.add_alternative(parts.html.html, subtype="html", charset="utf-8",
                            cte="quoted-printable")
    if attachment is not None:
        message.make_mixed(boundary=f"{base}_0")
        message.add_attachment(
            attachment, maintype="application", subtype="pdf",
            filename=_attachment_name(parts.layout, composition),
        )
    message["Content-Language"] = composition.locale  # after set_content, which drops it
    return message


# The PDF's base64 body, written at C speed. The standard library's generator writes a body
# line by line (two `write` calls per 76 characters, some 3,500 for a 130 KB PDF: most of
# the e-mail's CPU), and its content manager encodes it 57 bytes at a time in Python. So
# the standard library builds and writes the message around a stand-in body of one line,
# which is then replaced by the PDF in base64 cut into the very lines the content manager
# writes (RFC 2045: 76 characters from 57 bytes, as policy SMTP's max_line_length 78
# gives: 78 // 4 * 3), with the policy's CRLF line ends. The attachment is the last part,
# so the stand-in is the last line before the closing boundary.
# tests/unit/test_email_mime_bytes.py proves the bytes equal the standard library's own.
_STAND_IN = bytes(range(base64.MAXBINSIZE))  # 57 bytes: one line of 76 characters


def message_bytes(parts: MessageParts, attachment: bytes | None) -> bytes:
    """The message as bytes (RFC 5322, CRLF), byte for byte what
    `build_message(parts, attachment).as_bytes(policy=parts.policy)` writes."""
    policy = parts.policy
    if not attachment:
        message = build_message(parts, attachment)
        return headers_read_back(message.as_bytes(policy=policy), message)
    message = build_message(parts, _STAND_IN)
    content = headers_read_back(message.as_bytes(policy=policy), message)
    linesep = policy.linesep.encode("ascii")
    closing = linesep + f"--{message.get_boundary()}--".encode("ascii") + linesep
    stand_in = base64.encodebytes(_STAND_IN).replace(b"\n", linesep) + closing
    if policy.max_line_length != 78 or not content.endswith(stand_in):
        # not written as this module knows the standard library writes it: let it write all
        return build_message(parts, attachment).as_bytes(policy=policy)
    # the whole in base64 at once, then cut in lines (base64.encodebytes encodes in a Python
    # loop of 57-byte pieces: twice the time), the full lines cut by struct in C (a slice per
    # line in a Python loop was 3.1M of a 21M-instruction e-mail: 1,500 lines of a PDF)
    encoded = binascii.b2a_base64(attachment, newline=False)
    full = len(encoded) - len(encoded) % _LINE.size
    lines = list(map(itemgetter(0), _LINE.iter_unpack(memoryview(encoded)[:full])))
    if full < len(encoded):
        lines.append(encoded[full:])
    return b"".join((content[:-len(stand_in)], linesep.join(lines), linesep, closing))


_LINE = struct.Struct(f"{base64.MAXLINESIZE}s")  # one line of base64: 76 characters


def _attachment_name(layout: Layout, composition: Composition) -> str:
    """ASCII file name from the layout id and document id (no personal data in it)."""
    safe = re.sub(r"[^A-Za-z0-9._-]", "-", f"{layout.id}-{composition.document_id}")
    return f"{safe}.pdf"
