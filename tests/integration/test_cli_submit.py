"""`kanal submit` and the jobs it makes, against a real server
(tests/integration/cli_fixtures.py): files as spreadsheets and Windows export them, amounts
of any length kept exactly, idempotent resubmission, records refused by line, and a stream
that ends cleanly when the server dies or refuses.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from concurrent import futures
from decimal import Decimal

import grpc
import pytest
from sqlalchemy import func, select

from kanal.v1 import jobs_pb2, jobs_pb2_grpc
from server.api.errors import field_violations
from server.app import KanalServer
from server.cli import main
from server.jobs.tables import job_records, jobs
from tests.client import channel
from tests.integration.cli_fixtures import (
    KEYS,
    SAMPLE,
    json_out,
    kanal_cli,
    metric,
    one_line,
    scrape,
    start_kanal,
)

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def kanal(tmp_path_factory: pytest.TempPathFactory) -> Iterator[KanalServer]:
    yield from start_kanal(tmp_path_factory)


def record_line(key: str, amount_literal: str | None = None) -> str:
    data = json.loads(SAMPLE, parse_float=Decimal)
    if amount_literal is not None:
        data["transactions"][0]["amount"] = "__AMOUNT__"
    text = json.dumps({"record_key": key, "data": data}, ensure_ascii=False, default=str)
    return text.replace('"__AMOUNT__"', amount_literal or "") + "\n"


def test_files_exported_with_a_byte_order_mark_are_taken(kanal, tmp_path, capsys):
    # was: INVALID_ARGUMENT 'data: the text starts with a byte-order mark' for compose, and
    # 'line 1: not JSON: Unexpected UTF-8 BOM' for submit (QA): Windows exports write one
    data = tmp_path / "windows.json"
    data.write_bytes(b"\xef\xbb\xbf" + SAMPLE.replace("\n", "\r\n").encode("utf-8"))
    code = kanal_cli(kanal, "compose", "card-invoice", "--data", str(data), "--preview",
                     "--out", str(tmp_path / "out"), "--channel", "print")
    captured = capsys.readouterr()
    assert code == 0, captured.err
    assert json_out(captured.out)["outputs"][0]["channel"] == "CHANNEL_PRINT"

    lines = tmp_path / "windows.jsonl"
    lines.write_bytes(b"\xef\xbb\xbf" + (record_line("bom-1") + record_line("bom-2"))
                      .replace("\n", "\r\n").encode("utf-8"))
    code = kanal_cli(kanal, "submit", str(lines), "--layout", "card-invoice",
                     "--channel", "print")
    captured = capsys.readouterr()
    assert code == 0, captured.err
    job_id = next(line.split()[1].rstrip(":") for line in captured.out.splitlines()
                  if line.startswith("job "))
    assert set(stored_records(kanal, job_id)) == {"bom-1", "bom-2"}


def stored_records(kanal: KanalServer, job_id: str) -> dict[str, str]:
    with kanal.jobs.engine.connect() as conn:
        return dict(conn.execute(select(job_records.c.record_key, job_records.c.data_json)
                                 .where(job_records.c.job_id == job_id)).all())


def test_submit_carries_a_20_digit_amount_exactly_and_metrics_see_the_job(kanal, tmp_path,
                                                                          capsys):
    path = tmp_path / "records.jsonl"
    path.write_text(record_line("plain") + record_line("huge", "99999999999999999999.99"),
                    encoding="utf-8")
    before = scrape(kanal)
    code = kanal_cli(kanal, "submit", str(path), "--layout", "card-invoice",
                     "--channel", "print")
    captured = capsys.readouterr()
    assert code in (0, 3), captured.err
    job_id = next(line.split()[1].rstrip(":") for line in captured.out.splitlines()
                  if line.startswith("job "))
    stored = stored_records(kanal, job_id)
    assert '"amount":99999999999999999999.99' in stored["huge"]
    assert json.loads(stored["huge"], parse_float=Decimal)["transactions"][0]["amount"] == \
        Decimal("99999999999999999999.99")
    assert "\r" not in captured.err  # stderr is not a terminal here: plain progress lines
    done = kanal.jobs.progress(job_id).done
    assert done >= 1

    def rendered(samples) -> float:
        return metric(samples, "kanal_documents_rendered_total", layout="card-invoice",
                      channel="print")

    # the bulk worker's renders reached the server's registry: they travel with the chunk's
    # outcome, which the server takes in just after the job is seen completed
    deadline = time.monotonic() + 10
    while rendered(after := scrape(kanal)) - rendered(before) < done and \
            time.monotonic() < deadline:
        time.sleep(0.05)
    assert metric(after, "kanal_documents_rendered_total", layout="card-invoice",
                  channel="print") - metric(before, "kanal_documents_rendered_total",
                                            layout="card-invoice", channel="print") == done
    assert metric(after, "kanal_jobs", state="completed") + metric(
        after, "kanal_jobs", state="completed_with_errors") >= 1


def test_submit_again_with_the_idempotency_key_follows_the_first_job(kanal, tmp_path, capsys):
    path = tmp_path / "records.jsonl"
    path.write_text(record_line("idem-1") + record_line("idem-2"), encoding="utf-8")
    key = f"cli-{tmp_path.name}"
    runs = []
    for _ in range(2):
        code = kanal_cli(kanal, "submit", str(path), "--layout", "card-invoice",
                         "--channel", "print", "--idempotency-key", key)
        captured = capsys.readouterr()
        assert code == 0, captured.err
        runs.append((next(line.split()[1].rstrip(":") for line in captured.out.splitlines()
                          if line.startswith("job ")), captured.err))
        assert f"\n  idempotency key {key}\n" in captured.out  # the summary names it
        runs[-1] += (next(line for line in captured.out.splitlines()
                          if line.startswith("  duration ")),)
    (first, first_err, took), (second, second_err, replayed) = runs
    # the job's own duration both times (the server's created_at..finished_at), and the
    # replay says besides how long the command itself waited
    assert replayed.startswith(took + " (this command waited ") and "waited" not in took
    assert second == first and "as job" in first_err
    assert f"already submitted with this idempotency key: job {first} (2 records)" in second_err
    assert kanal.jobs.progress(first).done == 2
    assert kanal_cli(kanal, "job", first) == 0  # `kanal job` shows it too
    shown = json_out(capsys.readouterr().out)
    assert (shown["job_id"], shown["idempotency_key"]) == (first, key)


def test_a_job_without_records_is_refused_by_client_and_server(kanal, tmp_path, capsys):
    with kanal.jobs.engine.connect() as conn:
        jobs_before = conn.execute(select(func.count()).select_from(jobs)).scalar()
    empty = tmp_path / "empty.jsonl"
    empty.write_text("\n\n", encoding="utf-8")
    assert kanal_cli(kanal, "submit", str(empty), "--layout", "card-invoice") == 1
    one_line(capsys.readouterr().err, f"kanal submit: {empty} has no records; nothing")

    broken = tmp_path / "broken.jsonl"
    broken.write_text(record_line("ok") + '{"amount": 1, "amount": 2}\n', encoding="utf-8")
    assert kanal_cli(kanal, "submit", str(broken), "--layout", "card-invoice") == 1
    one_line(capsys.readouterr().err,
             f'kanal submit: {broken} line 2: key "amount" appears twice in one object')

    with (channel(kanal.address, KEYS["bank", "producer"]) as ch,
          pytest.raises(grpc.RpcError) as refused):
        jobs_pb2_grpc.JobsStub(ch).SubmitBatch(iter([jobs_pb2.SubmitBatchRequest(
            header=jobs_pb2.JobHeader(layout_id="card-invoice"))]))
    assert refused.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert "records" in refused.value.details()
    with kanal.jobs.engine.connect() as conn:  # nothing of any of them was kept
        assert conn.execute(select(func.count()).select_from(jobs)).scalar() == jobs_before


def test_a_record_key_too_long_is_named_by_its_line_and_by_its_index(kanal, tmp_path, capsys):
    # was: the server refused `record.record_key` (no index), and the command printed
    # "INVALID_ARGUMENT: record.record_key: is longer than 200 characters (after 2 records)"
    with kanal.jobs.engine.connect() as conn:
        jobs_before = conn.execute(select(func.count()).select_from(jobs)).scalar()
    path = tmp_path / "long-key.jsonl"
    path.write_text(record_line("ok") + "\n" + record_line("k" * 201), encoding="utf-8")
    assert kanal_cli(kanal, "submit", str(path), "--layout", "card-invoice") == 1
    assert one_line(capsys.readouterr().err, "kanal submit: ") == (
        f'kanal submit: {path} line 3: record_key "{"k" * 40}…" is 201 characters long; at '
        "most 200 are allowed; nothing was submitted")

    def stream():
        yield jobs_pb2.SubmitBatchRequest(header=jobs_pb2.JobHeader(layout_id="card-invoice"))
        for key in ("ok", "k" * 201):
            yield jobs_pb2.SubmitBatchRequest(record=jobs_pb2.JobRecord(
                record_key=key, data_json=SAMPLE))
    with (channel(kanal.address, KEYS["bank", "producer"]) as ch,
          pytest.raises(grpc.RpcError) as refused):
        jobs_pb2_grpc.JobsStub(ch).SubmitBatch(stream())
    assert refused.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert field_violations(refused.value) == [
        ("records[1].record_key", "is 201 characters long; at most 200 are allowed")]
    with kanal.jobs.engine.connect() as conn:  # nothing of either was kept
        assert conn.execute(select(func.count()).select_from(jobs)).scalar() == jobs_before


def test_a_record_the_server_refuses_is_named_by_its_line(kanal, tmp_path, capsys):
    # what only the server can tell (a key used twice) names the line too: was "(after 3
    # records)" and the server's records[2], which counts no blank lines
    twice = tmp_path / "twice.jsonl"
    twice.write_text(record_line("r1") + "\n" + record_line("r2") + record_line("r1"),
                     encoding="utf-8")
    assert kanal_cli(kanal, "submit", str(twice), "--layout", "card-invoice") == 1
    assert one_line(capsys.readouterr().err, "kanal submit: ").startswith(
        f'kanal submit: {twice} line 4: INVALID_ARGUMENT: records[2].record_key: "r1" is '
        "already the key of records[0]")


class DyingJobs(jobs_pb2_grpc.JobsServicer):
    """A server that goes away after reading a few records."""

    def __init__(self):
        self.server: grpc.Server | None = None

    def SubmitBatch(self, request_iterator, context):
        for n, _ in enumerate(request_iterator):
            if n == 3:
                self.server.stop(0)  # the process dies: the connection goes with it
                context.abort(grpc.StatusCode.UNAVAILABLE, "server shutting down")
        return jobs_pb2.SubmitBatchResponse()


def test_submit_says_one_line_when_the_server_dies_mid_stream(tmp_path, capsys):
    servicer = DyingJobs()
    server = grpc.server(futures.ThreadPoolExecutor(2))
    jobs_pb2_grpc.add_JobsServicer_to_server(servicer, server)
    port = server.add_insecure_port("127.0.0.1:0")
    servicer.server = server
    server.start()
    path = tmp_path / "many.jsonl"
    path.write_text(record_line("r") * 1 + "".join(f'{{"n": {n}}}\n' for n in range(2000)),
                    encoding="utf-8")
    try:
        code = main(["submit", str(path), "--layout", "x", "--address", f"127.0.0.1:{port}",
                     "--key", "k"])
    finally:
        server.stop(0)
    assert code == 1
    line = one_line(capsys.readouterr().err, "kanal submit: ")
    assert "the job was not accepted" in line


class RecordingJobs(jobs_pb2_grpc.JobsServicer):
    """A server that keeps every message of a stream, and refuses one that is neither header
    nor record, as Kanal's does (server/api/jobs.py)."""

    def __init__(self):
        self.received: list[str | None] = []

    def SubmitBatch(self, request_iterator, context):
        for message in request_iterator:
            self.received.append(message.WhichOneof("item"))
            if message.WhichOneof("item") is None:
                context.abort(grpc.StatusCode.INVALID_ARGUMENT, "records[n]: is empty")
        return jobs_pb2.SubmitBatchResponse(job_id="sealed", records=len(self.received) - 1)


def test_submit_ends_a_stream_it_refuses_with_a_message_the_server_refuses(tmp_path, capsys):
    # was: the call cancelled, which a loaded server could read as the stream's end and
    # seal the records before the bad line as a job ("nothing was submitted": 2 in 90 runs)
    servicer = RecordingJobs()
    server = grpc.server(futures.ThreadPoolExecutor(2))
    jobs_pb2_grpc.add_JobsServicer_to_server(servicer, server)
    port = server.add_insecure_port("127.0.0.1:0")
    server.start()
    path = tmp_path / "broken.jsonl"
    path.write_text(record_line("ok") + '{"amount": 1, "amount": 2}\n', encoding="utf-8")
    try:
        code = main(["submit", str(path), "--layout", "x", "--address", f"127.0.0.1:{port}",
                     "--key", "k"])
    finally:
        server.stop(0)
    assert code == 1
    assert one_line(capsys.readouterr().err, "kanal submit: ") == (
        f'kanal submit: {path} line 2: key "amount" appears twice in one object; nothing '
        "was submitted")
    assert servicer.received == ["header", "record", None]
