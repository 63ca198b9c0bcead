"""A bulk job's values as the job store hands them out: its header, its row, a chunk's
summary (documents, failed, pages, per channel: [documents, pages]), the job's progress, a
record and a record's error. No database here (server.jobs.store)."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any


@dataclass(frozen=True, slots=True)
class JobHeader:
    tenant: str
    layout_id: str
    layout_version: str
    job_name: str = ""
    channels: tuple[str, ...] = ()
    print_profile: str = ""
    priority: int = 0


@dataclass(frozen=True, slots=True)
class JobRow:
    job_id: str
    header: JobHeader
    state: str
    total: int
    chunks: int
    chunk_size: int
    created_at: datetime
    started_at: datetime | None
    finished_at: datetime | None


@dataclass(slots=True)
class ChunkSummary:
    documents: int = 0
    failed: int = 0
    pages: int = 0
    channels: dict[str, list[int]] = field(default_factory=dict)  # channel -> [docs, pages]

    def add(self, other: ChunkSummary) -> None:
        self.documents += other.documents
        self.failed += other.failed
        self.pages += other.pages
        for channel, (docs, pages) in other.channels.items():
            mine = self.channels.setdefault(channel, [0, 0])
            mine[0] += docs
            mine[1] += pages

    def count(self, result: Any) -> None:
        """One document done: `result` is its ComposeResult (its outputs and pages)."""
        self.documents += 1
        for output in result.outputs:
            pages = output.pages or 0
            self.pages += pages
            mine = self.channels.setdefault(output.channel, [0, 0])
            mine[0] += 1
            mine[1] += pages

    def to_json(self) -> str:
        return json.dumps({"documents": self.documents, "failed": self.failed,
                           "pages": self.pages, "channels": self.channels})

    @classmethod
    def from_json(cls, text: str) -> ChunkSummary:
        raw = json.loads(text)
        return cls(raw["documents"], raw["failed"], raw["pages"],
                   {k: list(v) for k, v in raw["channels"].items()})


@dataclass(frozen=True, slots=True)
class Progress:
    job: JobRow
    total: int
    pending: int
    running: int
    done: int
    failed: int
    summary: ChunkSummary
    # why running chunks are stalled (server.jobs.stalls) and why chunks keep failing, "; "
    # between them (empty: neither)
    stalled: str = ""
    retry_at: datetime | None = None  # the next try of a failing chunk
    cancelled: int = 0  # records never composed: the job was cancelled before them
    idempotency_key: str = ""  # the header's key the job was submitted with ("": none)


@dataclass(frozen=True, slots=True)
class RecordOptions:
    """What a record's sender adds to its compose request beyond the data (only journeys
    set it, server.journeys.sends; SubmitBatch records have none): the consents and
    opt-outs of the customer's profile, and `fallbacks = False` for a send whose journey
    reacts to a bounce itself (server.compose.composer.ComposeRequest)."""

    consents: tuple[str, ...] = ()
    opt_outs: tuple[str, ...] = ()
    fallbacks: bool = True

    def to_json(self) -> str | None:
        """JSON for `kanal_job_records.options_json`; None when there is nothing to add."""
        if self == NO_OPTIONS:
            return None
        return json.dumps({"consents": list(self.consents), "opt_outs": list(self.opt_outs),
                           "fallbacks": self.fallbacks}, sort_keys=True)

    @classmethod
    def from_json(cls, text: str | None) -> RecordOptions:
        if not text:
            return NO_OPTIONS
        data = json.loads(text)
        return cls(tuple(data.get("consents", ())), tuple(data.get("opt_outs", ())),
                   bool(data.get("fallbacks", True)))


NO_OPTIONS = RecordOptions()


@dataclass(frozen=True, slots=True)
class Record:
    seq: int
    record_key: str
    data_json: str
    failed: bool = False  # its error is on its row: a run before this one settled it
    options: RecordOptions = NO_OPTIONS


@dataclass(frozen=True, slots=True)
class RecordError:
    record_key: str
    field: str
    message: str
