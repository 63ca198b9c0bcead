"""The `kanal` client commands against a real server (tests/integration/cli_fixtures.py):
compose, layouts, document, portal and archive admin beside the running server; every error
one line; metrics that move; reflection off once keys are configured. `kanal submit` is in
test_cli_submit.py.
"""

from __future__ import annotations

import json
import socket
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import grpc
import pytest
from grpc_reflection.v1alpha import reflection_pb2, reflection_pb2_grpc

from archive.embedded import DataDirInUse, EmbeddedS3
from server.app import KanalServer
from server.cli import main
from server.compose.layouts import DEFAULT_LAYOUTS_DIR
from server.credentials import embedded_credentials
from server.portal import issue_customer_token
from tests.integration.cli_fixtures import (
    CUSTOMER,
    SAMPLE,
    SECRET,
    json_out,
    kanal_cli,
    metric,
    one_line,
    scrape,
    start_kanal,
)
from tests.integration.test_serve_process import processes_using

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def kanal(tmp_path_factory: pytest.TempPathFactory) -> Iterator[KanalServer]:
    yield from start_kanal(tmp_path_factory)


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


def test_compose_corrects_sends_a_correction(kanal, tmp_path, capsys):
    # QA: `kanal compose` had no way to send corrects_document_id
    data = tmp_path / "invoice.json"
    data.write_text(SAMPLE, encoding="utf-8")
    assert kanal_cli(kanal, "compose", "card-invoice", "--data", str(data)) == 0
    original = json_out(capsys.readouterr().out)["document_id"]
    assert kanal_cli(kanal, "compose", "card-invoice", "--data", str(data),
                     "--corrects", original) == 0
    correction = json_out(capsys.readouterr().out)["document_id"]
    assert correction != original
    assert kanal_cli(kanal, "compose", "card-invoice", "--data", str(data),
                     "--corrects", original) == 1
    one_line(capsys.readouterr().err, "kanal compose: FAILED_PRECONDITION: document "
             f"{original} was already corrected by document {correction}")


def test_layouts_give_the_sample_of_a_locale(kanal, capsys):
    # the per-locale samples were reachable only in the repository (QA L8)
    latest = DEFAULT_LAYOUTS_DIR / "card-invoice" / "2.2.0"  # the newest
    assert kanal_cli(kanal, "layouts", "card-invoice", "--sample", "--locale", "de-DE") == 0
    assert (latest / "samples/de-DE.json").read_text().strip() in capsys.readouterr().out
    assert kanal_cli(kanal, "layouts", "card-invoice") == 0
    assert "de-DE" in json_out(capsys.readouterr().out)["sample_locales"]
    assert kanal_cli(kanal, "layouts", "card-invoice", "--sample", "--locale", "is-IS") == 1
    one_line(capsys.readouterr().err, 'kanal layouts: INVALID_ARGUMENT: '
             'sample_locale: card-invoice@2.2.0 has no sample for "is-IS"; its samples: nb-NO,')
    assert kanal_cli(kanal, "layouts", "--locale", "de-DE") == 2


# --- every failure is one line and a non-zero exit code ------------------------------------------


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
    # each document with its deliveries' states (QA: the listing had none)
    [composed] = [d for d in listed["documents"] if d["document_id"] == document_id]
    [delivery] = composed["deliveries"]
    assert delivery["channel"] == "CHANNEL_PRINT" and delivery["state"] in (
        "DELIVERY_STATE_QUEUED", "DELIVERY_STATE_SENDING", "DELIVERY_STATE_SENT")  # to the queue

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
