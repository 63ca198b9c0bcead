"""The archive as a portal reads it: (caller, customer token, request) -> a customer's documents,
their verified bytes and short-lived download URLs; plus legal holds for administrators.

Who may see what is decided here, once, for every Portal RPC:

- a `service` (customer service) or `admin` caller reads any customer of its own tenant;
- a `portal` caller acts for ONE customer, named by a *customer token* that the tenant's own
  portal backend signs after logging the customer in: a JWT (HS256) with the tenant's secret
  from settings (`[portal.customer_token_secrets]`, at least 32 bytes), carrying `tenant`,
  `sub` (the customer id), `iat` and `exp`, living at most `customer_token_max_seconds`
  (default 3600; see server.tokens for every check). The request body may repeat the
  customer id but never chooses it. The development setup (no API keys configured) makes a
  secret for tenant `demo` in `state_dir/dev-customer-token-secrets.json`; `kanal portal
  token CUSTOMER` mints a token with it.

Every document of another tenant or another customer is reported exactly like one that does
not exist (NOT_FOUND), so probing ids learns nothing. A listing is never NOT_FOUND for want of
documents: a customer without any (new, or all past retention), one the tenant does not know
and another tenant's customer are the same empty page, so a listing tells nothing about who
exists either. A portal caller naming another customer than its token's is NOT_FOUND, whoever
that is (the token chooses the customer; the request may only repeat it).

Page tokens are keyset cursors: the (created_at, document_id) of the last row shown, plus a
fingerprint of tenant, customer and filters, signed by the server (a JWT like the customer
tokens) and valid for `page_token_seconds` (default 3600). New documents sort before the
cursor, so paging stays complete and free of duplicates while they arrive; a modified,
foreign or expired token is refused (INVALID_ARGUMENT on `page_token`).
"""

from __future__ import annotations

import hashlib
import json
import os
import secrets
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

from archive.errors import ArchiveUnavailable, IntegrityError, ObjectNotFound
from archive.index import DocumentIndex
from archive.records import DocumentRecord, OutputRecord
from archive.store import ArchiveStore
from server import logs, tokens
from server.auth import Caller, single_entry
from server.compose.model import DocumentKind
from server.errors import (
    DataLoss,
    InvalidInput,
    NotFound,
    PermissionDenied,
    Unauthenticated,
    Unavailable,
    quote,
)

log = logs.get_logger(__name__)

CUSTOMER_TOKEN_HEADER = "x-kanal-customer-token"
CHUNK_BYTES = 64 * 1024
MAX_PAGE_SIZE = 200
DEFAULT_URL_SECONDS = 300
KINDS = tuple(k.value for k in DocumentKind)  # what ListDocuments' `kinds` may name
MAX_URL_SECONDS = 900
CUSTOMER_TOKEN_MAX_SECONDS = 3600
PAGE_TOKEN_SECONDS = 3600
DEVELOPMENT_TENANT = "demo"


# --- signed tokens ---------------------------------------------------------------------------


def issue_customer_token(secret: str, tenant: str, customer_id: str, *,
                         ttl_seconds: int = 900, now: float | None = None) -> str:
    """What a tenant's portal backend sends for a logged-in customer: a JWT (HS256) with
    `tenant`, `sub` = customer id, `iat`, `exp` (also `kanal portal token`, and the tests).
    ValueError for an empty customer id or a lifetime that is not positive: such a token
    would name no one, or be expired (exp before iat) when made."""
    if not customer_id or not customer_id.strip():
        raise ValueError("the customer id is empty: a customer token names its customer")
    if ttl_seconds < 1:
        raise ValueError(f"the lifetime must be at least 1 second, not {ttl_seconds}")
    return tokens.encode(secret, {"tenant": tenant, "sub": customer_id}, ttl_seconds, now=now)


# --- scope -------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Scope:
    tenant: str
    customer_id: str | None  # None: any customer of the tenant


@dataclass(frozen=True, slots=True)
class ListQuery:
    customer_id: str
    kinds: tuple[str, ...] = ()
    channels: tuple[str, ...] = ()
    layout_id: str = ""
    created_from: datetime | None = None
    created_before: datetime | None = None
    page_size: int = 50
    page_token: str = ""


