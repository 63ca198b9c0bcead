"""`--address` (and env KANAL_ADDRESS) with a host and no port means Kanal's own port, the one
`kanal serve` listens on by default, for every client command (QA 2026-12-02: `kanal layouts
--address kanal.internal` called port 443, gRPC's default for a bare host, and said "cannot
reach a Kanal server at kanal.internal"). IPv6 literals keep working, with or without a port."""

from __future__ import annotations

import argparse
from concurrent import futures

import grpc
import pytest

from kanal.v1 import layouts_pb2, layouts_pb2_grpc
from server.cli import build_parser, main
from server.client import target, with_port
from server.config import DEFAULT_PORT, Settings


def test_the_default_port_is_the_one_kanal_serve_listens_on():
    assert Settings().listen.rpartition(":")[2] == str(DEFAULT_PORT) == "50051"


@pytest.mark.parametrize(("given", "called"), [
    ("kanal.internal", "kanal.internal:50051"),
    ("kanal.internal:50151", "kanal.internal:50151"),
    ("10.0.0.7", "10.0.0.7:50051"),
    ("[::1]", "[::1]:50051"),
    ("[::1]:50151", "[::1]:50151"),
    ("::1", "[::1]:50051"),  # gRPC reads an IPv6 address without brackets as naming no port
    ("[fe80::1%eth0]", "[fe80::1%eth0]:50051"),
    ("dns:///kanal.internal", "dns:///kanal.internal:50051"),
    ("dns://10.0.0.2/kanal.internal:50151", "dns://10.0.0.2/kanal.internal:50151"),
    ("ipv4:10.0.0.7,10.0.0.8:50151", "ipv4:10.0.0.7:50051,10.0.0.8:50151"),
    ("ipv6:[::1],[::2]:50151", "ipv6:[::1]:50051,[::2]:50151"),
    ("unix:/run/kanal.sock", "unix:/run/kanal.sock"),
])
def test_a_host_without_a_port_gets_kanals_port(given, called):
    assert with_port(given) == called
    assert with_port(called) == called


def _address_parsers(parser: argparse.ArgumentParser, words: tuple[str, ...] = ("kanal",)):
    """Every (command words, --address action) in the `kanal` command tree."""
    for action in parser._actions:
        if "--address" in action.option_strings:
            yield words, action
        if isinstance(action, argparse._SubParsersAction):
            for name, sub in action.choices.items():
                yield from _address_parsers(sub, (*words, name))


def test_every_command_that_takes_address_reads_a_bare_host_as_kanals_port():
    found = list(_address_parsers(build_parser()))
    commands = {" ".join(words) for words, _ in found}
    assert {"kanal layouts", "kanal compose", "kanal document", "kanal submit", "kanal job",
            "kanal print list", "kanal portal list", "kanal deliveries list"} <= commands
    for words, action in found:
        where = " ".join(words)
        assert action.type("kanal.internal") == "kanal.internal:50051", where
        assert "a host without a port means port 50051" in " ".join(action.help.split()), where
        assert "[::1]" in action.help, where


@pytest.mark.parametrize("argv", [
    ["layouts"], ["compose", "card-invoice", "--data", "x.json"], ["document", "D1"],
    ["submit", "x.jsonl", "--layout", "card-invoice"], ["job", "J1"], ["print", "list"],
    ["portal", "list"], ["deliveries", "list"],
])
@pytest.mark.parametrize("via", ["option", "env"])
def test_the_address_called_has_kanals_port(argv, via, monkeypatch):
    monkeypatch.setenv("KANAL_API_KEY", "k")
    monkeypatch.setenv("KANAL_ADDRESS", "elsewhere.internal:7")
    if via == "option":
        argv = [*argv, "--address", "kanal.internal"]
    else:
        monkeypatch.setenv("KANAL_ADDRESS", "kanal.internal")
    assert target(build_parser().parse_args(argv), "producer").address == "kanal.internal:50051"


@pytest.mark.parametrize("address", ["kanal.internal:", "kanal.internal:0",
                                     "kanal.internal:65536", "kanal.internal:http", "[::1",
                                     "[::1]50051", ":50051"])
def test_an_address_gRPC_cannot_call_is_a_usage_error(address, monkeypatch, capsys):
    with pytest.raises(SystemExit) as info:
        main(["layouts", "--address", address, "--key", "k"])
    assert info.value.code == 2
    assert "argument --address: " in capsys.readouterr().err
    monkeypatch.setenv("KANAL_ADDRESS", address)
    assert main(["layouts", "--key", "k"]) == 2
    assert capsys.readouterr().err.startswith("kanal layouts: KANAL_ADDRESS: ")


class CountingLayouts(layouts_pb2_grpc.LayoutsServicer):
    def __init__(self):
        self.calls = 0

    def ListLayouts(self, request, context):
        self.calls += 1
        return layouts_pb2.ListLayoutsResponse()


@pytest.mark.parametrize(("listen", "given", "via"), [
    ("127.0.0.1", "127.0.0.1", "option"), ("[::1]", "[::1]", "option"),
    ("[::1]", "::1", "option"), ("127.0.0.1", "127.0.0.1", "env"), ("[::1]", "[::1]", "env")])
def test_kanal_layouts_reaches_a_server_on_the_default_port_by_its_host_alone(
        listen, given, via, monkeypatch, capsys):
    # a server on a free port standing for 50051 (which a running `kanal serve` may hold)
    servicer = CountingLayouts()
    server = grpc.server(futures.ThreadPoolExecutor(2))
    layouts_pb2_grpc.add_LayoutsServicer_to_server(servicer, server)
    port = server.add_insecure_port(f"{listen}:0")
    server.start()
    monkeypatch.setattr("server.client.DEFAULT_PORT", port)
    monkeypatch.delenv("KANAL_ADDRESS", raising=False)
    argv = ["layouts", "--key", "k", "--timeout", "20"]
    if via == "option":
        argv += ["--address", given]
    else:
        monkeypatch.setenv("KANAL_ADDRESS", given)
    try:
        code = main(argv)
    finally:
        server.stop(0)
    assert (code, capsys.readouterr().err, servicer.calls) == (0, "", 1)


def test_a_server_not_reached_is_named_by_the_address_called(capsys):
    # the port is part of what was called: "at 127.0.0.1:50051", not "at 127.0.0.1"
    import socket

    with socket.socket() as closed:
        closed.bind(("127.0.0.1", 0))
        port = closed.getsockname()[1]
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr("server.client.DEFAULT_PORT", port)
        assert main(["layouts", "--address", "127.0.0.1", "--key", "k"]) == 1
    assert capsys.readouterr().err.startswith(
        f"kanal layouts: cannot reach a Kanal server at 127.0.0.1:{port} (is `kanal serve`")
