"""The `kanal` client commands against a real server (in-process KanalServer, embedded SeaweedFS,
SQLite index, real worker processes): compose, layouts, document, submit, job, portal and
archive admin beside the running server; every error one line; metrics that move; reflection
off once keys are configured.

The commands run through `server.cli.main`, exactly what the `kanal` script calls. The server
in this process logs to stdout as well, so JSON output is picked out of what was captured.
"""

from __future__ import annotations

import json
import socket
import time
import urllib.request
from concurrent import futures
from decimal import Decimal
from pathlib import Path

import grpc
import pytest
from grpc_reflection.v1alpha import reflection_pb2, reflection_pb2_grpc
from prometheus_client.parser import text_string_to_metric_families
from sqlalchemy import func, select

from archive.embedded import DataDirInUse, EmbeddedS3
from kanal.v1 import jobs_pb2, jobs_pb2_grpc
from server.api.errors import field_violations
from server.app import KanalServer
from server.cli import main
from server.compose.layouts import DEFAULT_LAYOUTS_DIR
from server.config import Settings
from server.credentials import embedded_credentials
from server.jobs.tables import job_records, jobs
from server.portal import issue_customer_token
from tests.client import Keys, channel
from tests.integration.test_serve_process import processes_using

pytestmark = pytest.mark.integration

KEYS = Keys(("bank", "producer"), ("bank", "portal"), ("bank", "admin"))
SECRET = "bank-portal-secret-of-at-least-32-bytes"
SAMPLE = (DEFAULT_LAYOUTS_DIR / "card-invoice/2.0.0/sample.json").read_text(encoding="utf-8")
CUSTOMER = json.loads(SAMPLE)["customer"]["customer_id"]


@pytest.fixture(scope="module")
def kanal(tmp_path_factory: pytest.TempPathFactory):
    state = tmp_path_factory.mktemp("kanal-cli")
    layouts = tmp_path_factory.mktemp("layouts")  # only what these tests compose
    for name in ("card-invoice", "_shared"):
        (layouts / name).symlink_to(DEFAULT_LAYOUTS_DIR / name)
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("KANAL_JOB_CHUNK_SIZE", "5")
        mp.setenv("KANAL_JOB_WORKERS", "1")
        with KanalServer(Settings(
                listen="127.0.0.1:0", state_dir=state, layouts_dir=layouts, render_workers=1,
                api_keys=KEYS.api_keys, metrics_listen="127.0.0.1:0",
                portal={"customer_token_secrets": {"bank": SECRET}})) as server:
            yield server


def kanal_cli(kanal: KanalServer, *args: str, role: str = "producer") -> int:
    return main([*args, "--address", kanal.address, "--key", KEYS["bank", role]])


def json_out(captured: str) -> dict:
    """The one JSON document the command printed (lines '{' ... '}'), between log lines."""
    lines = captured.splitlines()
    start = lines.index("{")
    end = lines.index("}", start)
    return json.loads("\n".join(lines[start:end + 1]))


def scrape(kanal: KanalServer) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    assert kanal.metrics is not None
    with urllib.request.urlopen(kanal.metrics.url, timeout=10) as response:
        text = response.read().decode()
    return {(s.name, tuple(sorted(s.labels.items()))): s.value
            for family in text_string_to_metric_families(text) for s in family.samples}


def metric(samples, name: str, **labels: str) -> float:
    return samples.get((name, tuple(sorted(labels.items()))), 0.0)


# --- compose, layouts, document ------------------------------------------------------------------


