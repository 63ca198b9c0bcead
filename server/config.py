"""Settings: defaults, then a TOML file, then `KANAL_*` environment variables, then flags.

    [server]
    listen = "127.0.0.1:50051"
    state_dir = ".kanal"            # embedded S3 data, SQLite index, generated credentials,
                                    # the processes' temporary files (server.tempdirs)
    layouts_dir = "layouts"
    max_data_bytes = 4194304        # largest `data_json` accepted
    render_workers = 2              # real-time render processes (default: one per core)
    log_format = "console"          # or "json"
    metrics_listen = "127.0.0.1:9464"  # Prometheus /metrics; "off" to disable (server.metrics)
    reflection = true               # gRPC server reflection; default: on without [auth] keys

    [s3]                            # leave endpoint out to run the embedded SeaweedFS
    endpoint = "https://s3.example.internal"
    bucket = "kanal-archive"
    access_key = "..."
    secret_key = "..."
    region = "us-east-1"

    [index]
    url = "postgresql+psycopg://kanal@db/kanal"   # default: SQLite in state_dir

    [retention]                     # see archive.retention.RetentionPolicy
    ...

    [limits]                        # admission control, see server/api/admission.py
    render_queue = 8                # Compose calls waiting beyond those rendering
    streams_per_key = 4
    stream_idle_seconds = 60

    [surveys]                       # NPS surveys and A/B tests, see server.surveys.settings
    listen = "127.0.0.1:8480"       # the response page the survey links land on

    [[auth.keys]]                   # see server.auth; none configured: a development key
    id = "nordkort-core"            # is made in state_dir on first start
    sha256 = "..."
    tenant = "nordkort"
    role = "producer"

Environment: KANAL_LISTEN, KANAL_STATE_DIR, KANAL_LAYOUTS_DIR, KANAL_LOG_FORMAT,
KANAL_RENDER_WORKERS, KANAL_METRICS_LISTEN, KANAL_REFLECTION (true|false),
KANAL_S3_ENDPOINT, KANAL_S3_BUCKET, KANAL_S3_ACCESS_KEY, KANAL_S3_SECRET_KEY,
KANAL_S3_REGION, KANAL_INDEX_URL.
"""

from __future__ import annotations

import os
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from server.auth import ApiKey, AuthConfigError, parse_keys
from server.compose.layouts import DEFAULT_LAYOUTS_DIR

# The gRPC port `kanal serve` listens on by default, and the one a client command calls when
# its --address (or KANAL_ADDRESS) names a host without one (server.client.with_port).
DEFAULT_PORT = 50051


class ConfigError(Exception):
    """The configuration cannot work; the message says which setting and why."""


@dataclass(frozen=True)
class S3Settings:
    endpoint: str | None = None  # None: start the embedded SeaweedFS
    bucket: str = "kanal-archive"
    access_key: str | None = None
    secret_key: str | None = None
    region: str = "us-east-1"

    @property
    def embedded(self) -> bool:
        return not self.endpoint


@dataclass(frozen=True)
class Settings:
    listen: str = f"127.0.0.1:{DEFAULT_PORT}"
    state_dir: Path = Path(".kanal")
    layouts_dir: Path = DEFAULT_LAYOUTS_DIR
    max_data_bytes: int = 4 * 1024 * 1024
    # Real-time rendering processes; None: one per core, 0: render in the server process.
    render_workers: int | None = None
    log_format: str = "console"
    # Prometheus endpoint; None: 127.0.0.1:9464, or a free port when that one is taken.
    metrics_listen: str | None = None
    # gRPC server reflection; None: on for the development setup (no API keys configured),
    # off in a production configuration (keys configured): it lists the API to anyone.
    reflection: bool | None = None
    s3: S3Settings = S3Settings()
    index_url: str | None = None  # None: SQLite file in state_dir
    retention: Mapping[str, Any] = field(default_factory=dict)
    api_keys: tuple[ApiKey, ...] = ()  # none: `kanal serve` makes a development key
    printing: Mapping[str, Any] = field(default_factory=dict)  # server.printing.queue
    plan: Mapping[str, Any] = field(default_factory=dict)  # [plan.<tenant>.<layout>] rules
    portal: Mapping[str, Any] = field(default_factory=dict)  # [portal] see server.portal
    delivery: Mapping[str, Any] = field(default_factory=dict)  # [delivery] server.delivery.stage
    limits: Mapping[str, Any] = field(default_factory=dict)  # [limits] server/api/admission.py
    surveys: Mapping[str, Any] = field(default_factory=dict)  # [surveys] server.surveys.settings
    jobs: Mapping[str, Any] = field(default_factory=dict)  # [jobs] stall_seconds (app.py)
    events: Mapping[str, Any] = field(default_factory=dict)  # [events] server.events
    journeys: Mapping[str, Any] = field(default_factory=dict)  # [journeys] server.journeys.stage

    @property
    def reflection_enabled(self) -> bool:
        return not self.api_keys if self.reflection is None else self.reflection

    @property
    def resolved_index_url(self) -> str:
        return self.index_url or f"sqlite:///{(self.state_dir / 'index.db').resolve()}"


