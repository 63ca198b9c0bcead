"""What every `kanal` command that calls a running server shares: where the server is, which
API key to present, how an RPC error becomes one line, and how a response is printed.

- Address: `--address`, else env KANAL_ADDRESS, else 127.0.0.1:50051 (what `kanal serve`
  listens on by default).
- Key: `--key`, else env KANAL_API_KEY, else -- for the development setup only -- the key of
  the command's role from `.kanal/dev-api-keys.json` (the state dir of `kanal serve` run
  from the same folder; env KANAL_STATE_DIR moves it), which a server with no configured
  keys writes on its first start.
- Errors: `ClientError` (and any `grpc.RpcError`, see `describe`) is one line on stderr and
  exit code 1; `server.cli.main` prints it.
- Responses are printed with protobuf's JSON mapping (`print_message`), so a field added to
  the proto later shows up without a change here; strings such as amounts in `facts` stay
  exactly as the server sent them.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import re
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from server.errors import quote

DEFAULT_ADDRESS = "127.0.0.1:50051"
DEFAULT_TIMEOUT = 120.0
DEV_KEYS_FILE = "dev-api-keys.json"


class ClientError(Exception):
    """A client-side failure, said in one line (printed as `kanal <command>: <message>`)."""

    def __init__(self, message: str, exit_code: int = 1):
        super().__init__(message)
        self.exit_code = exit_code


def add_connection_options(parser: argparse.ArgumentParser, *, nested: bool = False) -> None:
    """--address, --key, --timeout. `nested`: for a sub-command whose group parser has them
    too, so they may stand before or after the sub-command name."""
    default: Any = argparse.SUPPRESS if nested else None
    parser.add_argument("--address", default=default, metavar="HOST:PORT",
                        help=f"the server (default: env KANAL_ADDRESS, else {DEFAULT_ADDRESS})")
    parser.add_argument("--key", default=default,
                        help="API key (default: env KANAL_API_KEY, else the development key "
                             "of this command's role in .kanal/dev-api-keys.json)")
    parser.add_argument("--timeout", type=seconds, default=default, metavar="SECONDS",
                        help=f"how long to wait for an answer (default {DEFAULT_TIMEOUT:.0f})")


def seconds(text: str) -> float:
    """An argparse `type` for --timeout: a finite number of seconds above 0. Was a float
    taken as given: `0` quietly meant the default, `-5`, `inf` and `nan` failed every call
    as "no answer ... in time"."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{quote(text)} is not a number of seconds") from None
    if not (math.isfinite(value) and value > 0):
        raise argparse.ArgumentTypeError(f"must be a number of seconds above 0, not {text}")
    return value


def whole_number(low: int, high: int, why: str = "") -> Callable[[str], int]:
    """An argparse `type` for an option taking a whole number within `low..high` (both
    included); anything else is a usage error (exit 2) naming the option, the range, `why`
    (e.g. the proto field's type) and the value given."""
    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{quote(text)} is not a whole number") from None
        if not low <= value <= high:
            raise argparse.ArgumentTypeError(
                f"must be within {low}..{high}{f' ({why})' if why else ''}, not {value}")
        return value

    return parse


def state_dir() -> Path:
    return Path(os.environ.get("KANAL_STATE_DIR") or ".kanal")


def first_command(keys_dir: Path, address: str) -> str:
    """The `kanal layouts` command that reaches a development server listening on `address`
    with its keys in `keys_dir`, run from the current folder with the current environment:
    `KANAL_STATE_DIR=<keys_dir>` in front when the client would look elsewhere for the keys,
    `--address` when it would call another address ("kanal serve --state-dir /tmp/k
    --listen 127.0.0.1:50151" said "try: kanal layouts", which found no key)."""
    command = "kanal layouts"
    if Path(keys_dir).resolve() != state_dir().resolve():
        command = f"KANAL_STATE_DIR={keys_dir} {command}"
    if address != (os.environ.get("KANAL_ADDRESS") or DEFAULT_ADDRESS):
        command += f" --address {address}"
    return command


def development_key(role: str) -> str | None:
    """The development key of `role`, if a development server made one in the state dir."""
    try:
        keys = json.loads((state_dir() / DEV_KEYS_FILE).read_text())
    except (OSError, ValueError):
        return None
    key = keys.get(role) if isinstance(keys, dict) else None
    return key if isinstance(key, str) else None


