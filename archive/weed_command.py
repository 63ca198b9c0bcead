"""What an embedded SeaweedFS is started with: a data directory, a host and a key pair ->
the `weed mini` command line, its free ports, its identity file and its environment, and
the sockets it leaves behind. `archive.embedded` runs and supervises the process.

- **Ports in pairs.** Every listener gets a free port (S3, master, filer, volume, admin), each
  with its gRPC port taken as http + 10000 (archive.weed_process), because parts of
  SeaweedFS derive the gRPC port by that offset whatever `-<component>.port.grpc` says.
  A requested S3 port must be free (EmbeddedS3Error naming it otherwise).
- **One identity.** `data_dir/s3-identities.json` (mode 0600) holds exactly the given key
  pair, passed as `-s3.config`: without it SeaweedFS accepts any credentials.
- **A scrubbed environment.** `weed mini` creates identities or buckets of its own from
  `AWS_ACCESS_KEY_ID` and friends (SCRUBBED_ENV), so the child never sees them; its
  `GOMAXPROCS` is set when given.
- **Everything else off.** WebDAV, the admin UI, the Iceberg catalog and the Lance server,
  the IAM API and telemetry; unix sockets for S3 and the filer under data_dir when the path
  fits in a socket address (108 bytes on Linux).
"""

from __future__ import annotations

import contextlib
import json
import os
from collections.abc import Mapping
from pathlib import Path

from archive.errors import EmbeddedS3Error
from archive.weed_process import PortReservation, port_is_free

__all__ = ["SCRUBBED_ENV", "child_env", "choose_ports", "mini_command",
           "remove_stale_sockets", "write_identities"]

# Linux limits a unix socket path (sun_path) to 108 bytes including the NUL.
_MAX_SOCKET_PATH = 100
# Environment variables `weed mini` reads to create identities or buckets on its own.
SCRUBBED_ENV = (
    "AWS_ACCESS_KEY_ID",
    "AWS_SECRET_ACCESS_KEY",
    "AWS_SESSION_TOKEN",
    "S3_BUCKET",
    "S3_TABLE_BUCKET",
    "S3_EXTERNAL_URL",
)
# `weed` puts each component's local gRPC socket at this fixed path (not configurable) and does
# not always remove it on exit; we remove the ones of our own ports before start and after stop.
_GRPC_SOCKET = "/tmp/seaweedfs-{component}-grpc-{port}.sock"


def choose_ports(host: str, requested_s3_port: int | None) -> dict[str, int]:
    """`{"s3.port": ..., "s3.port.grpc": ..., "master.port": ...}`: free loopback ports for
    every component, `requested_s3_port` as the S3 port when given (EmbeddedS3Error when it
    is taken)."""
    reservation = PortReservation()
    try:
        ports: dict[str, int] = {}
        if requested_s3_port is not None:
            if not port_is_free(requested_s3_port):
                raise EmbeddedS3Error(
                    f"S3 port {requested_s3_port} on {host} is already in use"
                )
            ports["s3.port"] = requested_s3_port
            ports["s3.port.grpc"] = reservation.any_port()
        else:
            ports["s3.port"], ports["s3.port.grpc"] = reservation.pair()
        for component in ("master", "filer", "volume", "admin"):
            http, grpc = reservation.pair()
            ports[f"{component}.port"] = http
            ports[f"{component}.port.grpc"] = grpc
        return ports
    finally:
        reservation.release()


def write_identities(data_dir: Path, access_key: str, secret_key: str) -> Path:
    """The `-s3.config` file (`data_dir/s3-identities.json`, mode 0600): one identity with
    this key pair, allowed everything on every bucket."""
    path = data_dir / "s3-identities.json"
    config = {
        "identities": [
            {
                "name": "kanal",
                "credentials": [{"accessKey": access_key, "secretKey": secret_key}],
                "actions": ["Admin", "Read", "Write", "List", "Tagging"],
            }
        ]
    }
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as fh:
        json.dump(config, fh)
    os.chmod(path, 0o600)
    return path


def mini_command(binary: Path, data_dir: Path, host: str, ports: Mapping[str, int],
                 identities: Path) -> list[str]:
    """The argument list that runs `weed mini` on `data_dir`, bound to `host` and `ports`
    (choose_ports), with `identities` (write_identities) and nothing else listening."""
    args = [
        str(binary),
        "-logtostderr=true",
        "mini",
        f"-dir={data_dir}",
        f"-ip={host}",
        f"-ip.bind={host}",
        *(f"-{name}={port}" for name, port in ports.items()),
        "-webdav=false",
        "-admin.ui=false",
        "-s3.port.iceberg=0",
        "-s3.port.lance=0",
        "-s3.iam=false",
        "-master.telemetry=false",
        "-volume.preStopSeconds=0",
        f"-s3.config={identities}",
    ]
    for flag, name in (("s3.localSocket", "s3.sock"), ("filer.localSocket", "filer.sock")):
        path = data_dir / name
        if len(str(path)) < _MAX_SOCKET_PATH:
            args.append(f"-{flag}={path}")
    return args


def child_env(go_max_procs: int | None) -> dict[str, str]:
    """This process's environment without SCRUBBED_ENV, with `GOMAXPROCS` when given."""
    env = {k: v for k, v in os.environ.items() if k not in SCRUBBED_ENV}
    if go_max_procs is not None:
        env["GOMAXPROCS"] = str(go_max_procs)
    return env


def remove_stale_sockets(ports: Mapping[str, int]) -> None:
    """Delete leftover gRPC unix sockets of these ports (no live server owns them: the TCP
    ports were free at start, and the process is gone at stop)."""
    for component in ("master", "volume", "filer", "s3", "admin"):
        port = ports.get(f"{component}.port.grpc")
        if port is None:
            continue
        path = Path(_GRPC_SOCKET.format(component=component, port=port))
        with contextlib.suppress(OSError):
            if path.is_socket():
                path.unlink()
