"""What a running server tells the commands beside it: `state_dir/server.json`.

`kanal serve` writes it once it serves (pid, gRPC address, metrics URL, and the embedded S3
endpoint when it runs one) and removes it when it stops. `kanal archive ...` reads it to use
the running server's embedded store instead of starting a second SeaweedFS on the same
folder (which the embedded store's own lock refuses anyway, see archive.embedded). A file
left by a killed server is recognised by its pid no longer running.
"""

from __future__ import annotations

import contextlib
import json
import os
from pathlib import Path
from typing import Any

FILE_NAME = "server.json"


def write(state_dir: Path, **facts: Any) -> None:
    path = state_dir / FILE_NAME
    temporary = path.with_suffix(".tmp")
    temporary.write_text(json.dumps({"pid": os.getpid(), **facts}, indent=2))
    temporary.replace(path)


def read(state_dir: Path) -> dict[str, Any] | None:
    """The running server's facts, or None when no server of this state dir is running."""
    try:
        facts = json.loads((state_dir / FILE_NAME).read_text())
        os.kill(int(facts["pid"]), 0)
    except (OSError, ValueError, KeyError, TypeError):
        return None
    return facts if isinstance(facts, dict) else None


def remove(state_dir: Path) -> None:
    """Remove the file if this process wrote it."""
    path = state_dir / FILE_NAME
    with contextlib.suppress(OSError, ValueError, KeyError, TypeError):
        if json.loads(path.read_text())["pid"] == os.getpid():
            path.unlink()
