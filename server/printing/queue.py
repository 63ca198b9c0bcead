"""The print queue: an archived document whose plan reaches print -> a queued mail piece.

Every document composed with the print channel becomes one row in `print_pieces` (put there
by its print delivery once the contact rules let the letter go, server.archiving), addressed
to the print shop and production profile its tenant prints with (settings, below). A piece
waits there until `server.printing.batches` closes it into a batch, or until a correction of
its document withdraws it (`withdraw_on`: its `batch_id` becomes `WITHDRAWN`, so no batch
ever claims it; a piece already in a batch stays there). The queue keeps only
what batching needs -- where the archived PDF is (key + sha256), its pages, its sheet rules
(simplex/duplex, pages that must be a front, blank backs: server.printing.sheets) and the
sheets they make on the profile, envelope and inserts, and the sort facts (country, postal
code) -- never names or addresses.

The tables (`print_pieces`, `print_batches`, `print_sequences`) live in the same database as
the archive index, in their own SQLAlchemy `MetaData`, created on start with any index an
older database lacks (server.schema.create_tables).
They are deliberately separate from the archive tables (and from any Alembic migrations
of those): the archive must not know about printing.

Settings (``[printing]`` in the server's TOML)::

    [printing]
    batch_size = 500              # a group closes as soon as it has this many pieces
    cutoff_minutes = 240          # ... or when its oldest piece has waited this long
    close_poll_seconds = 5        # how often the server's closer looks (server.printing.closer)
    sort = ["country", "postal_code", "piece_id"]   # the pluggable postage sort key
    retention_days = 90           # object lock on batch PDFs and manifests

    [printing.tenants.nordkort]   # default for every tenant: demo-print / default
    printshop = "acme-print"
    profile = "pb-di-negative"

    [printing.inserts.terms-change-2027]   # insert catalogue: which feeder holds it
    feeder = 1                             # on every profile, or per profile:
    feeders = { "pb-di-negative" = 3 }
    grams = 5

    [[printing.rules]]            # tenant insert / campaign rules (server.compose.rules)
    tenant = "nordkort"
    id = "gold-campaign"
    when = { segment = "gold" }
    insert = "gold-leaflet"
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import (
    BigInteger,
    Column,
    Index,
    Integer,
    MetaData,
    PrimaryKeyConstraint,
    String,
    Table,
    Text,
    insert,
    select,
    update,
)
from sqlalchemy import exc as sa_exc
from sqlalchemy.engine import Connection

from archive.index import DocumentIndex
from archive.tables import UTCDateTime
from server import logs
from server.compose.rules import Rule, parse_rules
from server.errors import FailedPrecondition
from server.printing.profiles import PrintProfile, builtin_profiles
from server.printing.sheets import SheetRules, plan_sheets
from server.schema import create_tables

log = logs.get_logger(__name__)

DEFAULT_PRINTSHOP = "demo-print"
DEFAULT_PROFILE = "default"
SORT_FIELDS = ("country", "postal_code", "piece_id", "document_id", "tenant")
# The `batch_id` of a piece withdrawn before any batch claimed it (never a batch's id: those
# are ULIDs): no longer waiting, in no batch.
WITHDRAWN = "withdrawn"

metadata = MetaData()

print_pieces = Table(
    "print_pieces",
    metadata,
    Column("piece_id", String(64), nullable=False),
    Column("document_id", String(128), nullable=False),
    Column("tenant", String(100), nullable=False),
    Column("printshop", String(100), nullable=False),
    Column("profile", String(100), nullable=False),
    Column("archive_key", Text(), nullable=False),
    Column("pdf_sha256", String(64), nullable=False),
    Column("pages", Integer(), nullable=False),
    Column("envelope", String(32), nullable=False),
    # the document's sheet rules (simplex/duplex, front pages, blank backs), as
    # server.printing.sheets.SheetRules.to_text writes them: "simplex", "duplex;front=-1;..."
    Column("sides", String(200), nullable=False, server_default=""),
    Column("sheets", Integer(), nullable=False, server_default="0"),  # on this profile
    Column("inserts", Text(), nullable=False),  # sorted insert ids, comma-separated
    Column("country", String(2), nullable=False),
    Column("postal_code", String(20), nullable=False),
    Column("queued_at", UTCDateTime(), nullable=False),
    Column("batch_id", String(64), nullable=True),
    Column("reprint_of", String(64), nullable=True),
    PrimaryKeyConstraint("piece_id", name="pk_print_pieces"),
)
# The queue keeps every piece it ever batched: the pieces still waiting (`batch_id` NULL:
# at the closer's every round and every close on request) and a batch's pieces (its build
# and acknowledgement) are found by index, not by reading them all; so are a document's
# reprints (`reprint_of`). load_tests/bench_history_queries.py has the figures.
Index("ix_print_pieces_batch", print_pieces.c.batch_id)
Index("ix_print_pieces_reprint_of", print_pieces.c.reprint_of)

print_batches = Table(
    "print_batches",
    metadata,
    Column("batch_id", String(64), nullable=False),
    Column("tenant", String(100), nullable=False),
    Column("printshop", String(100), nullable=False),
    Column("profile", String(100), nullable=False),
    Column("envelope", String(32), nullable=False),
    Column("inserts", Text(), nullable=False),
    Column("state", String(16), nullable=False),  # ready | fetched | acknowledged
    Column("reason", String(16), nullable=False),  # size | cutoff | request | reprint
    Column("closed_at", UTCDateTime(), nullable=False),
    Column("pieces", Integer(), nullable=False),
    Column("sheets", Integer(), nullable=False),
    Column("pages", Integer(), nullable=False),
    Column("first_sequence", BigInteger(), nullable=False),
    Column("last_sequence", BigInteger(), nullable=False),
    Column("files", Text(), nullable=False),  # JSON: part -> {key, sha256, size}
    Column("acknowledged_at", UTCDateTime(), nullable=True),
    Column("spoiled", Text(), nullable=True),  # JSON list of spoiled piece ids
    Column("reprint_batch_id", String(64), nullable=True),
    PrimaryKeyConstraint("batch_id", name="pk_print_batches"),
)
# Every batch ever made stays; the ones left `closing` (a build interrupted: at every
# close_due, the closer's round, and close_now) are found by state, not by reading them all.
Index("ix_print_batches_state", print_batches.c.state)

print_sequences = Table(
    "print_sequences",
    metadata,
    Column("printshop", String(100), nullable=False),
    Column("profile", String(100), nullable=False),
    Column("next_sequence", BigInteger(), nullable=False),
    PrimaryKeyConstraint("printshop", "profile", name="pk_print_sequences"),
)


# --- settings ----------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Insert:
    """A physical insert in the catalogue: the feeder that holds it, per profile."""

    id: str
    feeder: int | None = None
    feeders: Mapping[str, int] = field(default_factory=dict)
    grams: float = 5.0

    def feeder_for(self, profile: str) -> int | None:
        return self.feeders.get(profile, self.feeder)


@dataclass(frozen=True)
class PrintSettings:
    batch_size: int = 500
    cutoff_minutes: int = 240
    close_poll_seconds: float = 5.0
    sort: tuple[str, ...] = ("country", "postal_code", "piece_id")
    retention_days: int = 90
    tenants: Mapping[str, tuple[str, str]] = field(default_factory=dict)
    inserts: Mapping[str, Insert] = field(default_factory=dict)
    rules: tuple[Rule, ...] = ()
    profiles: Mapping[str, PrintProfile] = field(default_factory=builtin_profiles)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> PrintSettings:
        tenants = {
            name: (str(t.get("printshop", DEFAULT_PRINTSHOP)),
                   str(t.get("profile", DEFAULT_PROFILE)))
            for name, t in data.get("tenants", {}).items()
        }
        inserts = {
            name: Insert(name, i.get("feeder"), dict(i.get("feeders", {})),
                         float(i.get("grams", 5.0)))
            for name, i in data.get("inserts", {}).items()
        }
        sort = tuple(data.get("sort", cls.sort))
        bad = [f for f in sort if f not in SORT_FIELDS]
        if bad:
            raise ValueError(f"printing.sort: unknown field(s) {bad}; use {SORT_FIELDS}")
        settings = cls(
            batch_size=int(data.get("batch_size", cls.batch_size)),
            cutoff_minutes=int(data.get("cutoff_minutes", cls.cutoff_minutes)),
            close_poll_seconds=float(data.get("close_poll_seconds", cls.close_poll_seconds)),
            sort=sort,
            retention_days=int(data.get("retention_days", cls.retention_days)),
            tenants=tenants,
            inserts=inserts,
            rules=parse_rules(data.get("rules", []), "printing.rules"),
        )
        settings.check()
        return settings

    def check(self) -> None:
        """Every profile named exists, every insert's feeder exists on its profiles, and
        every rule's insert is in the catalogue with a feeder on the profile its tenant
        prints with (on some profile, for a rule without tenant). Raises ValueError naming
        the setting (`printing.rules[1]`, rule id and insert id): a rule the print line
        cannot follow must stop the server, not fail each document it matches."""
        if self.batch_size < 1:
            raise ValueError("printing.batch_size: must be at least 1")
        if not 0 < self.close_poll_seconds <= 3600:  # nan too
            raise ValueError("printing.close_poll_seconds: must be above 0 and at most 3600")
        for tenant, (_, profile) in self.tenants.items():
            if profile not in self.profiles:
                raise ValueError(f"printing.tenants.{tenant}.profile: unknown {profile!r}")
        for item in self.inserts.values():
            unknown = sorted(set(item.feeders) - set(self.profiles))
            if unknown:
                raise ValueError(f"printing.inserts.{item.id}.feeders: unknown profile "
                                 f"{unknown[0]!r} (profiles: {', '.join(sorted(self.profiles))})")
            for profile in self.profiles.values():
                feeder = item.feeder_for(profile.id)
                if feeder is not None and not 1 <= feeder <= profile.omr.feeders:
                    raise ValueError(
                        f"printing.inserts.{item.id}: feeder {feeder} does not exist on "
                        f"profile {profile.id!r} (feeders 1..{profile.omr.feeders})")
        self.check_rules(self.rules, "printing.rules")

    def check_rules(self, rules: Sequence[Rule], where: str) -> None:
        """Every rule's insert is catalogued, with a feeder on the profile the rule's tenant
        prints with (a rule without tenant, as a layout manifest's: on some profile).
        ValueError naming `where[n]`, the rule id and the insert."""
        for n, rule in enumerate(rules):
            if rule.insert is not None:
                self._check_rule_insert(f"{where}[{n}] (id {rule.id!r})", rule)

    def _check_rule_insert(self, where: str, rule: Rule) -> None:
        item = self.inserts.get(rule.insert or "")
        if item is None:
            known = ", ".join(sorted(self.inserts)) or "none"
            raise ValueError(
                f"{where}: insert {rule.insert!r} is not in the insert catalogue "
                f"([printing.inserts.<id>]; catalogued: {known})")
        if rule.tenant:
            profile = self.destination(rule.tenant)[1]
            if item.feeder_for(profile) is None:
                raise ValueError(
                    f"{where}: insert {rule.insert!r} has no feeder on profile {profile!r}, "
                    f"the profile tenant {rule.tenant!r} prints with (set "
                    f"printing.inserts.{item.id}.feeder or .feeders.{profile})")
        elif not any(item.feeder_for(p) is not None for p in self.profiles):
            raise ValueError(f"{where}: insert {rule.insert!r} has no feeder on any print "
                             f"profile (set printing.inserts.{item.id}.feeder)")

    def destination(self, tenant: str) -> tuple[str, str]:
        """(print shop, profile) a tenant's documents are printed with."""
        return self.tenants.get(tenant, (DEFAULT_PRINTSHOP, DEFAULT_PROFILE))

    def feeders(self, inserts: Sequence[str], profile: str) -> frozenset[int]:
        """Insert ids -> the profile's feeder numbers; an unknown insert is an error."""
        out = set()
        for insert_id in inserts:
            item = self.inserts.get(insert_id)
            feeder = item.feeder_for(profile) if item else None
            if feeder is None:
                raise ValueError(f"insert {insert_id!r} has no feeder on profile {profile!r}")
            out.add(feeder)
        return frozenset(out)

    def sort_key(self, piece: Mapping[str, Any]) -> tuple[str, ...]:
        return tuple(str(piece[f]).replace(" ", "") for f in self.sort)


# --- the queue ---------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class QueuedPiece:
    """What `DocumentService` hands over for one printed document."""

    document_id: str
    tenant: str
    archive_key: str
    pdf_sha256: str
    pages: int
    envelope: str
    inserts: tuple[str, ...]
    country: str
    postal_code: str
    profile: str = ""  # the document's own print profile (a job's); empty: the tenant's
    sheet_rules: SheetRules = SheetRules()  # the Composition's PrintOptions, as sheet rules
    insert_rules: tuple[tuple[str, str], ...] = ()  # (insert id, rule id that chose it)


class UnprintablePiece(FailedPrecondition):
    """The print settings cannot make this piece (FAILED_PRECONDITION): a rule chose an
    insert the catalogue lacks or no feeder of the piece's profile holds, the profile is not
    configured, or no envelope of the profile takes the piece's sheets. The operator's
    configuration, not the caller's data; raised before the document is archived."""


class PrintQueue:
    """Adds pieces to `print_pieces`; the tables share the archive index's engine."""

    def __init__(self, index: DocumentIndex, settings: PrintSettings):
        self.engine = index.engine
        self.settings = settings

    def create_schema(self) -> None:
        """The print queue's tables, and any of their indexes an older database lacks."""
        with self.engine.begin() as conn:
            create_tables(conn, metadata)

    def enqueue(self, piece: QueuedPiece, now: datetime) -> str:
        """Queue one document for its print shop; idempotent per document. -> piece id"""
        row = self.piece_row(piece, now)
        try:
            with self.engine.begin() as conn:
                conn.execute(insert(print_pieces), row)
        except sa_exc.IntegrityError:
            pass  # already queued (a retried document)
        log.info("print piece queued", document_id=piece.document_id,
                 printshop=row["printshop"], profile=row["profile"])
        return piece.document_id

    @staticmethod
    def enqueue_on(conn: Connection, row: Mapping[str, Any]) -> None:
        """Queue a piece (its `piece_row`) in the caller's transaction: the document's index
        transaction, so a document is indexed with its piece or not at all. A piece already
        queued makes the transaction fail (IntegrityError): the caller falls back to
        `enqueue`."""
        conn.execute(insert(print_pieces), row)

    @staticmethod
    def withdraw_on(conn: Connection, tenant: str, document_id: str) -> list[str]:
        """Withdraw the document's pieces still waiting (a correction replaces the
        document: its letter must not be printed), in the caller's transaction (the
        correction's index transaction). Compare-and-set on `batch_id` NULL, as a batch's
        claim is: a piece a batch claimed first (closed, or closing now: on PostgreSQL the
        update waits for that claim's transaction) stays in its batch and is printed.
        -> the ids of the pieces withdrawn (a reprint of a spoiled piece too)."""
        return list(conn.execute(
            update(print_pieces).where(
                print_pieces.c.tenant == tenant, print_pieces.c.document_id == document_id,
                print_pieces.c.batch_id.is_(None),
            ).values(batch_id=WITHDRAWN).returning(print_pieces.c.piece_id)).scalars())

    def piece_row(self, piece: QueuedPiece, now: datetime) -> dict[str, Any]:
        """The `print_pieces` row of a piece: its print shop, profile, sheets and envelope.
        Raises UnprintablePiece (naming the rule, the insert and the profile) for a piece
        the settings cannot make; `server.archiving` calls it before it stores anything."""
        printshop, profile = self.settings.destination(piece.tenant)
        profile = piece.profile or profile
        spec = self.settings.profiles.get(profile)
        if spec is None:
            raise UnprintablePiece(f"print profile {profile!r} is not configured (profiles: "
                                   f"{', '.join(sorted(self.settings.profiles))})")
        self._check_inserts(piece, profile)
        sheets = plan_sheets(piece.pages, spec.duplex, piece.sheet_rules).sheets
        try:  # after overflow, so a batch groups pieces that really share an envelope
            envelope = spec.envelope_for(sheets, piece.envelope).id
        except ValueError as exc:
            raise UnprintablePiece(f"print piece: {exc}") from None
        return {
            "piece_id": piece.document_id, "document_id": piece.document_id,
            "tenant": piece.tenant, "printshop": printshop, "profile": profile,
            "archive_key": piece.archive_key, "pdf_sha256": piece.pdf_sha256,
            "pages": piece.pages, "envelope": envelope,
            "sides": piece.sheet_rules.to_text(), "sheets": sheets,
            "inserts": ",".join(sorted(piece.inserts)), "country": piece.country or "",
            "postal_code": piece.postal_code or "", "queued_at": now,
            "batch_id": None, "reprint_of": None,
        }

    def _check_inserts(self, piece: QueuedPiece, profile: str) -> None:
        """Every insert of the piece is catalogued with a feeder on `profile`."""
        for insert_id in piece.inserts:
            item = self.settings.inserts.get(insert_id)
            if item is not None and item.feeder_for(profile) is not None:
                continue
            rules = [rule for chosen, rule in piece.insert_rules if chosen == insert_id]
            by = f"rule {', '.join(map(repr, rules))}" if rules else "a rule"
            why = ("is not in the insert catalogue" if item is None
                   else f"has no feeder on print profile {profile!r}")
            raise UnprintablePiece(
                f"{by} chose insert {insert_id!r}, which {why}: the print settings "
                f"([printing.rules], [printing.inserts]) must be fixed")

    def pending(self, tenant: str | None = None) -> list[dict[str, Any]]:
        query = select(print_pieces).where(print_pieces.c.batch_id.is_(None))
        if tenant is not None:
            query = query.where(print_pieces.c.tenant == tenant)
        with self.engine.begin() as conn:
            return [dict(r) for r in conn.execute(query).mappings()]