def test_layouts_compose_and_document_print_json(kanal, tmp_path, capsys):
    assert kanal_cli(kanal, "layouts") == 0
    listed = json_out(capsys.readouterr().out)
    assert [layout["id"] for layout in listed["layouts"]] == ["card-invoice"]

    assert kanal_cli(kanal, "layouts", "card-invoice", "--sample") == 0
    assert SAMPLE.strip() in capsys.readouterr().out  # the sample, byte for byte

    data = tmp_path / "invoice.json"
    data.write_text(SAMPLE, encoding="utf-8")
    assert kanal_cli(kanal, "compose", "card-invoice", "--data", str(data),
                     "--channel", "print", "--idempotency-key", "cli-1") == 0
    composed = json_out(capsys.readouterr().out)
    assert composed["outputs"][0]["channel"] == "CHANNEL_PRINT"
    assert composed["outputs"][0]["pages"] >= 1 and composed["outputs"][0]["archive_key"]

    assert kanal_cli(kanal, "document", composed["document_id"]) == 0
    document = json_out(capsys.readouterr().out)
    assert (document["tenant"], document["customer_id"]) == ("bank", CUSTOMER)
    assert document["outputs"][0]["sha256"] == composed["outputs"][0]["sha256"]

    out = tmp_path / "preview"
    assert kanal_cli(kanal, "compose", "card-invoice", "--data", str(data), "--preview",
                     "--out", str(out)) == 0
    captured = capsys.readouterr()
    preview = json_out(captured.out)
    assert all("content" not in o and "archive_key" not in o for o in preview["outputs"])
    pdf = (out / "card-invoice-print.pdf").read_bytes()
    assert pdf.startswith(b"%PDF-") and f"wrote {out / 'card-invoice-print.pdf'}" in captured.err


def test_layouts_give_the_sample_of_a_locale(kanal, capsys):
    # the per-locale samples were reachable only in the repository (QA L8)
    latest = DEFAULT_LAYOUTS_DIR / "card-invoice" / "2.0.0"  # the newest, 2.2.0, reads its files
    assert kanal_cli(kanal, "layouts", "card-invoice", "--sample", "--locale", "de-DE") == 0
    assert (latest / "samples/de-DE.json").read_text().strip() in capsys.readouterr().out
    assert kanal_cli(kanal, "layouts", "card-invoice") == 0
    assert "de-DE" in json_out(capsys.readouterr().out)["sample_locales"]
    assert kanal_cli(kanal, "layouts", "card-invoice", "--sample", "--locale", "is-IS") == 1
    one_line(capsys.readouterr().err, 'kanal layouts: INVALID_ARGUMENT: '
             'sample_locale: card-invoice@2.2.0 has no sample for "is-IS"; its samples: nb-NO,')
    assert kanal_cli(kanal, "layouts", "--locale", "de-DE") == 2


# --- every failure is one line and a non-zero exit code ------------------------------------------


def one_line(err: str, prefix: str) -> str:
    lines = [line for line in err.splitlines() if line.startswith("kanal ")]
    assert len(lines) == 1 and "Traceback" not in err, err
    assert lines[0].startswith(prefix), lines[0]
    return lines[0]


def test_layouts_show_the_layout_version_asked_for(kanal, capsys):
    # one spelling with compose, submit and render: `--layout-version` (`--version` kept)
    for spelling in ("--layout-version", "--version"):
        assert kanal_cli(kanal, "layouts", "card-invoice", spelling, "1.0.0") == 0
        assert json_out(capsys.readouterr().out)["version"] == "1.0.0"
    assert kanal_cli(kanal, "layouts", "card-invoice") == 0
    assert json_out(capsys.readouterr().out)["version"] == "2.2.0"  # the newest


