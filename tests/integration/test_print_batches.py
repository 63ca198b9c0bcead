"""Print production end to end: documents composed over gRPC are queued for their print
shop, closed into sorted, marked batches with DPart metadata and manifests, and pulled and
acknowledged through the PrintShop API of a real server (embedded SeaweedFS, SQLite index).

To keep CI time sane, 30 distinct documents are rendered (three layouts, generated names,
addresses, countries and segments); 330 more queue entries reuse their archived PDFs under
fresh piece ids (the queue's own `enqueue`, as DocumentService calls it), so the batches
hold a few hundred pieces without rendering a few hundred PDFs.
"""

from __future__ import annotations

import csv
import hashlib
import io
import json
import random
from datetime import UTC, datetime, timedelta
from pathlib import Path

import grpc
import pikepdf
import pytest
from sqlalchemy import select

from kanal.v1 import common_pb2, documents_pb2, documents_pb2_grpc, printshop_pb2_grpc
from kanal.v1 import printshop_pb2 as pb
from server.app import KanalServer
from server.config import Settings
from server.printing.batch_pdf import read_document_parts
from server.printing.profiles import builtin_profiles
from server.printing.queue import QueuedPiece, print_pieces
from tests import omr_reader
from tests.client import Keys, channel
from tests.pdf_inspect import find_text

pytestmark = pytest.mark.integration

LAYOUTS = Path(__file__).resolve().parents[2] / "layouts"
PROFILES = builtin_profiles()
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


@pytest.fixture(scope="module")
def kanal(tmp_path_factory: pytest.TempPathFactory):
    state = tmp_path_factory.mktemp("kanal-print")
    layouts = state / "layouts"  # only the layouts this test composes
    layouts.mkdir()
    for name in ("_shared", "card-invoice", "payment-reminder", "welcome-letter"):
        (layouts / name).symlink_to(LAYOUTS / name)
    with KanalServer(Settings(listen="127.0.0.1:0", state_dir=state, api_keys=KEYS.api_keys,
                              layouts_dir=layouts, printing=PRINTING)) as server:
        yield server


def printshop(kanal: KanalServer, tenant: str, role: str):
    return channel(kanal.address, KEYS[tenant, role])


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


@pytest.fixture(scope="module")
def composed(kanal: KanalServer):
    """24 documents for nordkort and 6 for fjord, composed over gRPC."""
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
    return out


@pytest.fixture(scope="module")
def batches(kanal: KanalServer, composed):
    """Multiply the queued pieces to a few hundred, then close everything on request."""
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


# --- rules, queue -------------------------------------------------------------------------------


def test_every_printed_document_is_queued_with_its_rules_inserts(kanal, composed):
    with kanal.print_queue.engine.begin() as conn:
        rows = {r["document_id"]: dict(r) for r in conn.execute(select(print_pieces)).mappings()}
    for tenant, layout, data, response in composed:
        row = rows[response.document_id]
        country = data["customer"]["address"]["country"]
        assert (row["printshop"], row["profile"]) == (
            ("acme-print", "pb-di-negative") if tenant == "fjord" else ("demo-print", "default"))
        assert row["country"] == country
        assert row["postal_code"] == data["customer"]["address"]["postal_code"]
        expected = set()
        if layout == "card-invoice" and country == "NO":
            expected.add("terms-2027")
        if (tenant == "nordkort" and layout == "card-invoice"
                and data["card_account"]["segment"] == "premium"):
            expected.add("premium-leaflet")
        assert set(filter(None, row["inserts"].split(","))) == expected, (layout, country)


def test_campaign_rule_fills_the_welcome_letter(kanal, composed):
    swedish = [r for t, layout, d, r in composed if t == "nordkort" and layout == "welcome-letter"
               and d["customer"]["address"]["country"] == "SE"]
    others = [r for t, layout, d, r in composed if t == "nordkort" and layout == "welcome-letter"
              and d["customer"]["address"]["country"] != "SE"]
    assert swedish and others
    pdf = kanal.store.get(swedish[0].outputs[0].archive_key)
    assert find_text(pdf, "Betala med autogiro")
    assert not find_text(kanal.store.get(others[0].outputs[0].archive_key), "autogiro")


# --- batches -----------------------------------------------------------------------------------


