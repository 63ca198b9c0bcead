"""How an e-mail address is written: the recipient's for the message and the SMTP envelope
(`parse_address`: email-validator, no DNS; RFC 5321/6531), and the domains Kanal configures
itself (`ascii_domain`). Domains are always IDNA A-labels (`bø.no` -> `xn--b-5ga.no`); a
local part that is not ASCII makes the message an SMTPUTF8 one (RFC 6531/6532)."""

from __future__ import annotations

from dataclasses import dataclass

import idna
from email_validator import validate_email


@dataclass(frozen=True, slots=True)
class RecipientAddress:
    """The recipient's address as the message carries it."""

    local_part: str
    domain: str  # IDNA A-labels ("xn--b-5ga.no")

    @property
    def smtputf8(self) -> bool:
        """True when the address cannot be written in ASCII (RFC 6531)."""
        return not self.local_part.isascii()

    @property
    def addr_spec(self) -> str:
        """`local@domain` as the envelope (RCPT TO) and the To header carry it."""
        return f"{self.local_part}@{self.domain}"


def parse_address(email: str) -> RecipientAddress:
    """`kari@bø.no` -> RecipientAddress("kari", "xn--b-5ga.no"): checked by email-validator
    (no DNS), domain as IDNA A-labels. Raises `EmailNotValidError` (its words say why).
    The one place that decides how an address is written, for the message and the SMTP
    envelope alike."""
    checked = validate_email(email, check_deliverability=False, strict=True)
    return RecipientAddress(checked.local_part, checked.ascii_domain)


def ascii_domain(domain: str) -> str:
    """`bø.no` -> `xn--b-5ga.no`: a domain name in IDNA A-labels (IDNA 2008 with the UTS #46
    mapping, as email-validator writes the recipient's domain in `parse_address`), for
    envelope addresses Kanal configures itself (the SMTP return path), where reserved names
    such as `.internal` or `.test` stay allowed. Raises `ValueError` (why) when it is not a
    domain name."""
    try:
        return idna.encode(domain, uts46=True).decode("ascii")
    except idna.IDNAError as exc:
        raise ValueError(f"{domain!r} is not a domain name: {exc}") from exc
