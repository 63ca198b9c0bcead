"""Rebuild and check the index from the archive: objects' metadata -> index rows, and index rows
-> re-read, re-hashed objects.

The objects are the record and the index is a cache of their metadata (see `archive.index`),
so three maintenance jobs need nothing but S3 listings and HEADs:

- `reconcile(store, index)`: find documents whose objects are stored but that have no index
  row (the write path stores objects first, then the row; a crash between the two leaves such
  orphans) and index them. `reindex` is the same walk into an empty index.
- `verify(store, index, sample=..., prefix=...)`: re-read every (or a sample of the) indexed
  output (under a key prefix, e.g. one tenant's or customer's), check its bytes against the
  sha256 in the index and in the object's metadata, and report mismatches and missing
  objects.

What is *not* indexed, and reported instead:

- a **race loser**: two servers composed the same idempotency key at once; both stored objects,
  only one index row could win. The loser's objects hold the same idempotency key as an
  indexed document and must never become a second document for it. Keys are listed in order
  (tenant/customer/year/ULID), so in a full reindex the older document of a pair wins.
- an **incomplete** document: fewer outputs stored than its channel plan rendered (the crash
  came between two output writes); its request failed and was retried under a new id.
- an **abandoned** document: its objects sit beside an `abandoned` marker object (channel
  `ABANDONED`), which the server writes when it answered a call with an error after the
  call's objects may have been stored (S3 too slow for the deadline, the index down): the
  caller was told nothing was archived and retries under a new id, so indexing it would
  give the customer a second, never delivered copy.
- **foreign** objects: keys or metadata that are not a Kanal document (e.g. print batches).
- objects younger than `min_age`: a live server may be between its two writes right now.

The listing is S3's lexicographic order, so all outputs of one document arrive together and
the walk keeps one document in memory at a time.
"""

from __future__ import annotations

import json
import random
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

from archive.errors import DuplicateDocument, IntegrityError, ObjectNotFound
from archive.index import DocumentIndex
from archive.keys import parse_document_key
from archive.records import DocumentRecord, OutputRecord, skipped_from_json
from archive.store import ArchiveStore, StoredObject

__all__ = [
    "ABANDONED",
    "ReconcileReport",
    "VerifyReport",
    "reconcile",
    "record_from_objects",
    "reindex",
    "verify",
]

ABANDONED = "abandoned"  # the channel of a document's abandoned marker (see module doc)
_REQUIRED = ("tenant", "customer-id", "document-id", "kind", "layout", "locale", "created-at",
             "input-sha256", "channel-plan", "channel")


@dataclass
class ReconcileReport:
    indexed: list[str] = field(default_factory=list)  # "tenant/document_id" newly indexed
    already_indexed: int = 0
    race_losers: list[str] = field(default_factory=list)  # same idempotency key as a winner
    incomplete: list[str] = field(default_factory=list)
    abandoned: list[str] = field(default_factory=list)  # the server refused their call
    too_young: list[str] = field(default_factory=list)
    foreign_keys: list[str] = field(default_factory=list)
    # keys with versions written over Kanal's (read from Kanal's, the first: archive.versions)
    overwritten: list[str] = field(default_factory=list)

    def summary(self) -> str:
        return (f"indexed {len(self.indexed)}, already indexed {self.already_indexed}, "
                f"skipped race losers {len(self.race_losers)}, incomplete "
                f"{len(self.incomplete)}, abandoned {len(self.abandoned)}, "
                f"too young {len(self.too_young)}, "
                f"foreign objects {len(self.foreign_keys)}, "
                f"written over by others {len(self.overwritten)}")


@dataclass
class VerifyReport:
    checked: int = 0
    mismatched: list[str] = field(default_factory=list)  # keys whose bytes fail their sha256
    missing: list[str] = field(default_factory=list)  # keys in the index but not in S3
    # keys whose current version is another's (written or deleted around the archive) while
    # Kanal's, the first, is intact and is what Kanal reads (archive.versions)
    overwritten: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        """No key failed: an overwritten key is intact, but someone with S3 credentials
        went around the archive, which an operator must look into."""
        return not self.mismatched and not self.missing and not self.overwritten

    def summary(self) -> str:
        return (f"checked {self.checked} objects: {len(self.mismatched)} sha256 mismatches, "
                f"{len(self.missing)} missing, {len(self.overwritten)} written over by "
                f"others (the retained original intact)")