def test_batches_group_sort_and_count(batches):
    assert sum(m["counts"]["pieces"] for _, _, m in batches.values()) == 330 + 30
    assert max(m["counts"]["pieces"] for _, _, m in batches.values()) >= 200
    for info, pdf, manifest in batches.values():
        pieces = manifest["pieces"]
        assert manifest["pdf_sha256"] == hashlib.sha256(pdf).hexdigest()
        assert manifest["counts"]["pages"] == len(omr_reader.pdfium.PdfDocument(pdf)) == sum(
            p["pages"] for p in pieces)
        assert manifest["counts"]["sheets"] == sum(p["sheets"] for p in pieces)
        assert manifest["counts"]["pieces"] == len(pieces) == info.pieces
        for insert in manifest["counts"]["inserts"]:
            assert manifest["counts"]["inserts"][insert] == sum(
                insert in p["inserts"] for p in pieces)
        # one insert set and envelope per batch
        assert {tuple(p["inserts"]) for p in pieces} == {info.inserts}
        keys = [(p["country"], p["postal_code"].replace(" ", ""), p["piece_id"]) for p in pieces]
        assert keys == sorted(keys)
        # contiguous pages, in order
        page = 1
        for p in pieces:
            assert p["first_page"] == page
            page += p["pages"]


def test_dpart_tree_has_one_node_per_piece_with_its_page_range(batches):
    for _, pdf, manifest in batches.values():
        parts = read_document_parts(pdf)
        assert len(parts) == len(manifest["pieces"])
        for part, piece in zip(parts, manifest["pieces"], strict=True):
            assert part["piece_id"] == piece["piece_id"]
            assert part["document_id"] == piece["document_id"]
            assert (part["start"], part["end"]) == (
                piece["first_page"], piece["first_page"] + piece["pages"] - 1)
            assert part["sheets"] == piece["sheets"]
            assert part["inserts"] == piece["inserts"]
            assert part["postal_code"] == piece["postal_code"]


def _intent(holder) -> tuple[str, bytes]:
    intent = holder.OutputIntents[0]
    return str(intent.S), intent.DestOutputProfile.read_bytes()


def test_batch_pdf_is_pdf_2_with_the_documents_output_intents_and_xmp(kanal, batches):
    """QA M7: /DPartRoot is PDF 2.0, so the header says 2.0; every page states its archived
    document's output intent (PDF/A-3 sRGB: the batch's own, or its page's where a piece's
    differs); XMP names the batch, dated by its close (a rebuild puts the same bytes)."""
    with kanal.print_queue.engine.connect() as conn:
        sources = {r.piece_id: (r.archive_key, r.pdf_sha256) for r in conn.execute(
            select(print_pieces.c.piece_id, print_pieces.c.archive_key,
                   print_pieces.c.pdf_sha256))}
    intents: dict[str, tuple[str, bytes]] = {}
    for info, pdf, manifest in batches.values():
        assert pdf.startswith(b"%PDF-2.0\n")
        with pikepdf.open(io.BytesIO(pdf)) as doc:
            assert doc.check_pdf_syntax() == []  # qpdf --check
            for piece in manifest["pieces"]:
                key, sha = sources[piece["piece_id"]]
                if key not in intents:
                    with pikepdf.open(io.BytesIO(kanal.store.get(key, expected_sha256=sha))
                                      ) as document:
                        intents[key] = _intent(document.Root)
                for index in range(piece["first_page"] - 1,
                                   piece["first_page"] - 1 + piece["pages"]):
                    page = doc.pages[index].obj
                    stated = _intent(page if "/OutputIntents" in page else doc.Root)
                    assert stated == intents[key]
            meta = doc.open_metadata()
            assert info.batch_id in meta["dc:title"] and info.printshop in meta["dc:title"]
            assert meta["pdf:Producer"].startswith("Kanal")
            assert meta["xmp:CreateDate"] == info.closed_at.isoformat(timespec="seconds")
    assert len({intent[0] for intent in intents.values()}) == 1  # GTS_PDFA1 throughout


