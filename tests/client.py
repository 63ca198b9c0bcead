"""Test clients: API keys for every role, and channels that present them."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import grpc

from server.auth import ApiKey, hash_key, new_key


class Keys:
    """A secret per (tenant, role), and the hashed entries a server is configured with."""

    def __init__(self, *pairs: tuple[str, str]):
        self.secrets = {pair: new_key() for pair in pairs}

    def __getitem__(self, pair: tuple[str, str]) -> str:
        return self.secrets[pair]

    @property
    def api_keys(self) -> tuple[ApiKey, ...]:
        return tuple(ApiKey(id=f"{tenant}-{role}", sha256=hash_key(secret), tenant=tenant,
                            role=role) for (tenant, role), secret in self.secrets.items())


class _Authorization(grpc.UnaryUnaryClientInterceptor, grpc.UnaryStreamClientInterceptor,
                     grpc.StreamUnaryClientInterceptor, grpc.StreamStreamClientInterceptor):
    def __init__(self, key: str):
        self.header = ("authorization", f"Bearer {key}")

    def _details(self, details):
        return _Details(details.method, details.timeout,
                        [*(details.metadata or ()), self.header], details.credentials,
                        details.wait_for_ready, details.compression)

    def intercept_unary_unary(self, continuation, details, request):
        return continuation(self._details(details), request)

    def intercept_unary_stream(self, continuation, details, request):
        return continuation(self._details(details), request)

    def intercept_stream_unary(self, continuation, details, request_iterator):
        return continuation(self._details(details), request_iterator)

    def intercept_stream_stream(self, continuation, details, request_iterator):
        return continuation(self._details(details), request_iterator)


class _Details(grpc.ClientCallDetails):
    def __init__(self, method, timeout, metadata, credentials, wait_for_ready, compression):
        self.method, self.timeout, self.metadata = method, timeout, metadata
        self.credentials, self.wait_for_ready, self.compression = (
            credentials, wait_for_ready, compression)


@contextmanager
def channel(address: str, key: str | None) -> Iterator[grpc.Channel]:
    """An insecure channel to a local test server that sends `key` on every call."""
    with grpc.insecure_channel(address) as raw:
        yield grpc.intercept_channel(raw, _Authorization(key)) if key else raw
