"""What every `kanal` command that calls a running server shares: where the server is, which
API key to present, how an RPC error becomes one line, and how a response is printed.

- Address: `--address`, else env KANAL_ADDRESS, else 127.0.0.1:50051 (what `kanal serve`
  listens on by default). A host without a port means port 50051 too (`with_port`): gRPC's
  own default for a bare host is 443, where no Kanal listens.
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

from server.config import DEFAULT_PORT
from server.errors import quote

DEFAULT_ADDRESS = f"127.0.0.1:{DEFAULT_PORT}"
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
    parser.add_argument("--address", type=address_option, default=default,
                        metavar="HOST[:PORT]",
                        help=f"the server; a host without a port means port {DEFAULT_PORT}, "
                             f"Kanal's default (IPv6 in brackets: [::1] or "
                             f"[::1]:{DEFAULT_PORT}); default: env KANAL_ADDRESS (read the "
                             f"same way), else {DEFAULT_ADDRESS}")
    parser.add_argument("--key", default=default,
                        help="API key (default: env KANAL_API_KEY, else the development key "
                             "of this command's role in .kanal/dev-api-keys.json)")
    parser.add_argument("--timeout", type=seconds, default=default, metavar="SECONDS",
                        help=f"how long to wait for an answer (default {DEFAULT_TIMEOUT:.0f})")


def with_port(address: str) -> str:
    """`address` as gRPC is to call it, with Kanal's default port (server.config.DEFAULT_PORT,
    50051) when it names a host without one: "kanal.internal" -> "kanal.internal:50051",
    "[::1]" and "::1" -> "[::1]:50051"; "host:port" and "[::1]:port" stay as written. gRPC
    itself takes a bare host for port 443 (its https default), where no Kanal listens: was
    "cannot reach a Kanal server at kanal.internal" for a server on kanal.internal:50051.
    gRPC target URIs keep their form: `dns:[//authority/]host[:port]` and `ipv4:` / `ipv6:`
    lists get the port on each address the same way; `unix:`, `unix-abstract:` and `vsock:`
    are used as written. ValueError (saying why) for no host, an unclosed `[`, or a port that
    is not a number within 1..65535."""
    text = address.strip()
    scheme, colon, rest = text.partition(":")
    scheme = scheme.lower()
    if colon and scheme in ("unix", "unix-abstract", "vsock"):
        return text
    if colon and scheme in ("ipv4", "ipv6"):
        return f"{text[:len(scheme)]}:" + ",".join(_host_with_port(part)
                                                   for part in rest.split(","))
    if colon and scheme == "dns":
        if rest.startswith("//"):  # dns://authority/host[:port]: the DNS server to ask
            authority, _, host = rest[2:].partition("/")
            return f"{text[:3]}://{authority}/{_host_with_port(host)}"
        return f"{text[:3]}:{_host_with_port(rest)}"
    return _host_with_port(text)


def _host_with_port(text: str) -> str:
    """One "host", "host:port", "[v6]", "[v6]:port" or bare "v6" with the port it names, else
    DEFAULT_PORT (with_port)."""
    if text.startswith("["):
        close = text.find("]")
        if close < 0:
            raise ValueError(f"{quote(text)} opens an IPv6 address with [ but never closes it")
        host, after = text[:close + 1], text[close + 1:]
        if after and not after.startswith(":"):
            raise ValueError(f"{quote(text)} has {quote(after)} after its IPv6 address; "
                             f"write [address]:port")
        port = after[1:] if after else None
    elif text.count(":") > 1:  # an IPv6 address without brackets names no port (as gRPC reads it)
        host, port = f"[{text}]", None
    else:
        host, colon, port_text = text.partition(":")
        port = port_text if colon else None
    if host in ("", "[]"):
        raise ValueError(f"{quote(text)} names no host")
    if port is None:
        return f"{host}:{DEFAULT_PORT}"
    if not (port.isascii() and port.isdigit() and 1 <= int(port) <= 65535):
        raise ValueError(f"the port in {quote(text)} must be a number within 1..65535")
    return f"{host}:{port}"


def address_option(text: str) -> str:
    """An argparse `type` for --address: `with_port`, a usage error (exit 2) saying why."""
    try:
        return with_port(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def server_address(args: argparse.Namespace) -> str:
    """The address a command calls: --address, else env KANAL_ADDRESS, else DEFAULT_ADDRESS,
    each through `with_port`; ClientError (exit 2, configuration) for a KANAL_ADDRESS it
    cannot read."""
    given = getattr(args, "address", None)
    if given:
        return with_port(given)  # normalised already by address_option; idempotent
    from_env = os.environ.get("KANAL_ADDRESS")
    if not from_env:
        return DEFAULT_ADDRESS
    try:
        return with_port(from_env)
    except ValueError as exc:
        raise ClientError(f"KANAL_ADDRESS: {exc}", exit_code=2) from None


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
    try:
        called = server_address(argparse.Namespace())
    except ClientError:
        called = None
    if address != called:
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
    address = server_address(args)
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