@dataclass(frozen=True, slots=True)
class Page:
    documents: list[DocumentRecord]
    corrected_by: dict[str, list[str]]
    next_page_token: str


class PortalService:
    def __init__(self, store: ArchiveStore, index: DocumentIndex, *,
                 customer_token_secrets: Mapping[str, str], page_token_secret: bytes,
                 max_token_seconds: int | None = None, page_token_seconds: int | None = None,
                 clock: Callable[[], float] = time.time):
        """Raises ValueError for a secret shorter than 32 bytes (tokens.check_secret)."""
        for tenant, secret in customer_token_secrets.items():
            tokens.check_secret(f"portal.customer_token_secrets.{tenant}", secret)
        tokens.check_secret("portal.page_token_secret", page_token_secret)
        self.store = store
        self.index = index
        self.customer_token_secrets = dict(customer_token_secrets)
        self.page_token_secret = page_token_secret
        self.max_token_seconds = max_token_seconds or CUSTOMER_TOKEN_MAX_SECONDS
        self.page_token_seconds = page_token_seconds or PAGE_TOKEN_SECONDS
        self.clock = clock

    # --- who -------------------------------------------------------------------------------

    def scope(self, caller: Caller, metadata: Sequence[tuple[str, object]]) -> Scope:
        """What `caller` may read: a service or admin key its tenant's documents, a portal key
        one customer's, named by exactly one `x-kanal-customer-token` metadata entry (a JWT
        of the tenant's secret). Raises `PermissionDenied` for other roles, `Unauthenticated`
        for a token missing, sent twice or more, or refused."""
        if caller.role in ("service", "admin"):
            return Scope(caller.tenant, None)
        if caller.role != "portal":
            raise PermissionDenied(f"role {caller.role!r} may not read the archive")
        given = single_entry(metadata, CUSTOMER_TOKEN_HEADER)
        token = None if given is None else str(given)
        if not token:
            raise Unauthenticated(f"a portal caller must send '{CUSTOMER_TOKEN_HEADER}' metadata")
        secret = self.customer_token_secrets.get(caller.tenant)
        if not secret:
            raise Unauthenticated(f"no customer token secret configured for {caller.tenant!r}")
        try:
            claims = tokens.decode(secret, token, max_seconds=self.max_token_seconds,
                                   now=self.clock())
        except tokens.TokenError as exc:
            raise Unauthenticated(f"customer token refused: {exc}") from exc
        customer = claims.get("sub")
        if claims.get("tenant") != caller.tenant:
            raise Unauthenticated("customer token refused: not for this tenant")
        if not isinstance(customer, str) or not customer:
            raise Unauthenticated("customer token refused: no customer id ('sub' claim)")
        return Scope(caller.tenant, customer)

    def _visible(self, scope: Scope, document_id: str) -> DocumentRecord:
        if not document_id:
            raise InvalidInput.field("document_id", "is required")
        record = self._index(lambda: self.index.get(scope.tenant, document_id))
        if record is None or (scope.customer_id is not None
                              and record.customer_id != scope.customer_id):
            raise NotFound(f"no document {document_id!r}")
        return record

    @staticmethod
    def _index(call):  # type: ignore[no-untyped-def]
        try:
            return call()
        except ArchiveUnavailable as exc:
            raise Unavailable(f"document index unavailable: {exc}") from exc

    # --- listing ---------------------------------------------------------------------------

    def list_documents(self, scope: Scope, query: ListQuery) -> Page:
        """One page of a customer's documents, newest first: an empty page (no token) when
        the customer has none in this tenant. InvalidInput for a missing customer (service
        caller), bad filters or page token; NotFound for a portal caller naming a customer
        other than its token's; Unavailable when the index is down."""
        customer_id = query.customer_id or scope.customer_id
        if not customer_id:
            raise InvalidInput.field("customer_id", "is required for a customer-service caller")
        if scope.customer_id is not None and customer_id != scope.customer_id:
            raise NotFound(f"no customer {customer_id!r}")
        unknown = [k for k in query.kinds if k not in KINDS]
        if unknown:
            n = query.kinds.index(unknown[0])
            raise InvalidInput.field(
                f"kinds[{n}]", f"unknown document kind {quote(unknown[0])}; the kinds are: "
                f"{', '.join(KINDS)}")
        size = query.page_size or 50
        if not 1 <= size <= MAX_PAGE_SIZE:
            raise InvalidInput.field("page_size", f"must be within 1..{MAX_PAGE_SIZE}")
        if (query.created_from and query.created_before
                and query.created_from >= query.created_before):
            raise InvalidInput.field("created_before", "must be after created_from")
        fingerprint = self._fingerprint(scope.tenant, customer_id, query)
        after = self._read_page_token(query.page_token, fingerprint) if query.page_token else None
        rows = self._index(lambda: self.index.list_page(
            scope.tenant, customer_id, limit=size + 1, after=after, kinds=query.kinds,
            channels=query.channels, layout_id=query.layout_id or None,
            created_from=query.created_from, created_before=query.created_before,
        ))
        page, more = rows[:size], len(rows) > size
        token = ""
        if more:
            last = page[-1]
            token = tokens.encode(self.page_token_secret, {
                "a": last.created_at.isoformat(), "d": last.document_id, "f": fingerprint},
                self.page_token_seconds, now=self.clock())
        corrected_by = self._index(
            lambda: self.index.corrected_by(scope.tenant, [r.document_id for r in page]))
        return Page(page, corrected_by, token)

    @staticmethod
    def _fingerprint(tenant: str, customer_id: str, query: ListQuery) -> str:
        filters = [tenant, customer_id, sorted(query.kinds), sorted(query.channels),
                   query.layout_id,
                   query.created_from.isoformat() if query.created_from else "",
                   query.created_before.isoformat() if query.created_before else ""]
        return hashlib.sha256(json.dumps(filters).encode()).hexdigest()[:32]

    def _read_page_token(self, token: str, fingerprint: str) -> tuple[datetime, str]:
        try:
            payload = tokens.decode(self.page_token_secret, token,
                                    max_seconds=self.page_token_seconds, now=self.clock())
        except tokens.TokenError as exc:
            if str(exc) == "expired":
                raise InvalidInput.field(
                    "page_token", "expired: list again from the first page") from exc
            payload = {}
        if payload.get("f") != fingerprint:
            raise InvalidInput.field(
                "page_token", "not a page token of this listing (filters changed or modified)")
        try:
            created = datetime.fromisoformat(str(payload["a"])).astimezone(UTC)
        except (KeyError, ValueError) as exc:
            raise InvalidInput.field("page_token", "malformed") from exc
        return created, str(payload.get("d", ""))

    # --- one document ----------------------------------------------------------------------

    def get_document(self, scope: Scope, document_id: str) -> tuple[DocumentRecord, list[str]]:
        record = self._visible(scope, document_id)
        chain = self._index(lambda: self.index.corrected_by(scope.tenant, [document_id]))
        return record, chain[document_id]

    @staticmethod
    def _output(record: DocumentRecord, channel: str | None) -> OutputRecord:
        if not record.outputs:
            raise NotFound(f"document {record.document_id!r} has no stored output")
        if channel:
            for output in record.outputs:
                if output.channel == channel:
                    return output
            raise NotFound(f"document {record.document_id!r} has no {channel} output")
        by_channel = {o.channel: o for o in record.outputs}
        return by_channel.get("print") or record.outputs[0]

    def fetch(self, scope: Scope, document_id: str, channel: str | None
              ) -> tuple[OutputRecord, Iterator[bytes]]:
        """The output and its bytes in chunks; the whole object is verified against the
        sha256 in its metadata and in the index before the first chunk is sent."""
        record = self._visible(scope, document_id)
        output = self._output(record, channel)
        try:
            content = self.store.get(output.key, expected_sha256=output.sha256)
        except IntegrityError as exc:
            log.error("archived object fails its sha256", document_id=document_id,
                      channel=output.channel)
            raise DataLoss(f"document {document_id!r} failed its integrity check") from exc
        except ObjectNotFound as exc:
            log.error("indexed object missing", document_id=document_id, channel=output.channel)
            raise DataLoss(f"document {document_id!r} is missing from the archive") from exc
        except ArchiveUnavailable as exc:
            raise Unavailable(f"e-archive unavailable: {exc}") from exc
        chunks = (content[i:i + CHUNK_BYTES] for i in range(0, max(len(content), 1), CHUNK_BYTES))
        return output, chunks

    def download_url(self, scope: Scope, document_id: str, channel: str | None,
                     expires_seconds: int) -> tuple[OutputRecord, str, datetime]:
        seconds = expires_seconds or DEFAULT_URL_SECONDS
        if not 1 <= seconds <= MAX_URL_SECONDS:
            raise InvalidInput.field("expires_seconds", f"must be within 1..{MAX_URL_SECONDS}")
        record = self._visible(scope, document_id)
        output = self._output(record, channel)
        issued = datetime.now(UTC)
        try:  # Kanal's version, the key's first, whatever was written over it since
            versions = self.store.versions(output.key)
        except ArchiveUnavailable as exc:
            raise Unavailable(f"e-archive unavailable: {exc}") from exc
        if versions is None:
            log.error("indexed object missing", document_id=document_id, channel=output.channel)
            raise DataLoss(f"document {document_id!r} is missing from the archive")
        url = self.store.presigned_url(output.key, seconds, versions.first)
        return output, url, issued + timedelta(seconds=seconds)