def test_csv_manifest_matches_json(kanal, batches):
    info, _, manifest = next(iter(batches.values()))
    raw = kanal.print_batches.read(info, "manifest_csv")
    lines = raw.decode().splitlines()
    assert lines[0].split(",")[:3] == ["batch_id", "sequence", "piece_id"]  # the header first
    rows = list(csv.DictReader(io.StringIO(raw.decode())))
    assert {r["batch_id"] for r in rows} == {manifest["batch_id"]}
    assert [r["piece_id"] for r in rows] == [p["piece_id"] for p in manifest["pieces"]]
    assert [int(r["first_page"]) for r in rows] == [p["first_page"] for p in manifest["pieces"]]


def test_marks_read_back_for_every_piece_both_profiles(batches):
    """The independent reader: start/safety, EOC on the last sheet only, parity, sequence
    counting and wrapping, feeders = the manifest's inserts, DataMatrix on pb-di-negative."""
    seen_profiles = set()
    for info, pdf, manifest in batches.values():
        profile = PROFILES[info.profile]
        seen_profiles.add(profile.id)
        pieces = manifest["pieces"]
        if len(pieces) > 60:  # rasterising is the slow part: every sheet of the small batches,
            pieces = pieces[:40] + pieces[-20:]  # the ends of the big one
        doc = omr_reader.pdfium.PdfDocument(pdf)
        sheets = {
            index: omr_reader.read_sheet(omr_reader.render(doc, index), profile, index)
            for p in pieces for k in range(p["sheets"])
            for index in [p["first_page"] - 1 + k * (2 if profile.duplex else 1)]
        }
        doc.close()
        wrap = 2 ** profile.omr.seq_bits
        for piece in pieces:
            feeders = set(piece["feeders"])
            for k in range(piece["sheets"]):
                read = sheets[piece["first_page"] - 1 + k * (2 if profile.duplex else 1)]
                decoded = omr_reader.decode(profile, read.marks)
                assert decoded.framed and decoded.parity_ok and not read.stray_ink
                assert decoded.end_of_collation == (k == piece["sheets"] - 1)
                assert decoded.sequence == (piece["sequence"] + k) % wrap
                if k == piece["sheets"] - 1:
                    assert decoded.feeders == feeders
                if profile.datamatrix is not None:
                    payload = omr_reader.parse_datamatrix(read.datamatrix)
                    assert payload["piece_id"] == piece["piece_id"]
                    assert (payload["sheet"], payload["sheets"]) == (k + 1, piece["sheets"])
                    assert payload["feeders"] == feeders
                    assert payload["sequence"] == piece["sequence"] + k
    assert seen_profiles == {"default", "pb-di-negative"}


def test_layout_print_options_reach_the_duplex_batch(kanal, batches):
    """Issue 11 fault 8: the 2.0.0 layouts say `duplex = false`, and the card invoice's and
    reminder's giro slip is on their last page. On fjord's duplex line (pb-di-negative) each
    page is a sheet front with a blank back, the queue row, the manifest (JSON and CSV), the
    DPart tree and the postage weight all count those sheets, and the slip is on a front."""
    with kanal.print_queue.engine.begin() as conn:
        rows = {r["piece_id"]: dict(r) for r in conn.execute(
            select(print_pieces).where(print_pieces.c.tenant == "fjord")).mappings()}
    assert {r["sides"] for r in rows.values()} == {"simplex",
                                                   "simplex;front=-1;blank_back=-1"}
    checked = 0
    for info, pdf, manifest in batches.values():
        if info.profile != "pb-di-negative":
            continue
        texts = omr_reader.pdfium.PdfDocument(pdf)
        parts = {p["piece_id"]: p for p in read_document_parts(pdf)}
        csv_rows = {r["piece_id"]: r for r in csv.DictReader(io.StringIO(
            kanal.print_batches.read(info, "manifest_csv").decode()))}
        for piece in manifest["pieces"]:
            row = rows[piece["piece_id"]]
            first = piece["first_page"]
            assert piece["sides"] == "duplex" and piece["sheet_rules"] == row["sides"]
            assert piece["sheets"] == row["pages"] == row["sheets"]  # one sheet per page
            assert piece["pages"] == 2 * row["pages"]
            assert piece["blank_pages"] == list(range(first + 1, first + piece["pages"], 2))
            assert parts[piece["piece_id"]]["blank_pages"] == piece["blank_pages"]
            assert parts[piece["piece_id"]]["sides"] == "duplex"
            assert csv_rows[piece["piece_id"]]["blank_pages"] == " ".join(
                map(str, piece["blank_pages"]))
            grams = 5.0 * piece["sheets"] + 5.0 + 5.0 * len(piece["inserts"])
            assert piece["weight_class"] == f"{next(s for s in (20, 50, 100) if grams <= s)}g"
            for blank in piece["blank_pages"]:
                assert texts[blank - 1].get_textpage().get_text_range().strip() == ""
            for page in range(first, first + piece["pages"]):
                text = texts[page - 1].get_textpage().get_text_range()
                if "GIRO" in text:  # the slip: a front (odd page of the piece), blank back
                    assert (page - first) % 2 == 0 and page + 1 in piece["blank_pages"]
            checked += 1
        texts.close()
    assert checked == 6