def test_errors_are_one_line(kanal, tmp_path, capsys):
    missing = tmp_path / "missing.json"
    assert kanal_cli(kanal, "compose", "card-invoice", "--data", str(missing)) == 1
    one_line(capsys.readouterr().err, f"kanal compose: cannot read data file {missing}")
    assert main(["render", "card-invoice", "--data", str(missing), "--out", str(tmp_path)]) == 1
    one_line(capsys.readouterr().err, f"kanal render: cannot read data file {missing}")

    with socket.socket() as closed:
        closed.bind(("127.0.0.1", 0))
        nowhere = f"127.0.0.1:{closed.getsockname()[1]}"
    assert main(["layouts", "--address", nowhere, "--key", "k"]) == 1
    one_line(capsys.readouterr().err,
             f"kanal layouts: cannot reach a Kanal server at {nowhere} (is `kanal serve`")

    assert main(["layouts", "--address", kanal.address, "--key", "kanal_wrong"]) == 1
    one_line(capsys.readouterr().err, "kanal layouts: UNAUTHENTICATED: unknown API key")

    bad = json.loads(SAMPLE)
    bad["currency"] = 7
    bad["transactions"][2]["amount"] = "not money"
    data = tmp_path / "bad.json"
    data.write_text(json.dumps(bad), encoding="utf-8")
    assert kanal_cli(kanal, "compose", "card-invoice", "--data", str(data)) == 1
    line = one_line(capsys.readouterr().err, "kanal compose: INVALID_ARGUMENT: ")
    assert "$.currency" in line and "$.transactions[2].amount" in line

    assert kanal_cli(kanal, "document", "01JNOSUCHDOCUMENT00000000") == 1
    one_line(capsys.readouterr().err, "kanal document: NOT_FOUND: ")


# --- submit --------------------------------------------------------------------------------------


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


# --- portal --------------------------------------------------------------------------------------


def test_portal_flow_token_list_fetch_url(kanal, tmp_path, capsys):
    data = tmp_path / "invoice.json"
    data.write_text(SAMPLE, encoding="utf-8")
    assert kanal_cli(kanal, "compose", "card-invoice", "--data", str(data),
                     "--channel", "print") == 0
    document_id = json_out(capsys.readouterr().out)["document_id"]

    config = tmp_path / "kanal.toml"
    config.write_text(f'[portal.customer_token_secrets]\nbank = "{SECRET}"\n')
    assert main(["portal", "token", CUSTOMER, "--tenant", "bank", "--config", str(config)]) == 0
    token = capsys.readouterr().out.strip().splitlines()[-1]

    portal = ["--customer-token", token]
    assert kanal_cli(kanal, "portal", "list", *portal, role="portal") == 0
    listed = json_out(capsys.readouterr().out)
    assert document_id in [d["document_id"] for d in listed["documents"]]
    assert {d["customer_id"] for d in listed["documents"]} == {CUSTOMER}

    assert kanal_cli(kanal, "portal", "fetch", document_id, "--out", str(tmp_path),
                     *portal, role="portal") == 0
    capsys.readouterr()
    assert (tmp_path / f"{document_id}.pdf").read_bytes().startswith(b"%PDF-")

    assert kanal_cli(kanal, "portal", "url", document_id, "--expires", "60", *portal,
                     role="portal") == 0
    url = json_out(capsys.readouterr().out)
    with urllib.request.urlopen(url["url"], timeout=10) as response:
        assert response.read() == (tmp_path / f"{document_id}.pdf").read_bytes()

    forever = issue_customer_token(SECRET, "bank", CUSTOMER, ttl_seconds=10**11)
    assert kanal_cli(kanal, "portal", "list", "--customer-token", forever, role="portal") == 1
    one_line(capsys.readouterr().err, "kanal portal list: UNAUTHENTICATED: customer token refused: "
                                      "lifetime exceeds 3600 seconds")
    assert kanal_cli(kanal, "portal", "list", "--customer-token", token + "==",
                     role="portal") == 1
    one_line(capsys.readouterr().err, "kanal portal list: UNAUTHENTICATED: customer token refused")


# --- archive admin beside the running server -----------------------------------------------------


