"""Shared pieces of the delivery tests: a private Postfix, a fresh PostgreSQL database, a
DKIM key, a webhook receiver, sample data with chosen addresses, and waiting for a state
or for print pieces."""

from __future__ import annotations

import base64
import http.server
import json
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, TypeVar

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from sqlalchemy import Engine, create_engine, func, make_url, select, text

from kanal.v1 import common_pb2, documents_pb2, documents_pb2_grpc
from server.compose.layouts import LayoutRegistry
from server.printing.queue import print_pieces
from tests.client import channel
from tests.postfix import BOUNCE_DOMAIN, DOMAIN, Postfix, free_port

T = TypeVar("T")
LAYOUTS = LayoutRegistry()


def wait_for(probe: Callable[[], T | None], what: str, timeout: float = 60,
             explain: Callable[[], object] = lambda: "") -> T:
    """Poll `probe` until it returns something truthy (the event), or fail naming `what`
    (and what `explain` says about the state of things)."""
    deadline = time.monotonic() + timeout
    while True:
        value = probe()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {what}. {explain()}")
        time.sleep(0.1)


def queued_pieces(engine: Engine, document_ids: list[str], count: int,
                  timeout: float = 60) -> None:
    """Wait until `count` of these documents have a print piece: a printed document's print
    delivery queues it once the send-time rules let it go (server.delivery.providers.
    printing), a moment after the document (or its job) is done. Fails naming how many."""
    def queued() -> int:
        with engine.connect() as conn:
            return conn.execute(select(func.count()).select_from(print_pieces).where(
                print_pieces.c.document_id.in_(document_ids))).scalar()
    wait_for(lambda: queued() == count, f"{count} print pieces",
             timeout, explain=lambda: f"{queued()} queued")


def print_delivery(address: str, key: str, document_id: str) -> Any:
    """The document's print delivery, as GetDocument shows it (called with `key`)."""
    with channel(address, key) as ch:
        found = documents_pb2_grpc.DocumentsStub(ch).GetDocument(
            documents_pb2.GetDocumentRequest(document_id=document_id))
    [delivery] = [d for d in found.deliveries if d.channel == common_pb2.CHANNEL_PRINT]
    return delivery


def sample(layout_id: str, email: str, *, customer_id: str | None = None,
           country: str = "NO", consents: tuple[str, ...] = ("email", "sms"),
           sample_file: str = "sample.json", **customer_fields: Any) -> str:
    """The layout's sample with this recipient; `customer_fields` replace the customer's
    (mobile, mailbox_ids, preferences, national_id ...)."""
    data = json.loads((LAYOUTS.get(layout_id).path / sample_file).read_text())
    customer = data["customer"]
    customer.update(email=email, preferences=[], consents=list(consents),
                    customer_id=customer_id or uuid.uuid4().hex[:12])
    customer["address"]["country"] = country
    customer.update(customer_fields)
    return json.dumps(data)


def compose(documents: Any, layout_id: str, data: str, channels: Any = ()) -> str:
    from kanal.v1 import documents_pb2
    return documents.Compose(documents_pb2.ComposeRequest(
        layout_id=layout_id, data_json=data, channels=channels)).document_id


def find_delivery(documents: Any, document_id: str, channel: int, state: int | None = None
                  ) -> Any:
    """The document's delivery of that channel (in `state`, when given), or None."""
    from kanal.v1 import documents_pb2
    found = documents.GetDocument(documents_pb2.GetDocumentRequest(document_id=document_id))
    for d in found.deliveries:
        if d.channel == channel and (state is None or d.state == state):
            return d
    return None


def unique_mobile(prefix: str = "+4741") -> str:
    return prefix + str(uuid.uuid4().int % 10**6).zfill(6)


def mailbox_user() -> str:
    return f"ok-{uuid.uuid4().hex[:10]}"


def address(user: str) -> str:
    return f"{user}@{DOMAIN}"


class DkimKey:
    """An RSA key pair; `dns` answers a DKIM TXT query for it (dkim.verify's dnsfunc)."""

    def __init__(self, directory: Path, selector: str = "kanal1"):
        key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        self.selector = selector
        self.key_file = directory / "dkim.pem"
        self.key_file.write_bytes(key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.TraditionalOpenSSL,
            serialization.NoEncryption()))
        public = key.public_key().public_bytes(serialization.Encoding.DER,
                                               serialization.PublicFormat.SubjectPublicKeyInfo)
        self.record = b"v=DKIM1; k=rsa; p=" + base64.b64encode(public)

    def dns(self, name: bytes, timeout: int = 5) -> bytes:
        return self.record if name.startswith(self.selector.encode() + b"._domainkey.") else b""


class WebhookReceiver:
    """A local HTTP server that records every POST (headers and raw body)."""

    def __init__(self, status: int = 200):
        received: list[tuple[dict[str, str], bytes]] = []
        self.received = received
        self.status = status
        outer = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802
                body = self.rfile.read(int(self.headers["Content-Length"]))
                received.append((dict(self.headers), body))
                self.send_response(outer.status)
                self.end_headers()

            def log_message(self, *args: Any) -> None:
                pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/kanal/deliveries"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


def fresh_database(pg_url: str) -> Iterator[str]:
    name = f"kanal_test_{uuid.uuid4().hex[:10]}"
    admin = create_engine(pg_url, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    try:
        yield make_url(pg_url).set(database=name).render_as_string(hide_password=False)
    finally:
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


def delivery_settings(postfix: Postfix, dkim: DkimKey, *, webhook_url: str = "",
                      rules: dict[str, Any] | None = None, **overrides: Any) -> dict[str, Any]:
    """`[delivery]` for a server sending through `postfix`, with short test timings."""
    tenant: dict[str, Any] = {
        "return_path_domain": BOUNCE_DOMAIN,
        "dkim": {"selector": dkim.selector, "key_file": str(dkim.key_file)},
    }
    if webhook_url:
        tenant.update(webhook_url=webhook_url, webhook_secret="whsec-test")
    return {
        "lease_seconds": 5, "poll_seconds": 0.2, "sent_grace_days": 1 / 86400,
        "purge_seconds": 1,
        "bounce_listen": f"127.0.0.1:{postfix.bounce_port}",
        "channels": {"email": "relay"},
        "providers": {"relay": {
            "type": "smtp", "host": "127.0.0.1", "port": postfix.port, "starttls": True,
            "ca_file": str(postfix.ca_file), "timeout": 5, "backoff_seconds": 0.2,
            "backoff_max_seconds": 1.0, "breaker_failures": 3, "breaker_seconds": 1.0,
            "in_doubt_seconds": 3, "max_attempts": 50,
        }},
        "tenants": {"nordkort": tenant, "demo": tenant},
        "rules": rules or {},
        **overrides,
    }


def start_postfix() -> Postfix:
    postfix = Postfix(bounce_port=free_port())
    postfix.start()
    return postfix
