"""Finvoice e-invoices to a Finvoice operator: the routing (a Finnish consumer with an
e-invoice address goes to the tenant's Finvoice provider; without one, or without a
provider, the Finvoice stays archived only), the Finvoice Transmission Frame as the
stand-in operator reads it, and the operator's answers mapped to delivery results."""

from __future__ import annotations

import json
from datetime import UTC, datetime

import pytest

from server.channels.einvoice import render_finvoice
from server.compose.composer import ComposeRequest, compose
from server.delivery.model import Accepted, Failed, Retry
from server.delivery.providers import http
from server.delivery.providers.finvoice import answer_result
from server.delivery.providers.finvoice_frame import (
    Routing,
    message,
    message_identifier,
    ovt_code,
    parse_finvoice,
)
from server.delivery.routing import Router
from server.delivery.stage import DeliverySettings
from tests.layouts import shipped
from tests.standins import finvoice_operator as op

LAYOUTS = shipped()
FINVOICE = "finvoice-3.0"
ADDRESS = {"address": "FI4950009420028730", "intermediator": "OKOYFIHH"}
PROVIDERS = {"ap": {"type": "peppol-ap"}, "op": {"type": "finvoice", "url": "http://x"}}


def finnish(finvoice=None, version=None):
    layout = LAYOUTS.get("card-invoice", version)
    data = json.loads((layout.path / "samples" / "fi-FI.json").read_text())
    if finvoice is not None:
        data["customer"]["finvoice"] = finvoice
    return compose(ComposeRequest(tenant="fjordbank-fi", layout=layout, data=json.dumps(data),
                                  document_id="01M8N1XH1T0X6MVPG205JXFR00",
                                  now=datetime(2026, 3, 2, 9, tzinfo=UTC))), layout


def test_a_finnish_consumer_with_an_einvoice_address_goes_to_the_finvoice_provider():
    consumer, layout = finnish(ADDRESS)
    assert layout.version == "2.2.0"
    route = Router({"einvoice": "op"}, {}, PROVIDERS).route(
        consumer, "einvoice", {"syntax": FINVOICE})
    assert (route.provider, route.address, route.archived_only) == (
        "op", "FI4950009420028730@OKOYFIHH", False)
    # per syntax: Peppol to the access point, Finvoice to the operator
    both = Router({}, {"fjordbank-fi": {"channels": {"einvoice": {
        "peppol-bis-3-ubl": "ap", FINVOICE: "op"}}}}, PROVIDERS)
    assert both.route(consumer, "einvoice", {"syntax": FINVOICE}).provider == "op"
    # and an operator's retry of a row that had no provider finds the syntax's
    assert both.provider_for("fjordbank-fi", "einvoice", route.address, FINVOICE) == "op"
    assert both.provider_for("fjordbank-fi", "einvoice", "0192:1", "peppol-bis-3-ubl") == "ap"


def test_without_a_finvoice_provider_or_address_a_finvoice_stays_archived_only():
    consumer, _ = finnish(ADDRESS)
    for router in (Router({}, {}, PROVIDERS), Router({"einvoice": "ap"}, {}, PROVIDERS),
                   Router({"einvoice": {"peppol-bis-3-ubl": "ap"}}, {}, PROVIDERS)):
        route = router.route(consumer, "einvoice", {"syntax": FINVOICE})
        assert route.archived_only and route.provider is None, route
        assert f"{FINVOICE} e-invoice archived, not sent" in route.reason
    nowhere, _ = finnish()  # no customer.finvoice
    route = Router({"einvoice": "op"}, {}, PROVIDERS).route(
        nowhere, "einvoice", {"syntax": FINVOICE})
    assert route.archived_only and "customer.finvoice" in route.reason
    with pytest.raises(Exception, match=r"\$\.customer"):  # 2.1.0's schema has no such field
        finnish(ADDRESS, version="2.1.0")


def test_the_einvoice_table_names_syntaxes_only():
    with pytest.raises(ValueError, match="e-invoice syntaxes"):
        DeliverySettings.from_dict({"providers": PROVIDERS,
                                    "channels": {"einvoice": {"finvoice": "op"}}})
    with pytest.raises(ValueError, match="no provider 'nope'"):
        DeliverySettings.from_dict({"providers": PROVIDERS,
                                    "channels": {"einvoice": {FINVOICE: "nope"}}})


def test_the_frame_and_finvoice_are_what_the_operator_reads():
    consumer, _ = finnish(ADDRESS)
    archived = render_finvoice(consumer.invoice)
    routing = Routing("003728470514", "NDEAFIHH", "FI4950009420028730", "OKOYFIHH",
                      message_identifier("01M8N1XH1T0X6MVPG205JXFR00"),
                      datetime(2026, 3, 2, 9, tzinfo=UTC), "2026025201883")
    got = op.read(message(parse_finvoice(archived), routing))
    assert (got.sender, got.sender_intermediator, got.receiver, got.receiver_intermediator,
            got.message_id) == ("003728470514", "NDEAFIHH", "FI4950009420028730",
                                "OKOYFIHH", "01M8N1XH1T0X6MVPG205JXFR00")
    assert got.finvoice.replace(b"\n", b"").count(b"<MessageTransmissionDetails>") == 1
    assert b"MessageTransmissionDetails" not in archived  # the archived copy is unchanged
    assert ovt_code("2847051-4") == "003728470514" and ovt_code("ab") == ""
    assert len(message_identifier("x" * 60)) <= 48


def test_the_operators_answers_map_to_delivery_results():
    ok = answer_result(http.Response(200, b"<ack/>"), "m1")
    assert isinstance(ok, Accepted) and not ok.delivered and ok.provider_message_id == "m1"
    again = answer_result(http.Response(409, b"duplicate"), "m1")
    assert isinstance(again, Accepted)
    _, _, body = op.fault("Client", "Receiver not found: FI49 at OKOYFIHH", 500)
    rejected = answer_result(http.Response(500, body), "m1")
    assert isinstance(rejected, Failed) and "Receiver not found: FI49 at OKOYFIHH" in \
        rejected.reason
    _, _, body = op.fault("Server", "Service temporarily unavailable", 503)
    assert isinstance(answer_result(http.Response(503, body), "m1"), Retry)
    assert isinstance(answer_result(http.Response(401, b""), "m1"), Retry)
    assert isinstance(answer_result(http.Response(502, b"bad gateway"), "m1"), Retry)
    assert isinstance(answer_result(http.Response(400, b"no"), "m1"), Failed)