def test_address_inside_the_envelope_window(batches, composed):
    names = {r.document_id: d["customer"]["name"] for _, _, d, r in composed}
    for info, pdf, manifest in batches.values():
        profile = PROFILES[info.profile]
        for piece in manifest["pieces"]:
            if piece["document_id"] not in names:
                continue  # the reused copies carry the same pages
            window = profile.envelopes[piece["envelope"]]
            area = window.address_area
            boxes = find_text(pdf, names[piece["document_id"]], piece["first_page"] - 1)
            assert boxes, piece["piece_id"]
            box = min(boxes, key=lambda b: b.top)  # the window block is the topmost mention
            assert area.x <= box.left and box.right <= area.right, piece["piece_id"]
            assert area.y <= box.top and box.bottom <= area.bottom, piece["piece_id"]


def test_sequence_numbers_continue_across_batches(batches):
    by_shop: dict[tuple[str, str], list] = {}
    for info, _, _ in batches.values():
        by_shop.setdefault((info.printshop, info.profile), []).append(info)
    for infos in by_shop.values():
        infos.sort(key=lambda i: i.first_sequence)
        assert infos[0].first_sequence == 0
        for a, b in zip(infos, infos[1:], strict=False):
            assert b.first_sequence == a.last_sequence + 1


# --- the PrintShop API -------------------------------------------------------------------------


def fetch(stub, batch_id, part=0, offset=0, chunk_size=0):
    chunks = list(stub.FetchPrintBatch(pb.FetchPrintBatchRequest(
        batch_id=batch_id, part=part, offset=offset, chunk_size=chunk_size)))
    return chunks


