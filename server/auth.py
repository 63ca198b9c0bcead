"""Who is calling: API keys -> `Caller` (tenant + role), and what each role may call.

Keys are stored hashed (sha256) in configuration, each bound to one tenant and one role:

    [[auth.keys]]
    id = "nordkort-core"            # a name for logs; never the key itself
    sha256 = "9f86d081..."          # sha256 hex of the secret key
    tenant = "nordkort"
    role = "producer"               # producer | service | portal | admin | printshop:<id>

Roles: `producer` (a bank's core system: composes, submits jobs), `service` (customer
service: reads any customer of its tenant), `portal` (the customer web portal: reads one
customer at a time), `printshop:<id>` (pulls and acknowledges its own print batches),
`admin` (operations of its tenant: legal holds, reindex).

A caller presents its key as `authorization: Bearer <key>` metadata. Callers are scoped to
their tenant: data of another tenant is reported as NOT_FOUND, so ids never leak.
"""

from __future__ import annotations

import contextvars
import hashlib
import hmac
import secrets
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from server.errors import PermissionDenied, Unauthenticated

ROLES = ("producer", "service", "portal", "admin")
PRINTSHOP_PREFIX = "printshop:"


class AuthConfigError(ValueError):
    """An API key entry in the configuration is malformed."""


@dataclass(frozen=True, slots=True)
class Caller:
    key_id: str
    tenant: str
    role: str  # one of ROLES, or "printshop:<id>"

    @property
    def printshop(self) -> str | None:
        return self.role.removeprefix(PRINTSHOP_PREFIX) if self.is_printshop else None

    @property
    def is_printshop(self) -> bool:
        return self.role.startswith(PRINTSHOP_PREFIX)

    @property
    def role_kind(self) -> str:
        """The role without its print-shop id: 'printshop' for every print shop."""
        return "printshop" if self.is_printshop else self.role


@dataclass(frozen=True, slots=True)
class ApiKey:
    id: str
    sha256: str
    tenant: str
    role: str