class ArchiveAdminService:
    """Legal holds: an administrator of a tenant holds or releases all of a document's
    objects (retention is untouched: a hold only adds to it)."""

    def __init__(self, store: ArchiveStore, index: DocumentIndex):
        self.store = store
        self.index = index

    def _record(self, tenant: str, document_id: str) -> DocumentRecord:
        if not document_id:
            raise InvalidInput.field("document_id", "is required")
        try:
            record = self.index.get(tenant, document_id)
        except ArchiveUnavailable as exc:
            raise Unavailable(f"document index unavailable: {exc}") from exc
        if record is None:
            raise NotFound(f"no document {document_id!r}")
        return record

    def set_legal_hold(self, tenant: str, document_id: str, on: bool) -> list[str]:
        record = self._record(tenant, document_id)
        for output in record.outputs:
            self.store.set_legal_hold(output.key, on)
        log.info("legal hold set" if on else "legal hold released", document_id=document_id)
        return self.held_keys(tenant, document_id)

    def held_keys(self, tenant: str, document_id: str) -> list[str]:
        record = self._record(tenant, document_id)
        return [o.key for o in record.outputs if self.store.legal_hold(o.key)]


def _made_once(path: Path, make: Callable[[], bytes]) -> bytes:
    """The content of a private (0600) file, written with `make()` by whoever comes first."""
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        try:
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        except FileExistsError:
            return path.read_bytes()
        with os.fdopen(fd, "wb") as out:
            out.write(make())
    return path.read_bytes()


def customer_token_secrets(configured: Mapping[str, str], state_dir: Path, *,
                           development: bool) -> dict[str, str]:
    """The configured secrets per tenant; in the development setup also one for tenant
    `demo`, made once per state dir (0600) in dev-customer-token-secrets.json."""
    if not development or DEVELOPMENT_TENANT in configured:
        return dict(configured)
    made = _made_once(state_dir / "dev-customer-token-secrets.json", lambda: json.dumps(
        {DEVELOPMENT_TENANT: secrets.token_urlsafe(32)}).encode())
    return {**json.loads(made), **configured}


def page_token_secret(configured: str | None, state_dir: Path) -> bytes:
    """The configured page-token secret (share it between servers behind one load balancer),
    else one made once per state dir and kept private (0600)."""
    if configured:
        return configured.encode()
    return _made_once(state_dir / "portal-page-token.key",
                      lambda: secrets.token_urlsafe(32).encode())