_ENV = {
    "KANAL_LISTEN": ("listen", str),
    "KANAL_STATE_DIR": ("state_dir", Path),
    "KANAL_LAYOUTS_DIR": ("layouts_dir", Path),
    "KANAL_LOG_FORMAT": ("log_format", str),
    "KANAL_INDEX_URL": ("index_url", str),
    "KANAL_RENDER_WORKERS": ("render_workers", int),
    "KANAL_METRICS_LISTEN": ("metrics_listen", str),
    "KANAL_REFLECTION": ("reflection", lambda v: _flag("KANAL_REFLECTION", v)),
}
_ENV_S3 = {
    "KANAL_S3_ENDPOINT": "endpoint",
    "KANAL_S3_BUCKET": "bucket",
    "KANAL_S3_ACCESS_KEY": "access_key",
    "KANAL_S3_SECRET_KEY": "secret_key",
    "KANAL_S3_REGION": "region",
}


def load_settings(
    config_file: Path | None = None,
    environ: Mapping[str, str] = os.environ,
    **overrides: Any,
) -> Settings:
    """Merge the sources in order; `overrides` (command-line flags) win when not None."""
    settings = Settings()
    if config_file is not None:
        try:
            doc = tomllib.loads(config_file.read_text(encoding="utf-8"))
        except (OSError, tomllib.TOMLDecodeError) as exc:
            raise ConfigError(f"cannot read config file {config_file}: {exc}") from exc
        server = doc.get("server", {})
        for key in ("listen", "log_format", "metrics_listen"):
            if key in server:
                settings = replace(settings, **{key: str(server[key])})
        for key in ("state_dir", "layouts_dir"):
            if key in server:
                settings = replace(settings, **{key: Path(server[key])})
        for key in ("max_data_bytes", "render_workers"):
            if key in server:
                settings = replace(settings, **{key: int(server[key])})
        if "reflection" in server:
            settings = replace(settings, reflection=_flag("server.reflection",
                                                          server["reflection"]))
        s3 = {k: v for k, v in doc.get("s3", {}).items() if k in S3Settings.__dataclass_fields__}
        settings = replace(settings, s3=replace(settings.s3, **s3),
                           index_url=doc.get("index", {}).get("url", settings.index_url),
                           retention=doc.get("retention", {}),
                           printing=doc.get("printing", {}), plan=doc.get("plan", {}))
        settings = replace(settings, portal=doc.get("portal", {}))
        settings = replace(settings, delivery=doc.get("delivery", {}))
        settings = replace(settings, limits=doc.get("limits", {}))
        settings = replace(settings, surveys=doc.get("surveys", {}), jobs=doc.get("jobs", {}))
        settings = replace(settings, events=doc.get("events", {}),
                           journeys=doc.get("journeys", {}))
        try:
            settings = replace(settings, api_keys=parse_keys(doc.get("auth", {}).get("keys", [])))
        except AuthConfigError as exc:
            raise ConfigError(str(exc)) from exc
    for var, (name, kind) in _ENV.items():
        if environ.get(var):
            settings = replace(settings, **{name: kind(environ[var])})
    s3_env = {name: environ[var] for var, name in _ENV_S3.items() if environ.get(var)}
    if s3_env:
        settings = replace(settings, s3=replace(settings.s3, **s3_env))
    settings = replace(settings, **{k: v for k, v in overrides.items() if v is not None})
    _check(settings)
    return settings


def _flag(name: str, value: object) -> bool:
    if isinstance(value, bool):
        return value
    text = str(value).strip().lower()
    if text in ("1", "true", "yes", "on"):
        return True
    if text in ("0", "false", "no", "off"):
        return False
    raise ConfigError(f"{name} must be true or false, not {value!r}")


def _check(settings: Settings) -> None:
    host, _, port = settings.listen.rpartition(":")
    if not host or not port.isdigit():
        raise ConfigError(f"listen address {settings.listen!r} is not HOST:PORT")
    if settings.metrics_listen not in (None, "", "off"):
        host, _, port = settings.metrics_listen.rpartition(":")
        if not host or not port.isdigit():
            raise ConfigError(
                f"metrics_listen {settings.metrics_listen!r} is not HOST:PORT (or 'off')")
    if settings.log_format not in ("console", "json"):
        raise ConfigError(f"log_format must be 'console' or 'json', not {settings.log_format!r}")
    if not settings.s3.embedded and not (settings.s3.access_key and settings.s3.secret_key):
        raise ConfigError("an external S3 endpoint needs s3.access_key and s3.secret_key")
