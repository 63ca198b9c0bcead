"""Local stand-ins of the provider APIs Kanal cannot reach from here, run as real HTTP
servers in the tests. Each follows its provider's published request and response shapes
(the module docstrings name the source) and records what it accepted, so a test checks
what actually arrived: the fields, the bytes, how many times.

`StandIn.down()` stops listening (connection refused, an outage); `up()` listens again on
the same port.
"""

from __future__ import annotations

import http.server
import json
import threading
from collections.abc import Mapping
from typing import Any

from tests.postfix import free_port

Answer = tuple[int, Mapping[str, str], bytes]


def json_answer(status: int, body: Any, **headers: str) -> Answer:
    return status, {"Content-Type": "application/json", **headers}, json.dumps(body).encode()


class StandIn:
    def __init__(self) -> None:
        self.port = free_port()
        self.lock = threading.Lock()
        self.requests: list[tuple[str, str]] = []  # (method, path) of every request
        self._server: http.server.ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def handle(self, method: str, path: str, headers: Mapping[str, str], body: bytes
               ) -> Answer:
        raise NotImplementedError

    def up(self) -> None:
        outer = self

        class Handler(http.server.BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def _any(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length) if length else b""
                with outer.lock:
                    outer.requests.append((self.command, self.path))
                try:
                    status, headers, payload = outer.handle(
                        self.command, self.path, dict(self.headers.items()), body)
                except Exception as exc:  # a stand-in bug shows as a 500 with its words
                    status, headers, payload = 500, {}, repr(exc).encode()
                self.send_response(status)
                for key, value in headers.items():
                    self.send_header(key, value)
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)

            do_GET = do_POST = do_PUT = _any  # noqa: N815

            def log_message(self, *args: Any) -> None:
                pass

        self._server = http.server.ThreadingHTTPServer(("127.0.0.1", self.port), Handler)
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)
        self._thread.start()

    def down(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None

    def __enter__(self) -> StandIn:
        self.up()
        return self

    def __exit__(self, *exc: object) -> None:
        self.down()
