"""HTTP for the adapters whose provider is a web API (SMS gateway, mailboxes, Peppol
access point): one request -> a `Response`, or `Unreachable` when no answer came, and the
answers every such API shares mapped to results (RFC 9110: 408, 429 and 5xx are worth
another try, `Retry-After` says when).

No answer is not always "not sent": a request that was written and then lost its answer
(a reset, a timeout) is `in_doubt`, and the adapter says so to the dispatcher.
"""

from __future__ import annotations

import http.client
import json
import ssl
import urllib.error
import urllib.request
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from email.utils import parsedate_to_datetime
from typing import Any

from server.delivery.model import Retry


@dataclass(frozen=True)
class Response:
    status: int
    body: bytes
    headers: Mapping[str, str] = field(default_factory=dict)

    def json(self) -> Any:
        try:
            return json.loads(self.body or b"null")
        except ValueError:
            return None

    @property
    def words(self) -> str:
        """The status and the start of the body, for the delivery's reason."""
        text = self.body[:300].decode("utf-8", "replace").strip()
        return f"HTTP {self.status}" + (f": {' '.join(text.split())}" if text else "")


class Unreachable(Exception):
    def __init__(self, reason: str, in_doubt: bool = False):
        super().__init__(reason)
        self.in_doubt = in_doubt


def request(method: str, url: str, *, body: bytes | None = None,
            headers: Mapping[str, str] | None = None, timeout: float = 30,
            ca_file: str | None = None) -> Response:
    context = ssl.create_default_context(cafile=ca_file) if url.startswith("https:") else None
    req = urllib.request.Request(url, data=body, method=method, headers=dict(headers or {}))
    try:
        with urllib.request.urlopen(req, timeout=timeout, context=context) as answer:
            return Response(answer.status, answer.read(), dict(answer.headers.items()))
    except urllib.error.HTTPError as exc:
        return Response(exc.code, exc.read(), dict(exc.headers.items()))
    except urllib.error.URLError as exc:  # before the request was written: not sent
        raise Unreachable(f"cannot reach {url}: {exc.reason}") from exc
    except (http.client.HTTPException, OSError) as exc:  # written, answer lost
        raise Unreachable(f"{url} did not answer: {exc!r}", in_doubt=True) from exc


def retry_after(headers: Mapping[str, str], now: datetime | None = None) -> timedelta | None:
    """RFC 9110 §10.2.3 `Retry-After`: seconds or an HTTP date."""
    value = next((v for k, v in headers.items() if k.lower() == "retry-after"), None)
    if not value:
        return None
    if value.strip().isdigit():
        return timedelta(seconds=int(value))
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(timedelta(0), when - (now or datetime.now(UTC)))


def transient(response: Response, what: str) -> Retry | None:
    """A Retry for 408, 429 (the provider's pace: not an outage) and 5xx; else None."""
    if response.status == 429:
        return Retry(f"{what}: {response.words}", after=retry_after(response.headers),
                     provider_down=False)
    if response.status == 408 or response.status >= 500:
        return Retry(f"{what}: {response.words}", after=retry_after(response.headers))
    return None


def unreachable(exc: Unreachable, what: str) -> Retry:
    return Retry(f"{what}: {exc}", in_doubt=exc.in_doubt)
