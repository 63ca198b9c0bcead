"""Shared pieces of the print production tests (test_print_batches, test_print_shop_api):
a real server (embedded SeaweedFS, SQLite index) with print rules for two tenants and two
print shops, its API keys, and the documents it prints.

To keep CI time sane, 30 distinct documents are rendered (three layouts, generated names,
addresses, countries and segments); 330 more queue entries reuse their archived PDFs under
fresh piece ids (the queue's own `enqueue`, as DocumentService calls it), so the batches
hold a few hundred pieces without rendering a few hundred PDFs.

The helpers are for a module's own fixtures (`yield from start_kanal(tmp_path_factory)`,
`compose_documents(kanal)`, `close_batches(kanal)`), so every test module has its own server
and batches.
"""

from __future__ import annotations

import json
import random
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
from sqlalchemy import select

from kanal.v1 import common_pb2, documents_pb2, documents_pb2_grpc, printshop_pb2_grpc
from kanal.v1 import printshop_pb2 as pb
from server.app import KanalServer
from server.config import Settings
from server.printing.queue import QueuedPiece, print_pieces
from tests.client import Keys, channel
from tests.integration.delivery_fixtures import queued_pieces

LAYOUTS = Path(__file__).resolve().parents[2] / "layouts"
KEYS = Keys(("nordkort", "producer"), ("nordkort", "admin"), ("nordkort", "printshop:demo-print"),
            ("nordkort", "printshop:acme-print"), ("fjord", "producer"),
            ("fjord", "printshop:acme-print"), ("fjord", "admin"))
PRINTING = {
    "batch_size": 400,
    "cutoff_minutes": 240,
    "tenants": {"fjord": {"printshop": "acme-print", "profile": "pb-di-negative"}},
    "inserts": {"terms-2027": {"feeder": 1, "feeders": {"pb-di-negative": 3}},
                "premium-leaflet": {"feeder": 2, "feeders": {"pb-di-negative": 4}, "grams": 8}},
    "rules": [
        {"tenant": "nordkort", "id": "terms-no-cards", "insert": "terms-2027",
         "when": {"country": "NO", "kind": "invoice"}},
        {"tenant": "nordkort", "id": "premium", "insert": "premium-leaflet",
         "when": {"segment": "premium"}},
        {"tenant": "fjord", "id": "terms-no-cards", "insert": "terms-2027",
         "when": {"country": "NO", "kind": "invoice"}},
        {"tenant": "nordkort", "id": "se-welcome", "when": {"layout": "welcome-letter",
                                                              "country": "SE"},
         "campaign": {"area": "main", "id": "autogiro", "title": "Betala med autogiro",
                      "body": "Slipp att komma ihåg förfallodagen."}},
    ],
}
FIRST = ["Kari", "Ola", "Ingrid", "Lars", "Åse", "Björn", "Sofia", "Mikko", "Aino", "Jens"]
LAST = ["Nordmann", "Berg", "Søreide", "Lindqvist", "Østby", "Virtanen", "Hansen", "Ek"]
PLACES = {"NO": [("0358", "OSLO"), ("5003", "BERGEN"), ("7013", "TRONDHEIM"), ("9008", "TROMSØ")],
          "SE": [("111 22", "STOCKHOLM"), ("411 03", "GÖTEBORG"), ("211 20", "MALMÖ")],
          "DK": [("1050", "KØBENHAVN K")], "FI": [("00100", "HELSINKI")]}


def start_kanal(tmp_path_factory: pytest.TempPathFactory) -> Iterator[KanalServer]:
    """A running server with `PRINTING` and every key of `KEYS`; stopped after."""
    state = tmp_path_factory.mktemp("kanal-print")
    layouts = state / "layouts"  # only the layouts this test composes
    layouts.mkdir()
    for name in ("_shared", "card-invoice", "payment-reminder", "welcome-letter"):
        (layouts / name).symlink_to(LAYOUTS / name)
    with KanalServer(Settings(listen="127.0.0.1:0", state_dir=state, api_keys=KEYS.api_keys,
                              layouts_dir=layouts, printing=PRINTING)) as server:
        yield server


