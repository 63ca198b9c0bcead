"""What the digital mailbox adapters (Kivra, Digipost, e-Boks) share: the recipient's
address, the documented limits checked before anything is sent, and the order of one
attempt.

    address "<service>:<id>" (server.delivery.routing) -> the id, checked with
        python-stdnum when it is a national id (fødselsnummer, personnummer, CPR): a
        malformed one is refused here, as the mailbox would refuse it
    the PDF (the archived print PDF) -> limits: bytes, pages, the left margin (mm, every
        page rendered with pdfium at 100 dpi: the first column that is not white)
    -> `deliver(message, recipient id, details)`: the provider's own API

A PDF over a limit is `failed` (not the recipient's doing) and a recipient the mailbox
does not know is `bounced`; both hand the document to the plan's next channel, e.g. print.

Limits (`[delivery.providers.<name>]`, 0 = not checked): `max_bytes`, `max_pages`,
`min_left_margin_mm`. Each adapter's defaults are its provider's documented ones.
A tenant's own sender settings sit under the provider's name in the tenant's table:
`[delivery.tenants.<t>.<provider name>]` (e.g. Kivra's tenant key, Digipost's sender id).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import pypdfium2 as pdfium
from stdnum.dk import cpr
from stdnum.exceptions import ValidationError
from stdnum.no import fodselsnummer
from stdnum.se import personnummer

from server.delivery.model import Failed, Outgoing, Result, State
from server.delivery.providers.base import Provider, ProviderContext
from server.pdfium import page_count, serialised

MM_PER_INCH = 25.4
RENDER_DPI = 100
WHITE = 245  # a pixel lighter than this (of 255) counts as paper


@dataclass(frozen=True, slots=True)
class Limits:
    max_bytes: int = 0
    max_pages: int = 0
    min_left_margin_mm: float = 0.0

    @classmethod
    def from_dict(cls, settings: Mapping[str, Any], defaults: Limits) -> Limits:
        return cls(int(settings.get("max_bytes", defaults.max_bytes)),
                   int(settings.get("max_pages", defaults.max_pages)),
                   float(settings.get("min_left_margin_mm", defaults.min_left_margin_mm)))


@serialised
def left_margin_mm(pdf: bytes) -> float | None:
    """The narrowest left margin over all pages, in mm (None: every page is blank)."""
    document = pdfium.PdfDocument(pdf)
    margins = []
    try:
        for page in document:
            image = page.render(scale=RENDER_DPI / 72, grayscale=True).to_pil()
            box = image.point(lambda v: 255 if v < WHITE else 0).getbbox()
            if box is not None:
                margins.append(box[0] * MM_PER_INCH / RENDER_DPI)
    finally:
        document.close()
    return min(margins) if margins else None


def over_limits(pdf: bytes, limits: Limits, what: str, size: int | None = None) -> str | None:
    """Why the PDF cannot go to this mailbox, or None. `size`: the bytes that count
    against `max_bytes` (Kivra counts the whole JSON request)."""
    size = len(pdf) if size is None else size
    if limits.max_bytes and size > limits.max_bytes:
        return f"{size} bytes, over {what}'s limit of {limits.max_bytes}"
    if limits.max_pages:
        pages = page_count(pdf)
        if pages > limits.max_pages:
            return f"{pages} pages, over {what}'s limit of {limits.max_pages}"
    if limits.min_left_margin_mm:
        margin = left_margin_mm(pdf)
        if margin is not None and margin < limits.min_left_margin_mm:
            return (f"left margin {margin:.1f} mm, {what} requires at least "
                    f"{limits.min_left_margin_mm:g} mm")
    return None


class InvalidNationalId(ValueError):
    """A national id no mailbox can take (its check digits or date are wrong)."""


def national_id(country: str, value: str) -> str:
    """A national id in its compact form; InvalidNationalId when it is malformed.
    Sweden: the 12-digit YYYYMMDDnnnn form Kivra takes (the century from the birth date)."""
    try:
        if country == "NO":
            return fodselsnummer.validate(value)
        if country == "DK":
            return cpr.validate(value)
        if country == "SE":
            digits = personnummer.validate(value)
            compact = digits.replace("-", "").replace("+", "")
            if len(compact) == 10:
                compact = str(personnummer.get_birth_date(digits).year)[:2] + compact
            return compact
    except ValidationError as exc:
        raise InvalidNationalId(f"not a valid national id of {country}: {exc}") from exc
    raise InvalidNationalId(f"no national id rule for {country!r}")


class MailboxProvider(Provider):
    """Base of the mailbox adapters: `deliver` is the provider's API call."""

    channel = "mailbox"
    service = ""  # "kivra", "digipost", "eboks": the address prefix it takes
    documented_limits = Limits()

    def __init__(self, name: str, settings: Mapping[str, Any], context: ProviderContext):
        super().__init__(name, settings, context)
        self.mailbox_limits = Limits.from_dict(settings, self.documented_limits)
        self.timeout = float(settings.get("timeout", 30))
        self.ca_file = settings.get("ca_file")

    def tenant_setting(self, tenant: str, key: str, default: Any = None) -> Any:
        """A tenant's own value for this provider, else the provider's."""
        own = self.context.tenants.get(tenant, {}).get(self.name, {})
        return own.get(key, self.settings.get(key, default))

    def send(self, message: Outgoing) -> Result:
        service, _, recipient = message.recipient.partition(":")
        if service != self.service or not recipient:
            return Failed(f"{self.name} sends to {self.service} addresses, not "
                          f"{service or 'none'}", State.BOUNCED)
        details = message.details.get("mailbox") or {}
        try:
            return self.deliver(message, recipient, details)
        except InvalidNationalId as exc:  # no mailbox can take it
            return Failed(f"{self.service}: {exc}", State.BOUNCED)

    def check(self, pdf: bytes, size: int | None = None) -> Failed | None:
        reason = over_limits(pdf, self.mailbox_limits, self.service, size)
        return Failed(f"not sent to {self.service}: {reason}") if reason else None

    def deliver(self, message: Outgoing, recipient: str, details: Mapping[str, Any]) -> Result:
        raise NotImplementedError
