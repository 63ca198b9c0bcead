"""Print production end to end: documents composed over gRPC are queued for their print
shop with the inserts and campaign their rules choose, and closed into sorted, marked batches
with DPart metadata and manifests, on a real server (embedded SeaweedFS, SQLite index).

The batches are checked as a print shop would: counts, sort order and page ranges, the DPart
tree, PDF 2.0 with the documents' output intents and XMP, the CSV manifest, the OMR marks and
DataMatrix read back by an independent reader, duplex sheets with blank backs, the address in
the envelope window, continuing sequence numbers. Fetching, acknowledging and reprinting
through the PrintShop API, the cutoff and `kanal print`: test_print_shop_api.py.

To keep CI time sane, 30 distinct documents are rendered and 330 more queue entries reuse
their archived PDFs (tests/integration/print_batch_fixtures.py).
"""

from __future__ import annotations

import csv
import hashlib
import io

import pikepdf
import pytest
from sqlalchemy import select

from server.app import KanalServer
from server.printing.batch_pdf import read_document_parts
from server.printing.profiles import builtin_profiles
from server.printing.queue import print_pieces
from tests import omr_reader
from tests.integration.print_batch_fixtures import close_batches, compose_documents, start_kanal
from tests.pdf_inspect import find_text

pytestmark = pytest.mark.integration

PROFILES = builtin_profiles()


@pytest.fixture(scope="module")
def kanal(tmp_path_factory: pytest.TempPathFactory):
    yield from start_kanal(tmp_path_factory)


@pytest.fixture(scope="module")
def composed(kanal: KanalServer):
    """24 documents for nordkort and 6 for fjord, composed over gRPC."""
    return compose_documents(kanal)


@pytest.fixture(scope="module")
def batches(kanal: KanalServer, composed):
    """Multiply the queued pieces to a few hundred, then close everything on request."""
    return close_batches(kanal)


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