def record_from_objects(objects: Iterable[StoredObject]) -> DocumentRecord:
    """The index row of one document, from the metadata of its stored outputs alone."""
    objects = sorted(objects, key=lambda o: o.metadata["channel"])
    first = objects[0].metadata
    outputs = []
    for obj in objects:
        meta = obj.metadata
        pages = meta.get("pages", "")
        outputs.append(OutputRecord(
            channel=meta["channel"], key=obj.key, media_type=obj.media_type, sha256=obj.sha256,
            size=obj.size, pages=int(pages) if pages.isdigit() else None,
            facts=json.loads(meta.get("facts") or "{}"),
        ))
    return DocumentRecord(
        tenant=first["tenant"],
        document_id=first["document-id"],
        customer_id=first["customer-id"],
        kind=first["kind"],
        layout_ref=first["layout"],
        locale=first["locale"],
        created_at=datetime.fromisoformat(first["created-at"]).astimezone(UTC),
        input_sha256=first["input-sha256"],
        idempotency_key=first.get("idempotency-key") or None,
        channel_plan=first["channel-plan"],
        retain_until=objects[0].retain_until,
        outputs=tuple(outputs),
        corrects_document_id=first.get("corrects-document-id") or None,
        locale_decision=first.get("locale-decision") or None,
        skipped_channels=skipped_from_json(first.get("skipped-channels")),
        plan_reason=first.get("plan-reason") or None,
    )


def _documents(store: ArchiveStore, prefix: str, report: ReconcileReport
               ) -> Iterator[list[StoredObject]]:
    """Stored objects grouped per document (adjacent in the listing)."""
    group: list[StoredObject] = []
    current: tuple[str, str] | None = None
    for obj in store.iter_objects(prefix):
        try:
            parse_document_key(obj.key)
        except ValueError:
            report.foreign_keys.append(obj.key)
            continue
        if any(name not in obj.metadata for name in _REQUIRED) or not obj.sha256:
            report.foreign_keys.append(obj.key)
            continue
        if obj.newer_versions:
            report.overwritten.append(obj.key)
        ident = (obj.metadata["tenant"], obj.metadata["document-id"])
        if ident != current and group:
            yield group
            group = []
        current = ident
        group.append(obj)
    if group:
        yield group


def _complete(record: DocumentRecord) -> bool:
    rendered = {c for c in record.channel_plan.partition(">")[0].split(",") if c}
    return rendered <= {o.channel for o in record.outputs}


def reconcile(
    store: ArchiveStore,
    index: DocumentIndex,
    *,
    prefix: str = "",
    min_age: timedelta = timedelta(minutes=10),
    now: datetime | None = None,
) -> ReconcileReport:
    """Index every stored document under `prefix` that the index lacks (see module doc)."""
    report = ReconcileReport()
    cutoff = (now or datetime.now(UTC)) - min_age
    for group in _documents(store, prefix, report):
        record = record_from_objects(group)
        name = f"{record.tenant}/{record.document_id}"
        if index.known_ids(record.tenant, [record.document_id]):
            report.already_indexed += 1
            continue
        if any(obj.metadata["channel"] == ABANDONED for obj in group):
            report.abandoned.append(name)
            continue
        if record.created_at > cutoff:
            report.too_young.append(name)
            continue
        if not _complete(record):
            report.incomplete.append(name)
            continue
        try:
            index.add(record)
        except DuplicateDocument as exc:
            if exc.field == "idempotency_key":
                report.race_losers.append(name)
            else:
                report.already_indexed += 1
            continue
        report.indexed.append(name)
    return report


def reindex(store: ArchiveStore, index: DocumentIndex, *, prefix: str = "") -> ReconcileReport:
    """Rebuild the index from the bucket's metadata alone (migrating an empty index first).
    Nothing is too young here: a lost index has to come back complete."""
    index.migrate()
    return reconcile(store, index, prefix=prefix, min_age=timedelta(0),
                     now=datetime.now(UTC) + timedelta(days=1))


def verify(
    store: ArchiveStore,
    index: DocumentIndex,
    *,
    sample: float = 1.0,
    prefix: str = "",
    rng: random.Random | None = None,
) -> VerifyReport:
    """Re-read indexed outputs (all, or each with probability `sample`) whose key begins
    with `prefix` ("" = every key; e.g. `archive.keys.customer_prefix(tenant, customer)`),
    and check their sha256 against both the index and the object's own metadata.
    ValueError for a sample outside (0, 1]."""
    if not 0 < sample <= 1:
        raise ValueError("sample must be within (0, 1]")
    rng = rng or random.Random()
    report = VerifyReport()
    for record in index.iter_all(key_prefix=prefix):
        for output in record.outputs:
            if not output.key.startswith(prefix):
                continue  # another output of a document that has one under the prefix
            if sample < 1 and rng.random() >= sample:
                continue
            report.checked += 1
            try:
                store.get(output.key, expected_sha256=output.sha256, current_only=True)
            except (IntegrityError, ObjectNotFound):
                _recheck(store, output.key, output.sha256, report)
    return report


def _recheck(store: ArchiveStore, key: str, sha256: str, report: VerifyReport) -> None:
    """Where `key`'s current version failed: overwritten when Kanal's, the first, verifies."""
    try:
        store.get(key, expected_sha256=sha256)
    except IntegrityError:
        report.mismatched.append(key)
    except ObjectNotFound:
        report.missing.append(key)
    else:
        report.overwritten.append(key)
