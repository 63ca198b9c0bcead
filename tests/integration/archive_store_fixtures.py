"""Shared pieces of the archive store's tests (test_archive_store.py,
test_archive_retention.py, test_embedded_start_stop.py): a PDF-like body, a fresh document
key per call, a retention date, a free port, and what /proc says about a process and its
group. The store and the embedded SeaweedFS themselves are the session's (conftest.py:
`embedded_s3`, `archive_store`, `raw_s3`), started once per test process whichever of these
modules run.
"""

from __future__ import annotations

import os
import socket
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

from archive.keys import document_key

PDF = b"%PDF-1.7\n" + b"archived invoice body\n" * 100


def new_key(channel: str = "print", extension: str = "pdf") -> str:
    """A document key no other test uses (a fresh document id), with a non-ASCII and
    path-like customer part."""
    return document_key(
        "sparebank-test",
        "Åse/../Østby",
        datetime(2025, 3, 14, 9, 30, tzinfo=UTC),
        uuid.uuid4().hex.upper(),
        channel,
        extension,
    )


def days_from_now(days: int = 2) -> datetime:
    """`days` from now (UTC); negative: in the past."""
    return datetime.now(UTC) + timedelta(days=days)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def process_group_members(pgid: int) -> list[int]:
    """Live processes whose process group is `pgid` (read from /proc, no psutil)."""
    members = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        fields = stat[stat.rindex(")") + 2 :].split()
        state, pgrp = fields[0], int(fields[2])
        if pgrp == pgid and state != "Z":
            members.append(int(entry.name))
    return members


def pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    status = Path(f"/proc/{pid}/stat")
    return status.exists() and status.read_text().split(") ")[1][0] != "Z"
