"""Integration fixtures: one real SeaweedFS per test session, the machine's PostgreSQL.

- `embedded_s3`: an `EmbeddedS3` under the session's tmp dir, with its own random key pair,
  on free ports; stopped at the end of the session.
- `archive_store`: an `ArchiveStore` on a bucket with Object Lock, unique per session.
- `raw_s3`: a plain boto3 client with the same credentials, for what the archive refuses to
  do (deleting versions, overwriting, tampering).
- `pg_url`: the PostgreSQL URL (env `KANAL_TEST_PG_URL`, default the local `test` database).
  PostgreSQL not answering is an error, never a skip.
- `pg_schema`: a schema `kanal_test_<random>` for this run, dropped at the end, so runs that
  share the database never see each other's rows.
- `document_index`: a `DocumentIndex`, parametrized over SQLite (fresh file per test) and
  PostgreSQL (the session schema; tests use unique tenants).
"""

from __future__ import annotations

import os
import secrets
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import boto3
import pytest
from botocore.config import Config
from sqlalchemy import create_engine, text

from archive.embedded import EmbeddedS3
from archive.index import DocumentIndex
from archive.store import ArchiveStore

DEFAULT_PG_URL = "postgresql+psycopg://postgres@127.0.0.1:5432/test"


@pytest.fixture(scope="session")
def embedded_s3(tmp_path_factory: pytest.TempPathFactory) -> Iterator[EmbeddedS3]:
    server = EmbeddedS3(
        tmp_path_factory.mktemp("seaweedfs"),
        access_key=f"kanal-test-{secrets.token_hex(4)}",
        secret_key=secrets.token_urlsafe(24),
    )
    server.start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture(scope="session")
def archive_store(embedded_s3: EmbeddedS3) -> ArchiveStore:
    store = ArchiveStore(
        endpoint_url=embedded_s3.endpoint_url,
        bucket=f"kanal-archive-{uuid.uuid4().hex[:12]}",
        access_key=embedded_s3.access_key,
        secret_key=embedded_s3.secret_key,
    )
    store.ensure_bucket()
    return store


@pytest.fixture(scope="session")
def raw_s3(embedded_s3: EmbeddedS3) -> Any:
    return boto3.session.Session().client(
        "s3",
        endpoint_url=embedded_s3.endpoint_url,
        aws_access_key_id=embedded_s3.access_key,
        aws_secret_access_key=embedded_s3.secret_key,
        region_name="us-east-1",
        config=Config(s3={"addressing_style": "path"}, retries={"max_attempts": 1}),
    )


@pytest.fixture(scope="session")
def pg_url() -> str:
    url = os.environ.get("KANAL_TEST_PG_URL", DEFAULT_PG_URL)
    engine = create_engine(url, connect_args={"connect_timeout": 5})
    try:
        with engine.connect() as conn:
            conn.execute(text("SELECT 1"))
    except Exception as exc:  # noqa: BLE001 - any failure must stop the run loudly
        pytest.fail(
            f"PostgreSQL is required for the integration tests and is not reachable at {url} "
            f"(set KANAL_TEST_PG_URL): {exc}",
            pytrace=False,
        )
    finally:
        engine.dispose()
    return url


@pytest.fixture(scope="session")
def pg_schema(pg_url: str) -> Iterator[str]:
    schema = f"kanal_test_{secrets.token_hex(6)}"
    yield schema
    engine = create_engine(pg_url)
    try:
        with engine.begin() as conn:
            conn.execute(text(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE'))
    finally:
        engine.dispose()


@pytest.fixture(scope="session")
def pg_index(pg_url: str, pg_schema: str) -> Iterator[DocumentIndex]:
    index = DocumentIndex(pg_url, schema=pg_schema)
    index.create_schema()
    yield index
    index.close()


@pytest.fixture(params=["sqlite", "postgresql"])
def document_index(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[DocumentIndex]:
    if request.param == "postgresql":
        yield request.getfixturevalue("pg_index")
        return
    index = DocumentIndex(f"sqlite:///{tmp_path / 'index.db'}")
    index.create_schema()
    yield index
    index.close()
