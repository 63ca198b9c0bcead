"""The compose input of a document, encrypted at rest until its deliveries have ended.

A fallback channel is rendered later, from the same composition: composing is pure and
deterministic, so the input (tenant, layout id and *resolved* version, the request's locale
as given -- the locale and its decision come out the same -- and the resolved one, the data,
the requested channels, the document id and creation time) rebuilds exactly the same
Composition. The input holds personal data, so it is kept only as long as a fallback may
still be needed, compressed (zlib) and encrypted with Fernet (AES-128-CBC + HMAC-SHA256,
`cryptography`):

- where: the `delivery_inputs` table of the index database, one row per document;
- how long: until every delivery of the document has ended (delivered, failed for good
  with no fallback left, suppressed, fell back; a `sent` e-mail after `sent_grace_days`,
  the window in which a bounce can still come), and never longer than `purge_after_days`
  (default 30) -- the dispatcher purges every minute;
- the key: `[delivery] keys = ["<Fernet key>", ...]` (the first encrypts, all decrypt, so
  keys rotate), else one made once in `state_dir/delivery-input.key` (0600). Servers and
  workers sharing one database need the same configured keys.
"""

from __future__ import annotations

import json
import os
import zlib
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

from cryptography.fernet import Fernet, InvalidToken, MultiFernet


def secret_file(path: Path, make: Callable[[], bytes]) -> bytes:
    """The secret kept in `path`, made once (0600, created exclusively: two processes
    starting together agree on one)."""
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        try:
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        except FileExistsError:
            pass
        else:
            with os.fdopen(fd, "wb") as out:
                out.write(make())
    return path.read_bytes().strip()


def load_keys(configured: Sequence[str], state_dir: Path) -> MultiFernet:
    if configured:
        return MultiFernet([Fernet(k.encode() if isinstance(k, str) else k) for k in configured])
    return MultiFernet([Fernet(secret_file(state_dir / "delivery-input.key",
                                           Fernet.generate_key))])


class SealedInputs:
    def __init__(self, keys: MultiFernet):
        self.keys = keys

    def seal(self, compose_input: Mapping[str, Any]) -> bytes:
        return self.keys.encrypt(zlib.compress(json.dumps(compose_input, sort_keys=True).encode()))

    def open(self, blob: bytes) -> dict[str, Any]:
        """-> the input; ValueError when no configured key opens it."""
        try:
            return json.loads(zlib.decompress(self.keys.decrypt(blob)))
        except InvalidToken as exc:
            raise ValueError("sealed compose input: no configured key opens it") from exc
