"""The embedded SeaweedFS runs Go on one core unless told otherwise (archive.embedded:
`GOMAXPROCS=1` costs 15-25% less SeaweedFS CPU per archived document on the 2-core target)."""

from __future__ import annotations

from pathlib import Path

import pytest

from archive.embedded import EmbeddedS3

pytestmark = pytest.mark.integration


def _child_environment(pid: int) -> dict[str, str]:
    raw = Path(f"/proc/{pid}/environ").read_bytes().split(b"\0")
    return dict(entry.decode().split("=", 1) for entry in raw if b"=" in entry)


@pytest.mark.parametrize(("go_max_procs", "expected"), [(1, "1"), (2, "2"), (None, "7")])
def test_the_child_gets_its_gomaxprocs_whatever_the_parent_has(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, go_max_procs: int | None,
        expected: str) -> None:
    monkeypatch.setenv("GOMAXPROCS", "7")  # the parent's own: used only when asked (None)
    kwargs = {} if go_max_procs == 1 else {"go_max_procs": go_max_procs}  # 1 is the default
    with EmbeddedS3(tmp_path / "s3", access_key="procs-access", secret_key="procs-secret-0123",
                    supervise=False, **kwargs) as s3:
        assert s3.pid is not None
        assert _child_environment(s3.pid)["GOMAXPROCS"] == expected


def test_gomaxprocs_below_one_is_refused(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="go_max_procs"):
        EmbeddedS3(tmp_path / "s3", access_key="a", secret_key="b", go_max_procs=0)