def test_api_list_fetch_resume_acknowledge_reprint(kanal, batches):
    with printshop(kanal, "nordkort", "printshop:demo-print") as ch:
        stub = printshop_pb2_grpc.PrintShopStub(ch)
        listed = stub.ListPrintBatches(pb.ListPrintBatchesRequest(
            states=[pb.PRINT_BATCH_STATE_READY])).batches
        mine = {b.batch_id for b in listed}
        assert mine == {i.batch_id for i, _, _ in batches.values()
                        if i.printshop == "demo-print" and i.tenant == "nordkort"}
        batch = max(listed, key=lambda b: b.pieces)
        pdf_file = next(f for f in batch.files if f.part == pb.PRINT_BATCH_PART_PDF)

        chunks = fetch(stub, batch.batch_id, pb.PRINT_BATCH_PART_PDF, chunk_size=256 * 1024)
        assert len(chunks) > 2 and chunks[-1].last
        half = chunks[len(chunks) // 2].offset
        first_half = b"".join(c.data for c in chunks if c.offset < half)
        rest = fetch(stub, batch.batch_id, pb.PRINT_BATCH_PART_PDF, offset=half,
                     chunk_size=256 * 1024)
        assert rest[0].offset == half
        pdf = first_half + b"".join(c.data for c in rest)
        assert hashlib.sha256(pdf).hexdigest() == pdf_file.sha256 == rest[-1].sha256
        assert len(pdf) == pdf_file.size
        everything = fetch(stub, batch.batch_id)  # all parts, PDF first
        assert [p for p in dict.fromkeys(c.part for c in everything)] == [
            pb.PRINT_BATCH_PART_PDF, pb.PRINT_BATCH_PART_MANIFEST_JSON,
            pb.PRINT_BATCH_PART_MANIFEST_CSV]
        csv_bytes = b"".join(c.data for c in everything
                             if c.part == pb.PRINT_BATCH_PART_MANIFEST_CSV)
        csv_file = next(f for f in batch.files if f.part == pb.PRINT_BATCH_PART_MANIFEST_CSV)
        assert hashlib.sha256(csv_bytes).hexdigest() == csv_file.sha256

        fetched = stub.ListPrintBatches(pb.ListPrintBatchesRequest(
            states=[pb.PRINT_BATCH_STATE_FETCHED])).batches
        assert batch.batch_id in {b.batch_id for b in fetched}

        manifest = json.loads(b"".join(c.data for c in everything
                                       if c.part == pb.PRINT_BATCH_PART_MANIFEST_JSON))
        spoiled = [manifest["pieces"][3]["piece_id"], manifest["pieces"][10]["piece_id"]]
        acked = stub.AcknowledgePrintBatch(pb.AcknowledgePrintBatchRequest(
            batch_id=batch.batch_id, spoiled_piece_ids=spoiled))
        assert acked.state == pb.PRINT_BATCH_STATE_ACKNOWLEDGED and acked.reprint_batch_id
        again = stub.AcknowledgePrintBatch(pb.AcknowledgePrintBatchRequest(
            batch_id=batch.batch_id, spoiled_piece_ids=list(reversed(spoiled))))
        assert again.reprint_batch_id == acked.reprint_batch_id  # idempotent
        with pytest.raises(grpc.RpcError) as error:
            stub.AcknowledgePrintBatch(pb.AcknowledgePrintBatchRequest(batch_id=batch.batch_id))
        assert error.value.code() == grpc.StatusCode.FAILED_PRECONDITION

        reprint = next(b for b in stub.ListPrintBatches(pb.ListPrintBatchesRequest()).batches
                       if b.batch_id == acked.reprint_batch_id)
        assert reprint.state == pb.PRINT_BATCH_STATE_READY and reprint.pieces == 2
        assert reprint.closed_reason == "reprint"
        newest = max(i.last_sequence for i, _, _ in batches.values()
                     if i.printshop == "demo-print")
        assert reprint.first_sequence > newest  # fresh sequence numbers
        reprint_manifest = json.loads(b"".join(c.data for c in fetch(
            stub, reprint.batch_id, pb.PRINT_BATCH_PART_MANIFEST_JSON)))
        assert [p["document_id"] for p in reprint_manifest["pieces"]] == sorted(
            (p["document_id"] for p in manifest["pieces"] if p["piece_id"] in spoiled),
            key=lambda d: [p["document_id"] for p in reprint_manifest["pieces"]].index(d))
        assert {p["piece_id"] for p in reprint_manifest["pieces"]}.isdisjoint(spoiled)

        # state only moves forward: the acknowledged batch stays acknowledged after a fetch
        fetch(stub, batch.batch_id, pb.PRINT_BATCH_PART_MANIFEST_CSV)
        assert kanal.print_batches.get("nordkort", None, batch.batch_id).state == "acknowledged"


def test_print_shops_are_isolated(kanal, batches):
    """Another print shop's batch answers exactly like an unknown id: NOT_FOUND, same words."""
    demo = next(i for i, _, _ in batches.values() if i.printshop == "demo-print")
    acme = next(i for i, _, _ in batches.values() if i.printshop == "acme-print")
    with printshop(kanal, "nordkort", "printshop:acme-print") as ch:
        stub = printshop_pb2_grpc.PrintShopStub(ch)
        assert not stub.ListPrintBatches(pb.ListPrintBatchesRequest()).batches
        unknown = "01JUNKNOWNBATCH0000000000"
        for batch_id in (demo.batch_id, unknown):
            for call in (lambda b=batch_id: fetch(stub, b),
                         lambda b=batch_id: stub.AcknowledgePrintBatch(
                             pb.AcknowledgePrintBatchRequest(batch_id=b))):
                with pytest.raises(grpc.RpcError) as error:
                    call()
                assert error.value.code() == grpc.StatusCode.NOT_FOUND
                assert error.value.details() == f"no print batch {batch_id!r}"
        with pytest.raises(grpc.RpcError) as error:  # fjord's acme batch: another tenant
            fetch(stub, acme.batch_id)
        assert error.value.code() == grpc.StatusCode.NOT_FOUND
    with printshop(kanal, "fjord", "printshop:acme-print") as ch:
        stub = printshop_pb2_grpc.PrintShopStub(ch)
        listed = {b.batch_id for b in stub.ListPrintBatches(pb.ListPrintBatchesRequest()).batches}
        assert acme.batch_id in listed and demo.batch_id not in listed
    with channel(kanal.address, KEYS["nordkort", "producer"]) as ch:
        with pytest.raises(grpc.RpcError) as error:
            printshop_pb2_grpc.PrintShopStub(ch).ListPrintBatches(pb.ListPrintBatchesRequest())
        assert error.value.code() == grpc.StatusCode.PERMISSION_DENIED


def test_cutoff_closes_a_group_when_asked_with_a_later_clock(kanal, composed, batches):
    service = kanal.print_batches
    assert not service.queue.pending()  # everything was closed on request
    queued_at = datetime.now(UTC)
    source = next(iter(batches.values()))[2]["pieces"][0]
    with service.engine.begin() as conn:
        original = dict(conn.execute(select(print_pieces).where(
            print_pieces.c.piece_id == source["piece_id"])).mappings().one())
    service.queue.enqueue(QueuedPiece(
        document_id="CUTOFF0000000000000000001", tenant="nordkort",
        archive_key=original["archive_key"], pdf_sha256=original["pdf_sha256"],
        pages=original["pages"], envelope="C5", inserts=(), country="NO", postal_code="0150",
    ), queued_at)
    assert service.close_due(queued_at + timedelta(minutes=239)) == []
    closed = service.close_due(queued_at + timedelta(minutes=240))
    assert len(closed) == 1
    assert service.get("nordkort", "demo-print", closed[0]).reason == "cutoff"


def test_kanal_print_cli_lists_closes_and_fetches(kanal, batches, tmp_path, capsys):
    from server.cli import main

    admin = ["print", "--address", kanal.address, "--key", KEYS["nordkort", "admin"]]
    assert main([*admin, "list"]) == 0
    listed = capsys.readouterr().out
    assert all(i.batch_id in listed for i, _, _ in batches.values() if i.tenant == "nordkort")
    assert main([*admin, "close"]) == 0  # nothing open: closes nothing, succeeds
    open_ones = [i.batch_id for i in kanal.print_batches.list("nordkort", "demo-print",
                                                              ["ready", "fetched"])]
    assert len(open_ones) >= 2
    first, second = open_ones[:2]
    shop = ["--address", kanal.address, "--key", KEYS["nordkort", "printshop:demo-print"]]
    # two batches into one folder: each in its own BATCH_ID folder, nothing overwritten
    for batch_id in (first, second):
        assert main(["print", "fetch", batch_id, "--out", str(tmp_path), *shop]) == 0
    for batch_id in (first, second):
        info = kanal.print_batches.get("nordkort", None, batch_id)
        folder = tmp_path / batch_id
        assert (folder / "print.pdf").read_bytes() == kanal.print_batches.read(info, "pdf")
        assert json.loads((folder / "manifest.json").read_text())["batch_id"] == batch_id
        header, *rows = (folder / "manifest.csv").read_text().splitlines()
        assert header.startswith("batch_id,sequence,piece_id,")
        assert rows and all(row.startswith(f"{batch_id},") for row in rows)
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted([first, second])
    capsys.readouterr()

    # acknowledge one with a spoiled piece: it comes back in a reprint batch
    piece = json.loads((tmp_path / first / "manifest.json").read_text())["pieces"][0]
    assert main(["print", "ack", first, "--spoiled", piece["piece_id"], *shop]) == 0
    out = capsys.readouterr().out
    acked = kanal.print_batches.get("nordkort", None, first)
    assert acked.state == "acknowledged" and acked.spoiled == (piece["piece_id"],)
    assert f"{first}  acknowledged; 1 spoiled piece(s) in reprint batch " \
           f"{acked.reprint_batch_id}" in out

    # a print shop with no batches is told so; another shop's batch is unknown to it
    other = ["--address", kanal.address, "--key", KEYS["nordkort", "printshop:acme-print"]]
    assert main(["print", "list", *other]) == 0
    captured = capsys.readouterr()
    assert "pieces=" not in captured.out  # (the in-process server logs to stdout too)
    assert "no print batches for this key" in captured.err
    assert main(["print", "fetch", second, "--out", str(tmp_path / "x"), *other]) == 1
    assert f"kanal print fetch: NOT_FOUND: no print batch {second!r}\n" in capsys.readouterr().err
    assert not (tmp_path / "x").exists()
