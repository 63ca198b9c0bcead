"""What the `kanal` client commands say when something is off: the command and sub-command
naming the failure, exit code 2 for usage and configuration, job progress that counts
records and documents apart, and a watch that ends before its job is a lost server."""

from __future__ import annotations

from pathlib import Path

import pytest

from kanal.v1 import jobs_pb2
from server.cli import build_parser, command_name, main
from server.client import ClientError
from server.jobs.cli.submit import error_line, follow, plural, progress_line


def test_errors_name_the_sub_command():
    parser = build_parser()
    assert command_name(parser.parse_args(["portal", "url", "D1"])) == "kanal portal url"
    assert command_name(parser.parse_args(["layouts"])) == "kanal layouts"


@pytest.mark.parametrize("argv", [["portal", "url", "D1", "--expires", "0"],
                                  ["portal", "url", "D1", "--expires", "-5"],
                                  ["portal", "token", "c1", "--ttl", "-10"]])
def test_non_positive_lifetimes_are_usage_errors(argv, capsys):
    with pytest.raises(SystemExit) as info:
        main(argv)
    assert info.value.code == 2
    assert "at least 1 second" in capsys.readouterr().err


def test_an_empty_customer_is_a_usage_error(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("KANAL_STATE_DIR", str(tmp_path))
    (tmp_path / "dev-customer-token-secrets.json").write_text(
        '{"demo": "a-development-secret-of-at-least-32-bytes"}')
    assert main(["portal", "token", ""]) == 2
    assert capsys.readouterr().err.startswith("kanal portal token: the customer id is empty")


def test_a_token_lifetime_the_server_refuses_is_a_usage_error(tmp_path, monkeypatch, capsys):
    """QA: `kanal portal token C --ttl 4000` exited 0, and the server then refused the token
    ('lifetime exceeds 3600 seconds'): the CLI checks the server's limit (the config's
    customer_token_max_seconds, else its default) before it signs."""
    monkeypatch.setenv("KANAL_STATE_DIR", str(tmp_path))
    (tmp_path / "dev-customer-token-secrets.json").write_text(
        '{"demo": "a-development-secret-of-at-least-32-bytes"}')
    assert main(["portal", "token", "c1", "--ttl", "4000"]) == 2
    assert "--ttl 4000 exceeds the server's customer_token_max_seconds (3600)" in (
        capsys.readouterr().err)
    assert main(["portal", "token", "c1", "--ttl", "3600"]) == 0  # the limit itself is fine
    config = tmp_path / "kanal.toml"
    config.write_text('[portal]\ncustomer_token_max_seconds = 7200\n'
                      '[portal.customer_token_secrets]\n'
                      'demo = "a-development-secret-of-at-least-32-bytes"\n')
    capsys.readouterr()
    assert main(["portal", "token", "c1", "--ttl", "4000", "--config", str(config)]) == 0


def test_no_api_key_is_a_configuration_error(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("KANAL_STATE_DIR", str(tmp_path))  # no development keys there
    monkeypatch.delenv("KANAL_API_KEY", raising=False)
    assert main(["layouts", "--address", "127.0.0.1:9"]) == 2
    assert capsys.readouterr().err.startswith("kanal layouts: no API key")


def _update(done, failed, total, final=False, state="running", cancelled=0):
    return jobs_pb2.JobProgress(job=jobs_pb2.Job(job_id="J", state=state, counts=jobs_pb2.JobCounts(
        total=total, done=done, failed=failed, cancelled=cancelled)),
        documents_per_second=2.0, final=final)


def test_progress_counts_records_and_documents_apart():
    line = progress_line(_update(37, 3, 40, final=True, state="completed_with_errors"))
    assert "40/40 records: 37 documents, 3 failed" in line
    assert "1 document," in progress_line(_update(1, 0, 2))
    assert "30/40 records: 20 documents, 0 failed, 10 cancelled" in progress_line(
        _update(20, 0, 40, cancelled=10))
    assert (plural(1, "record"), plural(2, "record")) == ("1 record", "2 records")


class _Jobs:
    def __init__(self, updates):
        self.updates = updates

    def WatchJob(self, request, metadata=()):
        return iter(self.updates)

    def GetJobErrors(self, request, metadata=(), timeout=None):
        return jobs_pb2.GetJobErrorsResponse()


class _Where:
    metadata = ()
    timeout = 5


def test_a_watch_that_ends_before_its_job_is_a_lost_server():
    """The server stopping (SIGTERM) ends the watch; that is not the job's summary."""
    from server.jobs.cli.submit import Progress

    class Quiet:
        def isatty(self):
            return False

        def write(self, text):
            pass

        def flush(self):
            pass

    with pytest.raises(ClientError, match="lost the server while following job J"):
        follow(_Jobs([_update(18, 0, 40)]), "J", _Where(), Progress(Quiet()))
    job, errors = follow(_Jobs([_update(40, 0, 40, final=True, state="completed")]), "J",
                         _Where(), Progress(Quiet()))
    assert job.state == "completed" and errors == []


@pytest.mark.parametrize("priority", ["99999999999", "2147483648", "-2147483649", "high"])
def test_a_priority_a_job_header_cannot_carry_is_a_usage_error(priority, tmp_path, capsys):
    # was: "kanal submit: UNKNOWN: Exception iterating requests! (after 0 records); the job
    # was not accepted", 1 (JobHeader.priority is int32: the stream failed while written)
    records = tmp_path / "r.jsonl"
    records.write_text('{"a": 1}\n')
    with pytest.raises(SystemExit) as info:
        main(["submit", str(records), "--layout", "card-invoice", "--priority", priority,
              "--address", "127.0.0.1:9"])
    assert info.value.code == 2
    err = capsys.readouterr().err
    assert "argument --priority:" in err and "UNKNOWN" not in err
    assert ("must be within -2147483648..2147483647 (JobHeader.priority is a 32-bit integer), "
            f"not {priority}" in err or '"high" is not a whole number' in err), err


@pytest.mark.parametrize("priority", ["2147483647", "-2147483648", "0", "-5"])
def test_every_priority_a_job_header_carries_is_taken(priority, tmp_path):
    args = build_parser().parse_args(["submit", "r.jsonl", "--layout", "card-invoice",
                                      "--priority", priority])
    assert args.priority == int(priority)
    assert jobs_pb2.JobHeader(priority=args.priority).priority == int(priority)


@pytest.mark.parametrize("limit", ["0", "-3", "1001", "100000", "ten"])
def test_a_deliveries_limit_outside_a_page_is_a_usage_error(limit, capsys):
    # was: --limit 0 listed 100 (a page_size of 0 is the server's default), while -3 and
    # 100000 were refused by the server only
    with pytest.raises(SystemExit) as info:
        main(["deliveries", "list", "--limit", limit, "--address", "127.0.0.1:9"])
    assert info.value.code == 2
    err = capsys.readouterr().err
    assert "argument --limit:" in err
    assert f"must be within 1..1000, not {limit}" in err or '"ten" is not a whole number' in err


def test_a_deliveries_limit_within_a_page_is_taken():
    for limit in ("1", "1000"):
        args = build_parser().parse_args(["deliveries", "list", "--limit", limit])
        assert args.limit == int(limit)
    assert build_parser().parse_args(["deliveries", "list"]).limit == 100


@pytest.mark.parametrize("size", ["0", "-3", "201"])
def test_a_portal_page_size_outside_a_page_is_a_usage_error(size, capsys):
    # was: --page-size 0 listed 50 (the server's default for 0); -3 refused by the server only
    with pytest.raises(SystemExit) as info:
        main(["portal", "list", "--page-size", size, "--address", "127.0.0.1:9"])
    assert info.value.code == 2
    assert f"argument --page-size: must be within 1..200, not {size}" in capsys.readouterr().err


def test_the_portal_clis_page_size_limit_is_the_servers():
    from server import portal, portal_cli

    assert portal_cli.MAX_PAGE_SIZE == portal.MAX_PAGE_SIZE


def test_portal_fetch_into_a_folder_names_each_channel_apart(tmp_path, capsys):
    """QA: `kanal portal fetch DOC --channel einvoice --out DIR` wrote the Factur-X PDF to
    DIR/DOC.pdf, over the print PDF fetched there before (no word of it)."""
    import hashlib
    from types import SimpleNamespace

    from server.portal_cli import fetch

    def chunks(data: bytes, media_type: str):
        return [SimpleNamespace(data=data, sha256=hashlib.sha256(data).hexdigest(),
                                media_type=media_type)]

    assert fetch(chunks(b"%PDF print", "application/pdf"), "D1", tmp_path, "print") == 0
    assert fetch(chunks(b"%PDF factur-x", "application/pdf"), "D1", tmp_path, "einvoice") == 0
    assert fetch(chunks(b"From: x", "message/rfc822"), "D1", tmp_path, "email") == 0
    assert fetch(chunks(b"%PDF default", "application/pdf"), "D2", tmp_path) == 0
    assert {p.name: p.read_bytes() for p in tmp_path.iterdir()} == {
        "D1.pdf": b"%PDF print", "D1-einvoice.pdf": b"%PDF factur-x",
        "D1-email.eml": b"From: x", "D2.pdf": b"%PDF default"}


@pytest.mark.parametrize(("out", "written"), [
    ("o2/newdir/", "o2/newdir/D7.pdf"),  # a folder not there yet: made, parents too
    ("o2/", "o2/D7.pdf"),
    ("existing", "existing/D7.pdf"),  # an existing folder, written without "/"
    ("o2/invoice.pdf", "o2/invoice.pdf"),  # a file in a folder that exists
])
def test_portal_fetch_out_ending_in_a_slash_is_a_folder(out, written, tmp_path, monkeypatch,
                                                        capsys):
    """QA: `kanal portal fetch ID --out o2/newdir/` (the folder not there) exited 0 having
    written the PDF as a file named o2/newdir; `kanal print fetch --out` makes its folder."""
    import contextlib
    import hashlib
    from types import SimpleNamespace

    import server.portal_cli as portal_cli

    pdf = b"%PDF-1.7 portal copy"

    @contextlib.contextmanager
    def connect(args, role):
        yield None, SimpleNamespace(metadata=(), timeout=1)

    class Stub:
        def __init__(self, channel):
            pass

        def FetchDocument(self, request, metadata, timeout):
            return iter([SimpleNamespace(data=pdf, sha256=hashlib.sha256(pdf).hexdigest(),
                                         media_type="application/pdf")])

    monkeypatch.chdir(tmp_path)
    (tmp_path / "existing").mkdir()
    (tmp_path / "o2").mkdir()
    monkeypatch.setattr(portal_cli, "connect", connect)
    monkeypatch.setattr("kanal.v1.portal_pb2_grpc.PortalStub", Stub)
    assert main(["portal", "fetch", "D7", "--out", out, "--customer-token", "t"]) == 0
    files = {str(p.relative_to(tmp_path)): p.read_bytes()
             for p in tmp_path.rglob("*") if p.is_file()}
    assert files == {written: pdf}
    assert capsys.readouterr().err.startswith(f"{written}  {len(pdf)} bytes")


@pytest.mark.parametrize("folder", ["missing", "a-file.toml"])
def test_journeys_check_of_no_directory_is_a_usage_error(folder, tmp_path, monkeypatch,
                                                         capsys):
    # was: exit 0 and nothing printed, as if the folder held no journeys (QA T4)
    monkeypatch.setenv("KANAL_STATE_DIR", str(tmp_path / "state"))
    (tmp_path / "a-file.toml").write_text("")
    assert main(["journeys", "check", "--dir", str(tmp_path / folder)]) == 2
    err = capsys.readouterr().err
    assert err == (f"kanal journeys check: --dir {tmp_path / folder}: no such directory "
                   "(journeys live in <dir>/<tenant>/<name>/<version>.toml)\n")


def test_journeys_check_prints_the_journeys_of_a_directory(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("KANAL_STATE_DIR", str(tmp_path / "state"))
    shipped = Path(__file__).resolve().parents[2] / "journeys"
    assert main(["journeys", "check", "--dir", str(shipped)]) == 0
    assert capsys.readouterr().out.startswith("demo/broker-follow-up@1: on account_opened")


def test_kanal_submit_shows_why_its_job_is_stalled():
    update = _update(10, 0, 40)
    assert "stalled" not in progress_line(update)
    update.job.stalled_reason = ("no document finished for 612 s in chunk 1 (worker pid 1234, "
                                 "state: stopped, 0.0 s CPU since its last document)")
    assert progress_line(update).endswith(
        "ETA 0s; stalled: no document finished for 612 s in chunk 1 (worker pid 1234, "
        "state: stopped, 0.0 s CPU since its last document)")


@pytest.mark.parametrize(("listen", "moved"), [("127.0.0.1:50051", False),
                                               ("127.0.0.1:50151", False),
                                               ("127.0.0.1:50151", True)])
def test_the_servers_first_command_finds_its_keys_and_address(listen, moved, tmp_path,
                                                              monkeypatch):
    # `kanal serve --state-dir DIR --listen ADDR` said "from this folder try: kanal layouts",
    # which looked for keys in .kanal and called 127.0.0.1:50051 (QA 2026-12-01)
    import shlex

    from server.client import first_command, target

    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("KANAL_API_KEY", raising=False)
    monkeypatch.delenv("KANAL_ADDRESS", raising=False)
    monkeypatch.delenv("KANAL_STATE_DIR", raising=False)
    keys_dir = tmp_path / ("elsewhere" if moved else ".kanal")
    keys_dir.mkdir()
    (keys_dir / "dev-api-keys.json").write_text('{"producer": "K1"}')
    command = first_command(keys_dir, listen)
    assert ("KANAL_STATE_DIR" in command) == moved
    words = shlex.split(command)
    while "=" in words[0]:  # the environment the command sets
        name, value = words.pop(0).split("=", 1)
        monkeypatch.setenv(name, value)
    assert words[:2] == ["kanal", "layouts"]
    args = build_parser().parse_args(words[1:])
    assert (target(args, "producer").address, target(args, "producer").key) == (listen, "K1")


def test_a_failed_record_in_the_summary_reads_as_compose_words_it():
    # was '  error m3: $.currency 7 is not of type "string"': no colon between path and why
    error = jobs_pb2.RecordError(record_key="m3", field="$.currency",
                                 message='7 is not of type "string"')
    assert error_line(error) == '  error m3: $.currency: 7 is not of type "string"'
    assert error_line(jobs_pb2.RecordError(record_key="m4", message="archive refused")) == (
        "  error m4: archive refused")


@pytest.mark.parametrize("value", ["0", "-5", "inf", "nan", "soon"])
@pytest.mark.parametrize("command", [["layouts"], ["compose", "card-invoice", "--data", "x"],
                                     ["print", "list"], ["portal", "list"]])
def test_a_timeout_that_is_no_positive_number_of_seconds_is_a_usage_error(command, value,
                                                                         capsys):
    # was taken as given: 0 quietly meant the default 120 s, and -5, inf or nan failed every
    # call with "no answer from ... in time (--timeout)", exit 1
    with pytest.raises(SystemExit) as info:
        main([*command, "--timeout", value])
    assert info.value.code == 2
    assert "argument --timeout:" in capsys.readouterr().err


@pytest.mark.parametrize(("argv", "role", "token"), [
    (["portal", "list", "--customer", "20240311"], "service", None),
    (["portal", "list"], "portal", "env-token"),
    (["portal", "list", "--customer", "20240311", "--customer-token", "flag-token"], "portal",
     "flag-token"),
])
def test_portal_list_with_customer_reads_as_customer_service(argv, role, token, monkeypatch):
    # was: with KANAL_CUSTOMER_TOKEN exported (the README's portal walk-through does), `kanal
    # portal list --customer ID` called as the token's portal, and any other customer was
    # NOT_FOUND "no customer 'ID'", though the README says --customer uses the service key
    import contextlib
    from types import SimpleNamespace

    import server.portal_cli as portal_cli

    seen = {}

    @contextlib.contextmanager
    def connect(args, wanted_role):
        seen["role"] = wanted_role
        yield None, SimpleNamespace(metadata=(), timeout=1)

    class Stub:
        def __init__(self, channel):
            pass

        def ListDocuments(self, request, metadata, timeout):
            seen["token"] = dict(metadata).get("x-kanal-customer-token")
            return request

    monkeypatch.setenv("KANAL_CUSTOMER_TOKEN", "env-token")
    monkeypatch.setattr(portal_cli, "connect", connect)
    monkeypatch.setattr(portal_cli, "print_message", lambda message: None)
    monkeypatch.setattr("kanal.v1.portal_pb2_grpc.PortalStub", Stub)
    assert main(argv) == 0
    assert seen == {"role": role, "token": token}


@pytest.mark.parametrize("level", ["none", "tenant"])
def test_journeys_check_that_finds_no_journeys_says_so(level, tmp_path, monkeypatch, capsys):
    # was: nothing printed and exit 0, with no journeys configured or --dir one level too
    # deep (journeys/demo), as if every journey file had been checked and found fine
    monkeypatch.setenv("KANAL_STATE_DIR", str(tmp_path / "state"))
    shipped = Path(__file__).resolve().parents[2] / "journeys"
    argv = ["journeys", "check"] + (["--dir", str(shipped / "demo")] if level == "tenant" else [])
    monkeypatch.chdir(tmp_path)
    assert main(argv) == 0
    captured = capsys.readouterr()
    assert captured.out == ""
    where = f"in {shipped / 'demo'}" if level == "tenant" else (
        "configured ([journeys] dir, or --dir DIR)")
    assert captured.err == (f"kanal journeys check: no journeys {where} (journeys live in "
                            "<dir>/<tenant>/<name>/<version>.toml)\n")


def test_an_out_folder_that_is_a_file_names_the_path_first(tmp_path, capsys):
    # was "kanal render: File exists /tmp/.../taken": the reason before the path
    taken = tmp_path / "taken"
    taken.write_text("")
    assert main(["render", "card-invoice", "--out", str(taken), "--dpi", "18"]) == 1
    assert capsys.readouterr().err == f"kanal render: {taken}: File exists\n"


@pytest.mark.parametrize("address", ["nonsense.invalid", "nonsense.invalid:50051"])
def test_an_address_whose_host_is_not_found_is_a_server_not_reached(address, capsys):
    # was: "kanal compose: UNAVAILABLE: errors resolving nonsense: [field:hostname lookup
    # error:address lookup failed for nonsense: Domain name not found]" (.invalid: RFC 2606);
    # a host without a port is called on Kanal's port, and named so (test_cli_address)
    assert main(["layouts", "--address", address, "--key", "k", "--timeout", "20"]) == 1
    err = capsys.readouterr().err
    assert err.count("\n") == 1, err
    assert err.startswith("kanal layouts: cannot reach a Kanal server at nonsense.invalid:50051: "
                          "its host "
                          "name does not resolve ("), err
    assert err.rstrip().endswith("; check --address or KANAL_ADDRESS"), err
    assert "UNAVAILABLE" not in err and "[field:" not in err, err
