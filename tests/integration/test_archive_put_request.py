"""The archive's PutObject as it goes on the wire (archive.put_request), against a real
embedded SeaweedFS: one request, no `100-continue` round trip, the body hashed once (the
payload is UNSIGNED-PAYLOAD, the sha256 travels in the signed `x-amz-checksum-sha256`), and
still every promise: a body changed on the way is refused, retention, legal hold, metadata
and the conditional write hold as before."""

from __future__ import annotations

import base64
import hashlib
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from archive.errors import ArchiveError, ObjectConflict, ObjectNotFound
from archive.store import ArchiveStore

pytestmark = pytest.mark.integration

PDF = b"%PDF-1.7\n" + b"archived invoice body\n" * 100


def _key() -> str:
    return f"sparebank-test/put-request/{uuid.uuid4().hex}/print.pdf"


@pytest.fixture
def sent(archive_store: ArchiveStore, monkeypatch: pytest.MonkeyPatch
         ) -> Iterator[list[Any]]:
    """Every request the store's HTTP session sends (botocore prepared requests)."""
    requests: list[Any] = []
    http = archive_store._client._endpoint.http_session
    send = http.send

    def recording(request: Any) -> Any:
        requests.append(request)
        return send(request)

    monkeypatch.setattr(http, "send", recording)
    yield requests


def _signed_headers(request: Any) -> set[str]:
    authorization = request.headers["Authorization"]
    if isinstance(authorization, bytes):
        authorization = authorization.decode()
    part = authorization.split("SignedHeaders=", 1)[1].split(",", 1)[0]
    return set(part.split(";"))


def _header(request: Any, name: str) -> str | None:
    value = request.headers.get(name)
    return value.decode() if isinstance(value, bytes) else value


def test_a_put_is_one_request_hashing_the_body_once_without_100_continue(
        archive_store: ArchiveStore, sent: list[Any]) -> None:
    key = _key()
    until = (datetime.now(UTC) + timedelta(days=2)).replace(microsecond=0)
    archive_store.put(key, PDF, media_type="application/pdf",
                      metadata={"tenant": "sparebank-test", "name": "Åse Østby"},
                      retain_until=until, legal_hold=True)
    puts = [r for r in sent if r.method == "PUT"]
    assert len(puts) == 1 and len(sent) == 1
    put = puts[0]
    assert _header(put, "Expect") is None  # no interim 100 Continue round trip
    assert _header(put, "X-Amz-Content-SHA256") == "UNSIGNED-PAYLOAD"
    digest = hashlib.sha256(PDF).digest()
    assert _header(put, "x-amz-checksum-sha256") == base64.b64encode(digest).decode()
    assert {"x-amz-checksum-sha256", "if-none-match", "x-amz-object-lock-mode",
            "x-amz-object-lock-retain-until-date", "x-amz-object-lock-legal-hold",
            "x-amz-meta-sha256", "x-amz-meta-name"} <= _signed_headers(put)

    stored = archive_store.head(key)
    assert stored.sha256 == digest.hex()
    assert stored.retain_until == until
    assert stored.legal_hold is True
    assert stored.metadata == {"tenant": "sparebank-test", "name": "Åse Østby"}
    assert archive_store.legal_hold(key) is True
    assert archive_store.get(key) == PDF


def test_a_body_changed_on_the_way_is_refused_and_nothing_is_stored(
        archive_store: ArchiveStore, monkeypatch: pytest.MonkeyPatch) -> None:
    """The payload is not signed: the checksum header is what makes S3 refuse other bytes."""
    http = archive_store._client._endpoint.http_session
    send = http.send

    def corrupting(request: Any) -> Any:
        if request.method == "PUT":
            body = request.body
            body = body.read() if hasattr(body, "read") else body
            request.body = body.replace(b"invoice", b"INVOICE")
        return send(request)

    monkeypatch.setattr(http, "send", corrupting)
    key = _key()
    with pytest.raises(ArchiveError, match="BadDigest"):
        archive_store.put(key, PDF, media_type="application/pdf", metadata={},
                          retain_until=None)
    monkeypatch.undo()
    with pytest.raises(ObjectNotFound):
        archive_store.head(key)


def test_the_conditional_write_still_holds(archive_store: ArchiveStore,
                                           sent: list[Any]) -> None:
    key = _key()
    first = archive_store.put(key, PDF, media_type="application/pdf", metadata={"a": "1"},
                              retain_until=None)
    again = archive_store.put(key, PDF, media_type="application/pdf", metadata={"a": "2"},
                              retain_until=None)
    assert again.metadata == {"a": "1"} and again.sha256 == first.sha256
    with pytest.raises(ObjectConflict):
        archive_store.put(key, PDF + b"\n", media_type="application/pdf", metadata={},
                          retain_until=None)
    assert all(_header(r, "If-None-Match") == "*" for r in sent if r.method == "PUT")
