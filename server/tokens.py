"""Signed, expiring tokens: claims -> a JWT (RFC 7519, HS256 per RFC 7518 §3.2) -> claims.

Kanal reads two kinds, both through `decode`:

- *customer tokens*, signed by a tenant's portal backend (any language has a JWT library)
  with the tenant's secret: `{"tenant": ..., "sub": customer id, "iat": ..., "exp": ...}`;
- *page tokens*, Kanal's own keyset cursors for the portal listing.

Limits (issue 17): every token carries `iat` and `exp` as integers; a token lives at most
`max_seconds` (`exp - iat`, and `exp` no further than that from now: a token "valid until
year 5138" is refused whatever its `iat` says); only HS256 is accepted (never `none`).
The text must be exactly three unpadded base64url segments (nothing after the signature,
not even padding, which PyJWT would accept); PyJWT checks the signature, the header and
that each segment has one spelling only (tests/unit/test_tokens.py holds both to that).
"""

from __future__ import annotations

import re
import time
import warnings
from collections.abc import Mapping
from typing import Any

import jwt

ALGORITHM = "HS256"
MIN_SECRET_BYTES = 32  # RFC 7518 §3.2: a key at least as long as the hash output
CLOCK_SKEW_SECONDS = 30
# Three unpadded base64url segments and nothing else: PyJWT itself accepts a padded one.
_COMPACT_JWS = re.compile(r"[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+")


class TokenError(ValueError):
    """Why a token is refused: 'malformed', 'bad signature', 'expired', 'lifetime ...'."""


def check_secret(name: str, secret: str | bytes) -> None:
    """Refuse a signing secret shorter than 32 bytes (ValueError naming the setting)."""
    size = len(secret.encode() if isinstance(secret, str) else secret)
    if size < MIN_SECRET_BYTES:
        raise ValueError(f"{name} is {size} bytes; a token secret needs at least "
                         f"{MIN_SECRET_BYTES} (RFC 7518 §3.2)")


def encode(secret: str | bytes, claims: Mapping[str, Any], lifetime_seconds: int, *,
           now: float | None = None) -> str:
    """`claims` plus `iat` (now) and `exp` (now + lifetime), signed with HS256."""
    issued = int(time.time() if now is None else now)
    with warnings.catch_warnings():  # short secrets are refused by check_secret at start
        warnings.simplefilter("ignore", jwt.InsecureKeyLengthWarning)
        return jwt.encode({**claims, "iat": issued, "exp": issued + lifetime_seconds},
                          secret, algorithm=ALGORITHM)


def decode(secret: str | bytes, token: str, *, max_seconds: int,
           now: float | None = None) -> dict[str, Any]:
    """The claims of a valid token, or TokenError saying why it is refused."""
    if not isinstance(token, str) or len(token) > 4096 or not _COMPACT_JWS.fullmatch(token):
        raise TokenError("malformed")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", jwt.InsecureKeyLengthWarning)
            claims = jwt.decode(token, secret, algorithms=[ALGORITHM], options={
                # times are checked below, against `now`
                "verify_exp": False, "verify_iat": False, "verify_nbf": False})
    except jwt.InvalidSignatureError as exc:
        raise TokenError("bad signature") from exc
    except jwt.InvalidTokenError as exc:
        raise TokenError("malformed") from exc
    issued, expires = claims.get("iat"), claims.get("exp")
    if not all(isinstance(v, int) and not isinstance(v, bool) for v in (issued, expires)):
        raise TokenError("needs integer 'iat' and 'exp' claims")
    current = time.time() if now is None else now
    if expires <= issued:
        raise TokenError("expires before it was issued")
    if expires - issued > max_seconds or expires - current > max_seconds + CLOCK_SKEW_SECONDS:
        raise TokenError(f"lifetime exceeds {max_seconds} seconds")
    if issued > current + CLOCK_SKEW_SECONDS:
        raise TokenError("issued in the future")
    if expires + CLOCK_SKEW_SECONDS < current:
        raise TokenError("expired")
    return claims
