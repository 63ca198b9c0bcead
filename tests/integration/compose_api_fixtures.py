"""Shared pieces of the Compose API tests (test_compose_api, test_compose_bad_input,
test_api_access_health_outages): the API keys, a Kanal server with its embedded SeaweedFS
(started by the same code `kanal serve` uses), stubs, the layouts' samples, and small readers
of replies and of the bucket.

The server and stub helpers are generators for a module's own fixtures
(`yield from start_kanal(tmp_path_factory)`), so every test module has its own server.
"""

from __future__ import annotations

from collections.abc import Iterator

import boto3
import grpc
import pytest

from kanal.v1 import common_pb2, documents_pb2_grpc
from server.app import KanalServer
from server.compose.layouts import LayoutRegistry
from server.config import Settings
from server.credentials import embedded_credentials
from tests.client import Keys, channel

LAYOUTS = LayoutRegistry()
KEYS = Keys(("nordkort", "producer"), ("nordkort", "service"), ("nordkort", "portal"),
            ("other", "producer"), ("other", "service"))


def start_kanal(tmp_path_factory: pytest.TempPathFactory) -> Iterator[KanalServer]:
    """A running server with every key of `KEYS` and data up to 512 KiB; stopped after."""
    state = tmp_path_factory.mktemp("kanal-state")
    with KanalServer(Settings(listen="127.0.0.1:0", state_dir=state, api_keys=KEYS.api_keys,
                              max_data_bytes=512 * 1024)) as server:
        yield server


def stub(kanal: KanalServer, tenant: str = "nordkort", role: str = "producer"):
    return channel(kanal.address, KEYS[tenant, role] if role else None)


def documents_stub(kanal: KanalServer) -> Iterator[documents_pb2_grpc.DocumentsStub]:
    """A Documents stub as nordkort's producer, its channel open while it is in use."""
    with stub(kanal) as ch:
        yield documents_pb2_grpc.DocumentsStub(ch)


def s3_client(kanal: KanalServer):
    """A raw S3 client with the server's credentials, to look at the bucket directly:
    (client, bucket)."""
    access_key, secret_key = embedded_credentials(kanal.settings.state_dir)
    client = boto3.client("s3", endpoint_url=kanal.store.endpoint_url, region_name="us-east-1",
                          aws_access_key_id=access_key, aws_secret_access_key=secret_key)
    return client, kanal.store.bucket


def sample(layout_id: str, name: str = "sample.json") -> str:
    return (LAYOUTS.get(layout_id).path / name).read_text(encoding="utf-8")


def print_output(outputs):
    """The print PDF among a document's outputs (the plan may add email, SMS, e-invoice)."""
    [output] = [o for o in outputs if o.channel == common_pb2.CHANNEL_PRINT]
    return output


def call_error(fn, request) -> grpc.RpcError:
    with pytest.raises(grpc.RpcError) as info:
        fn(request)
    return info.value


def count_objects(s3) -> int:
    client, bucket = s3
    return sum(page.get("KeyCount", 0)
               for page in client.get_paginator("list_objects_v2").paginate(Bucket=bucket))
