"""A field holding several characters that no text may hold (control characters, bidi
controls, invisible characters: server.compose.data) or that the print fonts cannot draw
(server.channels.glyphs) is ONE violation naming the field's JSON path and its characters,
the first few one by one (with their positions, for the refused ones), then how many more.

QA: a bank's bulk record whose fields held several such characters came back with one
error entry per character in its job's error report (GetJobErrors, `kanal job --errors`)
and one field violation per character in Compose's INVALID_ARGUMENT details; the operator
wants one line per field. Here the real DocumentService composes (SQLite index, S3 a
stand-in) and a real chunk runs on a SQLite job store.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path

import grpc
import pytest
from google.rpc import error_details_pb2
from grpc_status import rpc_status

from server.api.errors import to_status
from server.compose.model import Channel
from server.documents import ComposeInput
from server.errors import InvalidInput
from server.jobs.model import JobHeader, RecordError
from server.jobs.store import JobStore
from server.jobs.worker import Pipeline
from tests.layouts import shipped
from tests.unit.test_log_context import document_service

LAYOUT = shipped().get("card-invoice")
# seven refused characters: RLO at 4, BEL at 10, SOH at 15, ZWSP at 17, LRI, RLI, STX
SPOOFED = "Kari\u202e Nord\x07mann\x01 \u200b\u2066\u2067\x02"
SPOOFED_WHY = (
    "text holds 7 characters not allowed: U+202E RIGHT-TO-LEFT OVERRIDE at 4, U+0007 at 10, "
    "U+0001 at 15, U+200B ZERO WIDTH SPACE at 17, U+2066 LEFT-TO-RIGHT ISOLATE at 18 and 2 "
    "more (bidi control, control character, invisible)")
FONTS = ("no glyph in the print fonts (Inter, Noto Sans, Noto Sans Arabic, "
         "Noto Sans Devanagari, Noto Sans Hebrew, Noto Sans Thai), they would print as "
         "empty boxes")
CJK_NAME_WHY = f"3 characters cannot be printed: U+674E (李), U+5C0F (小) and U+9F8D (龍): {FONTS}"
CJK_LINE_WHY = ("10 characters cannot be printed: U+5317 (北), U+4EAC (京), U+5E02 (市), "
                f"U+671D (朝), U+9633 (阳) and 5 more: {FONTS}")


def data(name: str, line: str | None = None) -> str:
    value = json.loads(LAYOUT.sample_data())
    value["customer"]["name"] = name
    if line is not None:
        value["customer"]["address"]["lines"][0] = line
    return json.dumps(value, ensure_ascii=False)


def field_violations(error: InvalidInput) -> list[tuple[str, str]]:
    """The INVALID_ARGUMENT details a gRPC client decodes (google.rpc.BadRequest)."""
    status = to_status(error)
    assert status.code == grpc.StatusCode.INVALID_ARGUMENT
    decoded = rpc_status.status_pb2.Status.FromString(
        dict(status.trailing_metadata)["grpc-status-details-bin"])
    bad_request = error_details_pb2.BadRequest()
    decoded.details[0].Unpack(bad_request)
    return [(v.field, v.description) for v in bad_request.field_violations]


@pytest.mark.parametrize(("name", "line", "channel", "expected"), [
    (SPOOFED, None, Channel.SMS, [("$.customer.name", SPOOFED_WHY)]),
    ("李小龍", "北京市朝阳区建国路 88 号", Channel.PRINT, [
        ("$.customer.name", CJK_NAME_WHY),
        ("$.customer.address.lines[0]", CJK_LINE_WHY)]),
], ids=["refused-characters", "characters-without-a-glyph"])
def test_compose_refuses_a_field_once_naming_its_characters(
        tmp_path: Path, name: str, line: str | None, channel: Channel,
        expected: list[tuple[str, str]]):
    documents = document_service(tmp_path)
    with pytest.raises(InvalidInput) as refused:
        documents.compose(ComposeInput(tenant="nordkort", layout_id="card-invoice",
                                       data=data(name, line), channels=(channel,)))
    assert field_violations(refused.value) == expected


def test_a_single_refused_character_is_still_named_and_explained(tmp_path: Path):
    documents = document_service(tmp_path)
    with pytest.raises(InvalidInput) as refused:
        documents.compose(ComposeInput(tenant="nordkort", layout_id="card-invoice",
                                       data=data("Kari\u202e Nordmann"),
                                       channels=(Channel.SMS,)))
    assert field_violations(refused.value) == [(
        "$.customer.name", "text holds the invisible character U+202E RIGHT-TO-LEFT "
        "OVERRIDE at 4: it reorders the text around it (bidi control)")]


def test_the_jobs_error_report_has_one_line_per_field(tmp_path: Path):
    jobs = JobStore(f"sqlite:///{tmp_path / 'jobs.db'}", chunk_size=10)
    jobs.create_schema()
    header = JobHeader(tenant="nordkort", layout_id="card-invoice", layout_version="",
                       channels=(Channel.PRINT.value,))
    jobs.create_job("J1", header, datetime(2026, 12, 2, 8, 0, tzinfo=UTC))
    jobs.add_records("J1", [("r0", data(SPOOFED)),
                            ("r1", data("李小龍", "北京市朝阳区建国路 88 号"))])
    jobs.seal("J1", 2)

    outcome = Pipeline(document_service(tmp_path), jobs).run_chunk("J1", 0)

    assert (outcome.documents, outcome.failed) == (0, 2)
    errors, more = jobs.errors("J1", "nordkort", -1, 10)
    assert more is None
    assert errors == [
        RecordError("r0", "$.customer.name", SPOOFED_WHY),
        RecordError("r1", "$.customer.name", CJK_NAME_WHY),
        RecordError("r1", "$.customer.address.lines[0]", CJK_LINE_WHY),
    ]
    jobs.close()
