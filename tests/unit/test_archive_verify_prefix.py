"""`verify` and `kanal archive verify --prefix`: only the outputs whose object key begins with
the prefix are re-read (a real SQLite index; the store only records what is read)."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime

import pytest

import server.archive_admin
from archive.index import DocumentIndex
from archive.keys import customer_prefix, document_key
from archive.rebuild import verify
from archive.records import DocumentRecord, OutputRecord
from server.cli import main

CREATED = datetime(2026, 11, 30, 12, 0, tzinfo=UTC)
# (tenant, customer): "Demo" differs from "demo" only in case (SQLite's LIKE does not see
# it), "2018_455" holds LIKE's one-character wildcard
DOCUMENTS = [("demo", "20184455"), ("demo", "20184456"), ("Demo", "20184455"),
             ("demo", "2018_455"), ("other", "20184455")]


class ReadingStore:
    """Stands in for archive.store.ArchiveStore: every object is intact; records reads."""

    def __init__(self) -> None:
        self.read: list[str] = []

    def get(self, key: str, *, expected_sha256: str | None = None,
            current_only: bool = False) -> bytes:
        self.read.append(key)
        return b""


@pytest.fixture()
def index(tmp_path) -> Iterator[DocumentIndex]:
    index = DocumentIndex(f"sqlite:///{tmp_path / 'index.db'}")
    index.create_schema()
    for n, (tenant, customer) in enumerate(DOCUMENTS):
        document_id = f"01D{n:023d}"
        index.add(DocumentRecord(
            tenant=tenant, document_id=document_id, customer_id=customer, kind="invoice",
            layout_ref="card-invoice@1.0.0", locale="nb-NO", created_at=CREATED,
            input_sha256="0" * 64, idempotency_key=None, channel_plan="print,email",
            retain_until=None, outputs=tuple(
                OutputRecord(channel=channel, key=document_key(
                    tenant, customer, CREATED, document_id, channel, extension),
                    media_type="application/octet-stream", sha256="0" * 64, size=0,
                    pages=None)
                for channel, extension in (("email", "html"), ("print", "pdf")))))
    yield index
    index.close()


def _keys(tenant: str, customer: str) -> list[str]:
    return [key for key in _all_keys() if key.startswith(customer_prefix(tenant, customer))]


def _all_keys() -> list[str]:
    return [document_key(t, c, CREATED, f"01D{n:023d}", channel, ext)
            for n, (t, c) in enumerate(DOCUMENTS)
            for channel, ext in (("email", "html"), ("print", "pdf"))]


def test_verify_reads_only_the_outputs_under_the_prefix(index):
    store = ReadingStore()
    report = verify(store, index, prefix=customer_prefix("demo", "20184455"))  # type: ignore[arg-type]
    assert sorted(store.read) == _keys("demo", "20184455") and report.checked == 2
    assert report.ok


@pytest.mark.parametrize("prefix, expected", [
    ("demo/2018_455/", [("demo", "2018_455")]),  # "_" is no wildcard
    ("Demo/", [("Demo", "20184455")]),  # nor is case ignored
    ("demo/2018445", [("demo", "20184455"), ("demo", "20184456")]),  # any prefix, not a folder
    ("zzz", []),
    ("", DOCUMENTS),
])
def test_verify_takes_the_prefix_literally(index, prefix, expected):
    store = ReadingStore()
    report = verify(store, index, prefix=prefix)  # type: ignore[arg-type]
    assert sorted(store.read) == sorted(k for t, c in expected for k in _keys(t, c))
    assert report.checked == 2 * len(expected)


def test_verify_prefix_can_name_one_output(index):
    store = ReadingStore()
    [key] = [k for k in _keys("other", "20184455") if k.endswith("/print.pdf")]
    assert verify(store, index, prefix=key).checked == 1 and store.read == [key]  # type: ignore[arg-type]


def test_kanal_archive_verify_honours_prefix(index, monkeypatch, tmp_path, capsys):
    # was: `--prefix zzz` and `--prefix demo/20184455/` both "checked 4050 objects" (all)
    store = ReadingStore()

    @contextmanager
    def open_archive(settings, action="verify"):
        assert action == "verify"
        yield store, index

    monkeypatch.setattr(server.archive_admin, "open_archive", open_archive)
    state = ["--state-dir", str(tmp_path / "state")]
    assert main(["archive", "verify", "--prefix", "demo/20184455/", *state]) == 0
    assert sorted(store.read) == _keys("demo", "20184455")
    assert "checked 2 objects" in capsys.readouterr().err
    store.read.clear()
    assert main(["archive", "verify", "--prefix", "zzz", *state]) == 0
    assert store.read == [] and "checked 0 objects" in capsys.readouterr().err


def test_the_index_narrows_to_documents_under_the_prefix(index):
    """Verifying one customer does not walk the whole index: the query selects documents
    with an output under the prefix (LIKE wildcards in it escaped)."""
    assert [(r.tenant, r.customer_id) for r in index.iter_all(key_prefix="other/")] == [
        ("other", "20184455")]
    assert [(r.tenant, r.customer_id) for r in index.iter_all(key_prefix="demo/2018_455/")] \
        == [("demo", "2018_455")]
    assert len(list(index.iter_all())) == len(DOCUMENTS)