def test_archive_admin_uses_the_running_store_and_never_starts_a_second(kanal, capsys):
    state = kanal.settings.state_dir
    weeds = processes_using(state / "s3")
    assert len(weeds) == 1
    assert main(["archive", "verify", "--state-dir", str(state)]) == 0
    err = capsys.readouterr().err
    assert "using the embedded store of the running server" in err and "checked" in err
    assert main(["archive", "reconcile", "--state-dir", str(state)]) == 0
    capsys.readouterr()
    assert main(["archive", "reindex", "--state-dir", str(state)]) == 2
    one_line(capsys.readouterr().err, "kanal archive: kanal serve (pid ")
    assert processes_using(state / "s3") == weeds
    # and the store itself refuses a second SeaweedFS on its folder, before starting one
    access_key, secret_key = embedded_credentials(state)
    with pytest.raises(DataDirInUse, match="is in use by process"):
        EmbeddedS3(state / "s3", access_key=access_key, secret_key=secret_key).start()
    assert processes_using(state / "s3") == weeds


# --- metrics and reflection ----------------------------------------------------------------------


def test_a_scrape_after_a_compose_shows_the_counters_moved(kanal, tmp_path, capsys):
    data = tmp_path / "invoice.json"
    data.write_text(SAMPLE, encoding="utf-8")
    before = scrape(kanal)
    assert kanal_cli(kanal, "compose", "card-invoice", "--data", str(data),
                     "--channel", "print") == 0
    composed = json_out(capsys.readouterr().out)
    after = scrape(kanal)
    rpc = {"grpc_service": "kanal.v1.Documents", "grpc_method": "Compose",
           "grpc_type": "unary", "grpc_code": "OK"}
    for name in ("grpc_server_handled_total", "grpc_server_handling_seconds_count"):
        assert metric(after, name, **rpc) == metric(before, name, **rpc) + 1
    by_layout = {"layout": "card-invoice", "channel": "print"}
    assert metric(after, "kanal_documents_rendered_total", **by_layout) == metric(
        before, "kanal_documents_rendered_total", **by_layout) + 1
    assert metric(after, "kanal_pages_rendered_total", **by_layout) == metric(
        before, "kanal_pages_rendered_total", **by_layout) + composed["outputs"][0]["pages"]
    # rendered in the warm pool's process, timed there, replayed here, labelled by engine
    renders = {labels: value for (name, labels), value in after.items()
               if name == "kanal_render_seconds_count"}
    assert {dict(labels)["engine"] for labels in renders} <= {"weasyprint", "typst"}
    assert sum(renders.values()) == sum(value for (name, _), value in before.items()
                                        if name == "kanal_render_seconds_count") + 1
    assert metric(after, "kanal_archive_put_seconds_count") == metric(
        before, "kanal_archive_put_seconds_count") + 1
    assert any(name == "kanal_build_info" for name, _ in after)
    assert ("kanal_job_chunks", (("state", "pending"),)) in after

    assert main(["layouts", "--address", kanal.address, "--key", "kanal_wrong"]) == 1
    denied = {**rpc, "grpc_service": "kanal.v1.Layouts", "grpc_method": "ListLayouts",
              "grpc_code": "UNAUTHENTICATED"}
    assert metric(scrape(kanal), "grpc_server_handled_total", **denied) >= 1


def test_reflection_is_off_once_api_keys_are_configured(kanal):
    with grpc.insecure_channel(kanal.address) as ch:
        stub = reflection_pb2_grpc.ServerReflectionStub(ch)
        with pytest.raises(grpc.RpcError) as refused:
            list(stub.ServerReflectionInfo(iter([reflection_pb2.ServerReflectionRequest(
                list_services="")]), timeout=10))
    assert refused.value.code() == grpc.StatusCode.UNIMPLEMENTED


def test_the_server_records_its_state_for_the_commands_beside_it(kanal):
    facts = json.loads(Path(kanal.settings.state_dir / "server.json").read_text())
    assert facts["address"] == kanal.address and facts["metrics"] == kanal.metrics.url
    assert facts["s3_endpoint"] == kanal.store.endpoint_url
