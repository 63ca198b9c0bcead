"""Response links: an invitation -> a signed, expiring token in a URL -> the invitation.

The token is a JWT (HS256, server.tokens: RFC 7519/7518, integer `iat`/`exp`, lifetime
bounded) with two claims of its own, kept short because the link also goes by SMS:

- `jti`: the invitation id (ULID); the invitation row makes the link single use;
- `b`: the binding, base64url(SHA-256(tenant 0x1F customer 0x1F survey 0x1F touchpoint))
  cut to 16 bytes: a token answers only the invitation of that tenant, customer, survey
  and touchpoint, even if a row were ever re-used or moved.

Nothing personal is in the token (it sits in browser histories and SMS logs): the customer
id is only inside the hash.
"""

from __future__ import annotations

import base64
import hashlib
from dataclasses import dataclass

from server import tokens

SEPARATOR = "\x1f"


def binding(tenant: str, customer_id: str, survey_id: str, touchpoint: str) -> str:
    digest = hashlib.sha256(SEPARATOR.join((tenant, customer_id, survey_id, touchpoint))
                            .encode()).digest()[:16]
    return base64.urlsafe_b64encode(digest).rstrip(b"=").decode()


@dataclass(frozen=True, slots=True)
class LinkClaims:
    invitation_id: str
    binding: str
    expires_at: int  # unix seconds


class LinkSigner:
    def __init__(self, secret: str | bytes, max_seconds: int):
        tokens.check_secret("surveys.link_secret", secret)
        self.secret = secret
        self.max_seconds = max_seconds

    def sign(self, invitation_id: str, bind: str, lifetime_seconds: int, now: float) -> str:
        return tokens.encode(self.secret, {"jti": invitation_id, "b": bind},
                             lifetime_seconds, now=now)

    def read(self, token: str, now: float) -> LinkClaims:
        """The claims of a valid token; `tokens.TokenError` ('expired', 'bad signature',
        'malformed', ...) otherwise."""
        claims = tokens.decode(self.secret, token, max_seconds=self.max_seconds, now=now)
        jti, bind = claims.get("jti"), claims.get("b")
        if not isinstance(jti, str) or not isinstance(bind, str):
            raise tokens.TokenError("malformed")
        return LinkClaims(jti, bind, claims["exp"])