def hash_key(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


def new_key() -> str:
    """A fresh secret key: 'kanal_' + 40 random url-safe characters."""
    return "kanal_" + secrets.token_urlsafe(30)


def parse_keys(entries: Iterable[Mapping[str, Any]]) -> tuple[ApiKey, ...]:
    keys = []
    for n, entry in enumerate(entries):
        where = f"auth.keys[{n}]"
        missing = [f for f in ("id", "sha256", "tenant", "role") if not entry.get(f)]
        if missing:
            raise AuthConfigError(f"{where}: missing {', '.join(missing)}")
        role = str(entry["role"])
        if role not in ROLES and not (role.startswith(PRINTSHOP_PREFIX) and len(role) > 10):
            raise AuthConfigError(f"{where}: unknown role {role!r}")
        digest = str(entry["sha256"]).lower()
        if len(digest) != 64 or any(c not in "0123456789abcdef" for c in digest):
            raise AuthConfigError(f"{where}: sha256 must be 64 hex characters")
        keys.append(ApiKey(str(entry["id"]), digest, str(entry["tenant"]), role))
    return tuple(keys)


def single_entry(metadata: Iterable[tuple[str, Any]], name: str) -> Any:
    """The value of the one `name` metadata entry, or None when there is none. Raises
    `Unauthenticated` for two or more: which one counts would be the server's guess
    (RFC 7235 §4.2 for 'authorization'; so too for a portal's customer token)."""
    given = [value for key, value in metadata if key == name]
    if len(given) > 1:
        raise Unauthenticated(f"{len(given)} '{name}' metadata entries: send one")
    return given[0] if given else None


class Authenticator:
    """Looks a presented key up by its hash; compares in constant time."""

    def __init__(self, keys: Iterable[ApiKey]):
        self._by_hash = {key.sha256: key for key in keys}

    def authenticate(self, metadata: Iterable[tuple[str, Any]]) -> Caller:
        presented = None
        value = single_entry(metadata, "authorization")
        if isinstance(value, str):
            scheme, _, token = value.partition(" ")
            if scheme.lower() == "bearer" and token:
                presented = token.strip()
        if presented is None:
            raise Unauthenticated("no API key: send 'authorization: Bearer <key>' metadata")
        digest = hash_key(presented)
        for known, key in self._by_hash.items():
            if hmac.compare_digest(known, digest):
                return Caller(key_id=key.id, tenant=key.tenant, role=key.role)
        raise Unauthenticated("unknown API key")


# --- what each role may call -------------------------------------------------------------------
# Full gRPC method name -> role kinds allowed. A method missing here is refused for everyone,
# so a new RPC is closed until someone decides who may call it.
PERMISSIONS: dict[str, frozenset[str]] = {
    "/kanal.v1.Documents/Compose": frozenset({"producer", "admin"}),
    "/kanal.v1.Documents/GetDocument": frozenset({"producer", "service", "admin"}),
    "/kanal.v1.Layouts/ListLayouts": frozenset({"producer", "service", "admin", "portal"}),
    "/kanal.v1.Layouts/GetLayout": frozenset({"producer", "service", "admin", "portal"}),
    "/kanal.v1.PrintShop/ListPrintBatches": frozenset({"printshop", "admin"}),
    "/kanal.v1.PrintShop/FetchPrintBatch": frozenset({"printshop", "admin"}),
    "/kanal.v1.PrintShop/AcknowledgePrintBatch": frozenset({"printshop"}),
    "/kanal.v1.PrintShop/ClosePrintBatches": frozenset({"admin"}),
    "/kanal.v1.Jobs/SubmitBatch": frozenset({"producer", "admin"}),
    "/kanal.v1.Jobs/GetJob": frozenset({"producer", "admin"}),
    "/kanal.v1.Jobs/WatchJob": frozenset({"producer", "admin"}),
    "/kanal.v1.Jobs/CancelJob": frozenset({"producer", "admin"}),
    "/kanal.v1.Jobs/GetJobErrors": frozenset({"producer", "admin"}),
    "/kanal.v1.Jobs/ResumeJob": frozenset({"producer", "admin"}),
    "/kanal.v1.Jobs/GetJobCancelledRecords": frozenset({"producer", "admin"}),
    "/kanal.v1.Portal/ListDocuments": frozenset({"service", "portal", "admin"}),
    "/kanal.v1.Portal/GetDocument": frozenset({"service", "portal", "admin"}),
    "/kanal.v1.Portal/FetchDocument": frozenset({"service", "portal", "admin"}),
    "/kanal.v1.Portal/GetDownloadUrl": frozenset({"service", "portal", "admin"}),
    "/kanal.v1.ArchiveAdmin/SetLegalHold": frozenset({"admin"}),
    "/kanal.v1.ArchiveAdmin/GetLegalHold": frozenset({"admin", "service"}),
    "/kanal.v1.Deliveries/ListDeliveries": frozenset({"producer", "service", "admin"}),
    "/kanal.v1.Deliveries/GetDelivery": frozenset({"producer", "service", "admin"}),
    "/kanal.v1.Deliveries/RetryDelivery": frozenset({"admin"}),
    "/kanal.v1.Deliveries/CancelDelivery": frozenset({"admin"}),
    "/kanal.v1.Deliveries/WatchDeliveries": frozenset({"producer", "service", "admin"}),
    # Surveys (server/surveys): the bank's core system sends surveys and feeds inbound SMS
    # and conversions; a portal or app records the answer its customer gives with the link
    # (the token decides whose answer it is); customer service closes follow-ups.
    "/kanal.v1.Surveys/SendSurvey": frozenset({"producer", "admin"}),
    "/kanal.v1.Surveys/RecordResponse": frozenset({"portal", "service", "producer", "admin"}),
    "/kanal.v1.Surveys/RecordSmsReply": frozenset({"producer", "admin"}),
    "/kanal.v1.Surveys/GetSurveyReport": frozenset({"producer", "service", "admin"}),
    "/kanal.v1.Surveys/CloseFollowUp": frozenset({"service", "admin"}),
    "/kanal.v1.Surveys/RecordConversion": frozenset({"producer", "admin"}),
    "/kanal.v1.Surveys/GetExperimentReport": frozenset({"producer", "service", "admin"}),
    "/kanal.v1.Events/PublishEvent": frozenset({"producer", "admin"}),
    "/kanal.v1.Events/PublishEventStream": frozenset({"producer", "admin"}),
    "/kanal.v1.Events/PublishEvents": frozenset({"producer", "admin"}),
    # A customer's whole history, personal: customer service only (issue 16).
    "/kanal.v1.Customers/ListCustomerActivity": frozenset({"service"}),
}


def authorize(method: str, caller: Caller) -> None:
    allowed = PERMISSIONS.get(method, frozenset())
    if caller.role_kind not in allowed:
        raise PermissionDenied(f"role {caller.role!r} may not call {method.rsplit('/', 1)[-1]}")


_current: contextvars.ContextVar[Caller | None] = contextvars.ContextVar("caller", default=None)


def set_caller(caller: Caller | None) -> None:
    _current.set(caller)


def current_caller() -> Caller:
    """The authenticated caller of the RPC being served (set by the interceptor)."""
    caller = _current.get()
    if caller is None:
        raise Unauthenticated("no authenticated caller")
    return caller


def tenant_for(caller: Caller, requested: str) -> str:
    """The tenant a request acts for: the caller's own. Naming another tenant is refused."""
    if requested and requested != caller.tenant:
        raise PermissionDenied(f"this API key acts for tenant {caller.tenant!r} only")
    return caller.tenant