@dataclass(frozen=True)
class Target:
    address: str
    key: str
    timeout: float

    @property
    def metadata(self) -> tuple[tuple[str, str], ...]:
        return (("authorization", f"Bearer {self.key}"),)


def target(args: argparse.Namespace, role: str) -> Target:
    """Where to call and with which key; ClientError when there is no key to be had."""
    address = (getattr(args, "address", None) or os.environ.get("KANAL_ADDRESS")
               or DEFAULT_ADDRESS)
    key = (getattr(args, "key", None) or os.environ.get("KANAL_API_KEY")
           or development_key(role))
    if not key:
        raise ClientError(f"no API key: pass --key or set KANAL_API_KEY (a development server "
                          f"keeps its keys in {state_dir() / DEV_KEYS_FILE})",
                          exit_code=2)  # configuration, as the README's exit codes say
    return Target(address, key, getattr(args, "timeout", None) or DEFAULT_TIMEOUT)


@contextmanager
def connect(args: argparse.Namespace, role: str) -> Iterator[tuple[Any, Target]]:
    """An insecure channel to the server (loopback or a TLS-terminating proxy in front)."""
    import grpc

    where = target(args, role)
    with grpc.insecure_channel(where.address) as channel:
        yield channel, where


# gRPC's words for an address whose host name is not found (c-ares and the native resolver,
# old and new): "errors resolving nonsense: ...", "DNS resolution failed for nonsense: ..."
UNRESOLVED = re.compile(r"errors resolving|DNS resolution failed|name resolution failed",
                        re.IGNORECASE)


def describe(exc: Any, address: str) -> str:
    """A grpc.RpcError in one line: the status, the server's words, every field at fault."""
    import grpc

    from server.api.errors import field_violations

    code = exc.code() if callable(getattr(exc, "code", None)) else None
    details = " ".join(str(exc.details() if callable(getattr(exc, "details", None)) else exc)
                       .split())
    if code == grpc.StatusCode.UNAVAILABLE and ("failed to connect" in details.lower()
                                                or "connection refused" in details.lower()):
        return f"cannot reach a Kanal server at {address} (is `kanal serve` running?)"
    if code == grpc.StatusCode.UNAVAILABLE and UNRESOLVED.search(details):
        # was the raw "UNAVAILABLE: errors resolving nonsense: [field:hostname lookup
        # error:address lookup failed for nonsense: Domain name not found]"
        reason = details.rstrip("]").rsplit(": ", 1)[-1]
        return (f"cannot reach a Kanal server at {address}: its host name does not resolve "
                f"({reason}); check --address or KANAL_ADDRESS")
    if code == grpc.StatusCode.DEADLINE_EXCEEDED:
        return f"no answer from {address} in time (--timeout)"
    name = code.name if code is not None else "ERROR"
    violations = field_violations(exc) if code == grpc.StatusCode.INVALID_ARGUMENT else []
    if violations:
        return f"{name}: " + "; ".join(f"{field}: {why}" for field, why in violations)
    if code == grpc.StatusCode.UNAUTHENTICATED and "API key" in details:
        return f"{name}: {details} (check --key or KANAL_API_KEY)"
    return f"{name}: {details}"


def print_message(message: Any) -> None:
    """A response as JSON (protobuf's JSON mapping, field names as in the .proto; fields at
    their default -- 0, "", false, empty -- are left out, as that mapping does)."""
    from google.protobuf import json_format

    print(json_format.MessageToJson(message, preserving_proto_field_name=True,
                                    ensure_ascii=False, indent=2))


def read_text(path: Path, what: str = "data file") -> str:
    """A UTF-8 file's text, or ClientError naming the file and why. A byte-order mark at the
    start (files exported on Windows often have one) is dropped: the server takes JSON text
    without one (RFC 8259 section 8.1), and the caller meant the file's content."""
    try:
        return path.read_bytes().decode("utf-8-sig")  # drops a BOM at the start only
    except OSError as exc:
        raise ClientError(f"cannot read {what} {path}: {exc.strerror or exc}") from None
    except UnicodeDecodeError as exc:
        raise ClientError(f"{what} {path} is not UTF-8 (byte {exc.start})") from None
