"""The credentials a server makes for itself in its state dir when none are configured: the
embedded S3's access key pair, and development API keys (one per role, tenant `demo`).

Each is made on first start, written once (0600, never overwritten) and read back on every
later start, so `kanal archive ...` and the tests reach the same embedded store and the same
keys as the server. Separate from `server.app` because the commands beside the server
(`kanal archive`) need these files without starting, or importing, a server.
"""

from __future__ import annotations

import json
import os
import secrets
from pathlib import Path

from server import auth, logs
from server.config import Settings

log = logs.get_logger("kanal")

DEV_ROLES = ("producer", "service", "portal", "admin", "printshop:demo-print")


def embedded_credentials(state_dir: Path) -> tuple[str, str]:
    """The embedded S3's access key pair, made once per state dir and kept private."""
    path = state_dir / "s3-credentials.json"
    if path.exists():
        stored = json.loads(path.read_text())
        return stored["access_key"], stored["secret_key"]
    access_key, secret_key = "kanal" + secrets.token_hex(6), secrets.token_urlsafe(30)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as out:
        json.dump({"access_key": access_key, "secret_key": secret_key}, out)
    return access_key, secret_key


def development_keys(state_dir: Path, tenant: str = "demo") -> dict[str, str]:
    """One key per role for tenant `demo`, made on first start of a server that has no
    keys configured, kept (0600) in state_dir/dev-api-keys.json. For development only."""
    path = state_dir / "dev-api-keys.json"
    if path.exists():
        return json.loads(path.read_text())
    keys = {role: auth.new_key() for role in DEV_ROLES}
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as out:
        json.dump(keys, out, indent=2)
    return keys


def api_keys(settings: Settings) -> tuple[auth.ApiKey, ...]:
    """The configured API keys, else the development keys (with a warning)."""
    if settings.api_keys:
        return settings.api_keys
    keys = development_keys(settings.state_dir)
    log.warning("no API keys configured: using the development keys of tenant 'demo'",
                keys_file=str(settings.state_dir / "dev-api-keys.json"))
    return tuple(
        auth.ApiKey(id=f"dev-{role}", sha256=auth.hash_key(secret), tenant="demo", role=role)
        for role, secret in keys.items()
    )
