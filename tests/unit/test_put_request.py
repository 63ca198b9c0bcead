"""archive.put_request without a server: botocore's standard retries (a 5xx or a dropped
connection is tried again, up to the client's `total_max_attempts`), S3 error bodies parsed
into the ClientError that `put_object` raises, and the headers `put_object` would send."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import boto3
import pytest
from botocore.awsrequest import AWSResponse
from botocore.config import Config
from botocore.exceptions import ClientError, EndpointConnectionError, NoCredentialsError

import archive.put_request
from archive.put_request import SignedPut, put_headers


class _Raw:
    def __init__(self, body: bytes) -> None:
        self._body = body

    def stream(self) -> Any:
        yield self._body


def _response(status: int, body: bytes = b"", **headers: str) -> AWSResponse:
    return AWSResponse("http://s3.test/b/k", status, headers, _Raw(body))


def _error(code: str, status: int) -> AWSResponse:
    return _response(status, f"<Error><Code>{code}</Code><Message>m</Message></Error>".encode())


class _Session:
    """Answers the queued responses (or raises the queued exceptions) in order."""

    def __init__(self, *answers: Any) -> None:
        self.answers = list(answers)
        self.sent: list[Any] = []

    def send(self, request: Any) -> Any:
        self.sent.append(request)
        answer = self.answers.pop(0)
        if isinstance(answer, Exception):
            raise answer
        return answer


def _signed(session: _Session, max_attempts: int = 2, credentials: bool = True) -> SignedPut:
    client = boto3.session.Session().client(
        "s3", endpoint_url="http://127.0.0.1:9", region_name="us-east-1",
        aws_access_key_id="a", aws_secret_access_key="b",
        config=Config(retries={"max_attempts": max_attempts, "mode": "standard"},
                      s3={"addressing_style": "path"}))
    creds = boto3.session.Session("a", "b").get_credentials() if credentials else None
    put = SignedPut(client, creds, "us-east-1")
    put._http = session
    return put


@pytest.fixture(autouse=True)
def _no_sleep(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(archive.put_request.time, "sleep", lambda seconds: None)


def test_a_5xx_and_a_dropped_connection_are_retried() -> None:
    session = _Session(_error("SlowDown", 503),
                       EndpointConnectionError(endpoint_url="http://127.0.0.1:9"),
                       _response(200, **{"x-amz-version-id": "v1"}))
    assert _signed(session)("bucket", "a/b.pdf", b"x", {"If-None-Match": "*"}) == "v1"
    assert len(session.sent) == 3
    assert {r.url for r in session.sent} == {"http://127.0.0.1:9/bucket/a/b.pdf"}


def test_retries_end_at_the_clients_attempts() -> None:
    session = _Session(*[_error("InternalError", 500)] * 3)
    with pytest.raises(ClientError) as raised:
        _signed(session, max_attempts=2)("bucket", "k", b"x", {})
    assert raised.value.response["Error"]["Code"] == "InternalError"
    assert raised.value.response["ResponseMetadata"]["HTTPStatusCode"] == 500
    assert len(session.sent) == 3  # max_attempts counts the retries, as in botocore

    dropped = _Session(*[EndpointConnectionError(endpoint_url="x")] * 2)
    with pytest.raises(EndpointConnectionError):
        _signed(dropped, max_attempts=1)("bucket", "k", b"x", {})
    assert len(dropped.sent) == 2


def test_a_taken_key_is_a_412_client_error_at_once() -> None:
    session = _Session(_error("PreconditionFailed", 412))
    with pytest.raises(ClientError) as raised:
        _signed(session)("bucket", "k", b"x", {"If-None-Match": "*"})
    assert raised.value.response["Error"]["Code"] == "PreconditionFailed"
    assert len(session.sent) == 1
    empty = _Session(_response(412))  # no error body: the status is the code
    with pytest.raises(ClientError) as raised:
        _signed(empty)("bucket", "k", b"x", {})
    assert raised.value.response["Error"]["Code"] == "412"


def test_keys_are_percent_encoded_as_botocore_does() -> None:
    session = _Session(_response(200))
    assert _signed(session)("bucket", "t/Åse Østby/1+2.pdf", b"x", {}) == ""
    assert session.sent[0].url == "http://127.0.0.1:9/bucket/t/%C3%85se%20%C3%98stby/1%2B2.pdf"


def test_no_credentials_is_botocores_error() -> None:
    with pytest.raises(NoCredentialsError):
        _signed(_Session(), credentials=False)("bucket", "k", b"x", {})


def test_headers_are_what_put_object_sends() -> None:
    until = datetime(2031, 1, 2, 3, 4, 5, tzinfo=UTC)
    headers = put_headers(media_type="application/pdf", metadata={"tenant": "t", "sha256": "ab"},
                          checksum_sha256="c2hh", retain_until=until, legal_hold=True)
    assert headers == {
        "Content-Type": "application/pdf", "If-None-Match": "*",
        "x-amz-checksum-sha256": "c2hh", "x-amz-object-lock-mode": "COMPLIANCE",
        "x-amz-object-lock-retain-until-date": "2031-01-02T03:04:05Z",
        "x-amz-object-lock-legal-hold": "ON",
        "x-amz-meta-tenant": "t", "x-amz-meta-sha256": "ab",
    }
    bare = put_headers(media_type="text/plain", metadata={}, checksum_sha256="c2hh",
                       retain_until=None, legal_hold=False)
    assert set(bare) == {"Content-Type", "If-None-Match", "x-amz-checksum-sha256"}