def document_data(rng: random.Random, layout: str, n: int) -> tuple[str, str]:
    sample = "sample.json"
    country = rng.choice(["NO", "NO", "SE", "DK", "FI"])
    if country == "SE":
        sample = "sample-sv-SE.json"
    data = json.loads((LAYOUTS / layout / "1.0.0" / sample).read_text(encoding="utf-8"))
    postal_code, city = rng.choice(PLACES[country])
    customer = data["customer"]
    customer["customer_id"] = f"{30000000 + n}"
    customer["name"] = f"{rng.choice(FIRST)} {rng.choice(LAST)}"
    customer["address"] = {"lines": [f"Storgata {rng.randint(1, 120)}"],
                           "postal_code": postal_code, "city": city, "country": country}
    if layout == "card-invoice":
        data["card_account"]["segment"] = rng.choice(["private", "premium"])
    if layout == "welcome-letter":
        data.pop("campaign", None)
    return json.dumps(data, ensure_ascii=False), ("sv-SE" if country == "SE" else "nb-NO")


def compose_documents(kanal: KanalServer) -> list[tuple]:
    """24 documents for nordkort and 6 for fjord, composed over gRPC:
    [(tenant, layout, data, ComposeResponse)]."""
    rng = random.Random(4)
    out = []
    for tenant, count in (("nordkort", 24), ("fjord", 6)):
        with channel(kanal.address, KEYS[tenant, "producer"]) as ch:
            documents = documents_pb2_grpc.DocumentsStub(ch)
            for n in range(count):
                layout = ("card-invoice", "payment-reminder", "welcome-letter")[n % 3]
                data, locale = document_data(rng, layout, n)
                response = documents.Compose(documents_pb2.ComposeRequest(
                    tenant=tenant, layout_id=layout, data_json=data, locale=locale,
                    channels=[common_pb2.CHANNEL_PRINT],
                    idempotency_key=f"print-{tenant}-{n}"))
                out.append((tenant, layout, json.loads(data), response))
    queued_pieces(kanal.index.engine, [r.document_id for *_, r in out], len(out))
    return out


def close_batches(kanal: KanalServer) -> dict:
    """Multiply the queued pieces (of `compose_documents`) to a few hundred, then close
    everything on request: {batch_id: (BatchInfo, PDF bytes, manifest dict)}."""
    queue = kanal.print_queue
    with queue.engine.begin() as conn:
        rows = [dict(r) for r in conn.execute(select(print_pieces)).mappings()]
    now = datetime.now(UTC)
    nordkort = [r for r in rows if r["tenant"] == "nordkort"]
    rng = random.Random(7)
    for n in range(330):
        row = rng.choice(nordkort)
        country = rng.choice(list(PLACES))
        queue.enqueue(QueuedPiece(
            document_id=f"{row['document_id'][:20]}X{n:05d}", tenant="nordkort",
            archive_key=row["archive_key"], pdf_sha256=row["pdf_sha256"], pages=row["pages"],
            envelope="C5", inserts=tuple(i for i in row["inserts"].split(",") if i),
            country=country, postal_code=rng.choice(PLACES[country])[0],
        ), now)
    with channel(kanal.address, KEYS["nordkort", "admin"]) as ch:
        ids = printshop_pb2_grpc.PrintShopStub(ch).ClosePrintBatches(
            pb.ClosePrintBatchesRequest()).batch_ids
    with channel(kanal.address, KEYS["fjord", "admin"]) as ch:
        ids = [*ids, *printshop_pb2_grpc.PrintShopStub(ch).ClosePrintBatches(
            pb.ClosePrintBatchesRequest()).batch_ids]
    infos = {}
    for batch_id in ids:
        tenant = "fjord" if batch_id in _fjord_ids(kanal) else "nordkort"
        info = kanal.print_batches.get(tenant, None, batch_id)
        pdf = kanal.print_batches.read(info, "pdf")
        manifest = json.loads(kanal.print_batches.read(info, "manifest_json"))
        infos[batch_id] = (info, pdf, manifest)
    return infos


def _fjord_ids(kanal: KanalServer) -> set[str]:
    return {b.batch_id for b in kanal.print_batches.list("fjord", None)}
