"""archive.sigv4 signs the archive's PutObject exactly as botocore's S3SigV4Auth does: the
same Authorization header (and the same date, payload and token headers) for the same
instant, with the signing key derived once a day instead of four HMACs a request. No
server: archive.put_request's requests are compared with the ones botocore made before."""

from __future__ import annotations

import hashlib
import hmac
from datetime import UTC, datetime
from typing import Any

import pytest
from botocore.auth import S3SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.config import Config
from botocore.credentials import Credentials
from botocore.utils import percent_encode

from archive import sigv4
from archive.metadata import encode_metadata
from archive.put_request import put_headers
from archive.sigv4 import SigningKeys, amz_date, host_header, sign
from archive.store import ArchiveStore

INSTANT = datetime(2026, 12, 1, 7, 45, 9, tzinfo=UTC)
BODY = b"%PDF-1.7\n" + b"archived invoice body\n" * 50
SHA = hashlib.sha256(BODY).digest()


def _headers() -> dict[str, str]:
    return put_headers(
        media_type="application/pdf",
        metadata=encode_metadata({"tenant": "sparebank-test", "name": "Åse Østby",
                                  "facts": '{"engine":"typst"}'}, SHA.hex()),
        checksum_sha256="n4bQgYhMfWWaL+qgxVrQFaO/TxsrC4Is0V1sFbDwCgg=",
        retain_until=datetime(2031, 12, 1, tzinfo=UTC), legal_hold=True)


def _botocore(credentials: Credentials, url: str, headers: dict[str, str], when: datetime,
              monkeypatch: pytest.MonkeyPatch, region: str = "us-east-1") -> AWSRequest:
    """The request signed by botocore itself, payload unsigned, at `when`."""
    monkeypatch.setattr("botocore.auth.get_current_datetime",
                        lambda *a, **k: when.replace(tzinfo=None))
    request = AWSRequest(method="PUT", url=url, data=BODY, headers=dict(headers))
    request.context["client_config"] = Config(s3={"payload_signing_enabled": False})
    S3SigV4Auth(credentials.get_frozen_credentials(), "s3", region).add_auth(request)
    return request


@pytest.mark.parametrize("token", [None, "FwoGZXIvYXdzEJr//////////wEaDG5vdGFyZWFsdG9rZW4="])
@pytest.mark.parametrize(("endpoint", "region"), [
    ("http://127.0.0.1:8333", "us-east-1"),
    ("https://s3.eu-north-1.amazonaws.com", "eu-north-1"),
    ("http://Archive.Example:80", "us-east-1"),
])
def test_the_authorization_header_is_botocores(endpoint: str, region: str, token: str | None,
                                               monkeypatch: pytest.MonkeyPatch) -> None:
    credentials = Credentials("AKIDEXAMPLE", "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY", token)
    path = "/archive/" + percent_encode("sparebank/1002 Åse/2026/01JD4W8ZQ7/print.pdf",
                                        safe="/~")
    expected = _botocore(credentials, endpoint + path, _headers(), INSTANT, monkeypatch, region)
    ours = sign(SigningKeys(region), credentials.get_frozen_credentials(), "PUT",
                host_header(endpoint), path, _headers(), amz_date(INSTANT.timestamp()))
    assert ours == dict(expected.headers.items())
    assert ours["Authorization"].startswith(
        f"AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20261201/{region}/s3/aws4_request, ")


def test_whitespace_and_names_differing_in_case_are_canonical_as_botocore_has_them(
        monkeypatch: pytest.MonkeyPatch) -> None:
    credentials = Credentials("AKIDEXAMPLE", "secret")
    headers = {"Content-Type": "text/plain", "x-amz-meta-note": "  two   spaces\tand tab ",
               "X-Amz-Meta-Note": "second", "If-None-Match": "*", "Expect": "100-continue"}
    url = "http://127.0.0.1:8333/archive/k"
    expected = _botocore(credentials, url, headers, INSTANT, monkeypatch)
    ours = sign(SigningKeys("us-east-1"), credentials.get_frozen_credentials(), "PUT",
                host_header(url), "/archive/k", headers, amz_date(INSTANT.timestamp()))
    assert ours["Authorization"] == expected.headers["Authorization"]
    assert "expect" not in ours["Authorization"]  # never signed (botocore's blacklist)


def test_the_signing_key_is_derived_once_a_day(monkeypatch: pytest.MonkeyPatch) -> None:
    keys = SigningKeys("eu-north-1")
    derivations: list[bytes] = []
    real = sigv4._hmac

    def counting(key: bytes, message: str) -> bytes:
        derivations.append(key)
        return real(key, message)

    monkeypatch.setattr(sigv4, "_hmac", counting)
    first = keys.key("secret", "20261201")
    assert keys.key("secret", "20261201") is first and len(derivations) == 4
    expected = b"AWS4secret"
    for part in ("20261202", "eu-north-1", "s3", "aws4_request"):
        expected = hmac.new(expected, part.encode(), hashlib.sha256).digest()
    assert keys.key("secret", "20261202") == expected != first  # the next day: a new key
    assert keys.key("rotated", "20261202") != expected  # a new secret: a new key
    assert len(derivations) == 12


def test_puts_on_both_sides_of_midnight_are_signed_as_botocore_signs_them(
        monkeypatch: pytest.MonkeyPatch) -> None:
    credentials = Credentials("AKIDEXAMPLE", "secret")
    keys = SigningKeys("us-east-1")
    for when in (datetime(2026, 12, 1, 23, 59, 59, tzinfo=UTC),
                 datetime(2026, 12, 2, 0, 0, 0, tzinfo=UTC),
                 datetime(2026, 12, 1, 23, 59, 58, tzinfo=UTC)):  # a clock stepped back
        url = "http://127.0.0.1:8333/archive/k"
        expected = _botocore(credentials, url, _headers(), when, monkeypatch)
        ours = sign(keys, credentials.get_frozen_credentials(), "PUT", host_header(url),
                    "/archive/k", _headers(), amz_date(when.timestamp()))
        assert ours["Authorization"] == expected.headers["Authorization"]


def test_the_archive_put_sends_what_botocore_prepared_before(
        monkeypatch: pytest.MonkeyPatch) -> None:
    """archive.put_request's request, header for header, as botocore's AWSRequest signed by
    S3SigV4Auth and prepared (the way it was built before archive.sigv4)."""
    store = ArchiveStore(endpoint_url="http://127.0.0.1:9", bucket="archive",
                         access_key="AKIDEXAMPLE", secret_key="secret")
    put: Any = store._signed_put
    monkeypatch.setattr("archive.put_request.amz_date", lambda: amz_date(INSTANT.timestamp()))
    path = "/archive/" + percent_encode("sparebank/1002/2026/01JD4W8ZQ7/print.pdf", safe="/~")
    ours = put._signed(path, BODY, _headers())
    before = _botocore(Credentials("AKIDEXAMPLE", "secret"), "http://127.0.0.1:9" + path,
                       _headers(), INSTANT, monkeypatch).prepare()
    assert (ours.method, ours.url, ours.body) == (before.method, before.url, before.body)
    assert dict(ours.headers.items()) == dict(before.headers.items())
