"""Issue 11 fault 8: every print option of a layout or the data reaches the sheets.

A layout's `duplex = false` gives simplex sheets on a duplex line; a card invoice's
tear-off giro slip is always a sheet front with a blank back, so tearing it off cuts away
nothing else; and the sheets are counted the same way by the imposer (OMR sequence and
end of collation, read back by the independent reader in tests/omr_reader.py), the
queue (envelope) and the batch (postage weight).
"""

from __future__ import annotations

import json
import shutil
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path

import numpy as np
import pypdfium2 as pdfium
import pytest

from server.channels.pdf import PrintEngines
from server.compose.composer import ComposeRequest, compose
from server.compose.layouts import LayoutError, load_layout
from server.compose.model import Channel, PrintOptions
from server.printing.batch_files import ENVELOPE_GRAMS, weight_class
from server.printing.marks import MailPiece, impose
from server.printing.profiles import builtin_profiles
from server.printing.sheets import BLANK, SheetRules, plan_sheets, sheet_rules
from tests import omr_reader
from tests.layouts import shipped
from tests.pdf_inspect import pages_text

LAYOUTS_DIR = Path(__file__).resolve().parents[2] / "layouts"
LAYOUTS = shipped()
PROFILES = builtin_profiles()
DUPLEX = PROFILES["pb-di-negative"]
SIMPLEX = PROFILES["default"]
ENGINES = PrintEngines()
NOW = datetime(2026, 11, 22, tzinfo=UTC)
SLIP = SheetRules(duplex=True, front_pages=(-1,), blank_back_pages=(-1,))


# --- the planner ------------------------------------------------------------------------------


@pytest.mark.parametrize(("pages", "rules", "sides"), [
    (1, SheetRules(), (1, BLANK)),
    (2, SheetRules(), (1, 2)),
    (3, SheetRules(), (1, 2, 3, BLANK)),
    (3, SheetRules(duplex=False), (1, BLANK, 2, BLANK, 3, BLANK)),
    # the slip on the last page: a front, blank back; on an even page a blank goes before it
    (1, SLIP, (1, BLANK)),
    (2, SLIP, (1, BLANK, 2, BLANK)),
    (3, SLIP, (1, 2, 3, BLANK)),
    (4, SLIP, (1, 2, 3, BLANK, 4, BLANK)),
    (2, SheetRules(front_pages=(2,)), (1, BLANK, 2, BLANK)),
    (3, SheetRules(blank_back_pages=(1,)), (1, BLANK, 2, 3)),
    (2, SheetRules(front_pages=(5,)), (1, 2)),  # a page the document does not have
])
def test_plan_on_a_duplex_line(pages, rules, sides) -> None:
    plan = plan_sheets(pages, True, rules)
    assert plan.sides == sides
    assert plan.sheets == len(sides) // 2
    assert all(plan.sides[i] is not BLANK for i in plan.front_sides)  # marks need a page


@pytest.mark.parametrize("rules", [SheetRules(), SheetRules(duplex=False), SLIP])
def test_a_simplex_line_prints_one_page_per_sheet_whatever_is_asked(rules) -> None:
    plan = plan_sheets(3, False, rules)
    assert plan.sides == (1, 2, 3) and plan.sheets == 3 and plan.front_sides == (0, 1, 2)


@pytest.mark.parametrize("rules", [SheetRules(), SheetRules(duplex=False), SLIP,
                                   SheetRules(False, (2, -3), (1,))])
def test_rules_travel_through_the_queue_as_text(rules) -> None:
    assert SheetRules.from_text(rules.to_text()) == rules
    assert SheetRules.from_text("") == SheetRules()


def test_bad_rules_are_refused() -> None:
    with pytest.raises(ValueError, match="1-based"):
        SheetRules(front_pages=(0,))
    with pytest.raises(ValueError, match="duplex or simplex"):
        SheetRules.from_text("both")
    with pytest.raises(ValueError, match="at least one page"):
        plan_sheets(0, True)


# --- the layout and the data decide the options -------------------------------------------------


def _compose(layout, data: dict | str):
    text = data if isinstance(data, str) else json.dumps(data, ensure_ascii=False)
    return compose(ComposeRequest(tenant="t", layout=layout, data=text, document_id="SHEETS1",
                                  now=NOW, channels=(Channel.PRINT,)))


def test_print_options_carry_the_layouts_duplex_and_the_slip_page() -> None:
    card = LAYOUTS.get("card-invoice")
    options = _compose(card, card.sample_data()).print_options
    assert options == PrintOptions(envelope="C5", duplex=False, front_pages=(-1,),
                                   blank_back_pages=(-1,))
    assert sheet_rules(options) == SheetRules(False, (-1,), (-1,))
    letter = LAYOUTS.get("welcome-letter")
    assert sheet_rules(_compose(letter, letter.sample_data()).print_options) == SheetRules(
        duplex=False)


def test_nothing_to_pay_prints_no_slip_so_no_slip_page() -> None:
    card = LAYOUTS.get("card-invoice")
    data = json.loads(card.sample_data())
    data["invoice"]["payments_received"] = "1000000.00"  # a credit balance
    composition = _compose(card, data)
    assert composition.amount_due == Decimal("0.00")
    assert composition.print_options.front_pages == ()
    assert composition.print_options.blank_back_pages == ()


@pytest.mark.parametrize(("key", "value"), [("slip_page", 0), ("slip_page", "last"),
                                            ("duplex", "no")])
def test_a_layout_with_bad_print_sides_is_refused_at_load(tmp_path, key, value) -> None:
    layout = _layout_copy(tmp_path, "card-invoice", {key: value})
    with pytest.raises(LayoutError, match=f"\\[print\\] {key}"):
        load_layout(layout)


def _layout_copy(tmp_path: Path, layout_id: str, print_keys: dict) -> Path:
    """A copy of a 2.0.0 layout (and the shared files its Typst template imports) whose
    `[print]` section has `print_keys` changed."""
    root = tmp_path / "layouts"
    if not (root / "_shared").exists():
        shutil.copytree(LAYOUTS_DIR / "_shared", root / "_shared")
    target = root / layout_id / "2.0.0"
    shutil.copytree(LAYOUTS_DIR / layout_id / "2.0.0", target)
    manifest = (target / "manifest.toml").read_text(encoding="utf-8")
    for key, value in print_keys.items():
        toml_value = json.dumps(value) if not isinstance(value, bool) else str(value).lower()
        old = next(line for line in manifest.splitlines() if line.startswith(f"{key} ="))
        manifest = manifest.replace(old, f"{key} = {toml_value}", 1)
    (target / "manifest.toml").write_text(manifest, encoding="utf-8")
    return target


# --- printed: the slip on a front, its back blank; simplex layouts; sheet counts --------------


def _card_data(transactions: int) -> dict:
    data = json.loads(LAYOUTS.get("card-invoice").sample_data())
    rows = data["transactions"]
    data["transactions"] = [dict(rows[i % len(rows)]) for i in range(transactions)]
    return data


def _ink(dark: np.ndarray) -> int:
    return int((dark > 0.25).sum())


@pytest.fixture(scope="module")
def duplex_card(tmp_path_factory):
    """The card invoice as a layout with `duplex = true` (statement pages back to back)."""
    path = _layout_copy(tmp_path_factory.mktemp("duplex-card"), "card-invoice",
                        {"duplex": True})
    return load_layout(path)


@pytest.mark.parametrize("engine", ["typst", "weasyprint"])
@pytest.mark.parametrize("variant", ["as shipped (duplex = false)", "duplex = true"])
def test_card_invoice_slip_is_a_front_with_a_blank_back_on_a_duplex_line(
        engine, variant, duplex_card) -> None:
    layout = LAYOUTS.get("card-invoice") if variant.startswith("as") else duplex_card
    title = layout.labels_for("nb-NO")["slip_title"]
    pieces, page_counts = [], []
    for n, transactions in enumerate((45, 12, 70, 100)):  # 2, 1, 2-3, 3+ pages
        composition = _compose(layout, _card_data(transactions))
        rendered = ENGINES.engine(engine).render(layout, composition)
        page_counts.append(rendered.pages)
        pieces.append(MailPiece(f"CARD{n}", rendered.content, frozenset({n % 2 + 1}),
                                sheet_rules=sheet_rules(composition.print_options)))
    assert len(set(page_counts)) >= 2, page_counts  # odd and even slip pages are covered
    batch = impose(pieces, DUPLEX, first_sequence=5)
    texts = pages_text(batch.pdf)
    doc = pdfium.PdfDocument(batch.pdf)
    reads = omr_reader.read_batch(batch.pdf, DUPLEX)
    by_page = {r.page_index: r for r in reads}
    sequence = 5
    for piece, placed, pages in zip(pieces, batch.pieces, page_counts, strict=True):
        last_page = placed.first_page + placed.pages - 1
        slip_pages = [p for p in range(placed.first_page, last_page + 1)
                      if title in texts[p - 1]]
        assert len(slip_pages) == 1, (piece.piece_id, slip_pages)
        slip = slip_pages[0]
        assert (slip - 1) % 2 == 0, f"{piece.piece_id}: slip on page {slip}, a back"
        assert slip + 1 in placed.blank_pages and texts[slip] == ""
        assert _ink(omr_reader.render(doc, slip, dpi=50)) == 0, "the slip's back has ink"
        if not layout.section("print")["duplex"]:
            assert placed.sheets == pages  # simplex: a sheet per page
        else:
            assert placed.sheets == plan_sheets(pages, True, SLIP).sheets
            assert placed.sheets <= pages
        # the inserter counts the piece's sheets: N fronts, end of collation on the last
        fronts = [by_page[i] for i in range(placed.first_page - 1, last_page, 2)]
        assert len(fronts) == placed.sheets
        for k, read in enumerate(fronts, start=1):
            decoded = omr_reader.decode(DUPLEX, read.marks)
            assert decoded.framed and decoded.parity_ok and not read.stray_ink
            assert decoded.end_of_collation == (k == placed.sheets)
            assert decoded.sequence == sequence % 8
            matrix = omr_reader.parse_datamatrix(read.datamatrix)
            assert (matrix["sheet"], matrix["sheets"], matrix["sequence"]) == (
                k, placed.sheets, sequence)
            sequence += 1
        # every back is either a page of the statement or blank, never a slip
        for back in range(placed.first_page + 1, last_page + 1, 2):
            assert back in placed.blank_pages or title not in texts[back - 1]
    doc.close()
    assert batch.total_sheets == sequence - 5


@pytest.mark.parametrize(("layout_id", "engine"), [("welcome-letter", "weasyprint"),
                                                   ("b2b-invoice", "typst")])
def test_duplex_false_gives_simplex_sheets_on_a_duplex_line(layout_id, engine) -> None:
    layout = LAYOUTS.get(layout_id)
    data = json.loads(layout.sample_data())
    if layout_id == "welcome-letter":  # a second page
        data["letter"]["paragraphs"] = [" ".join([p] * 3) for p in
                                        data["letter"]["paragraphs"] * 2]
    else:
        data["lines"] = [{**line, "id": str(n)} for n, line in
                         enumerate(data["lines"] * 8, start=1)]
    composition = _compose(layout, data)
    assert composition.print_options.duplex is False
    rendered = ENGINES.engine(engine).render(layout, composition)
    assert rendered.pages >= 2
    piece = MailPiece("SIMPLEX1", rendered.content,
                      sheet_rules=sheet_rules(composition.print_options))
    batch = impose([piece, MailPiece("NEXT", rendered.content)], DUPLEX)
    placed, after = batch.pieces
    assert placed.sheets == rendered.pages and placed.pages == 2 * rendered.pages
    assert placed.blank_pages == tuple(range(2, 2 * rendered.pages + 1, 2))
    texts = pages_text(batch.pdf)
    assert all(texts[p - 1] == "" for p in placed.blank_pages)
    # the same document without the rule prints back to back: fewer sheets
    assert after.sheets == (rendered.pages + 1) // 2
    reads = omr_reader.read_batch(batch.pdf, DUPLEX)
    eoc = [omr_reader.decode(DUPLEX, r.marks).end_of_collation for r in reads]
    assert eoc[:placed.sheets] == [False] * (placed.sheets - 1) + [True]
    # on a simplex line the rule changes nothing
    simplex = impose([piece], SIMPLEX).pieces[0]
    assert simplex.sheets == rendered.pages and simplex.blank_pages == ()


def test_postage_weight_counts_the_sheets_with_their_blank_backs() -> None:
    # a 4-page simplex letter is 4 sheets (20 g) + C5 (5 g): the 50 g step, not 20 g
    sheets = plan_sheets(4, True, SheetRules(duplex=False)).sheets
    assert sheets == 4
    assert weight_class(sheets, "C5", 0) == "50g"
    assert weight_class(plan_sheets(4, True).sheets, "C5", 0) == "20g"


def test_postage_weight_knows_every_envelope_of_the_built_in_profiles() -> None:
    # a DL envelope (DE, AT, GB letters) weighs as E65, its size: 3 sheets + DL = 19 g
    assert weight_class(3, "DL", 0) == weight_class(3, "E65", 0) == "20g"
    assert weight_class(8, "C4-DIN", 0) == weight_class(8, "C4", 0) == "100g"  # 52 g
    for profile in builtin_profiles().values():
        assert set(profile.envelopes) <= set(ENVELOPE_GRAMS), profile.id


# --- paper as a delivery fallback carries the same rules ---------------------------------------


def test_a_print_fallback_delivery_queues_the_documents_sheet_rules(tmp_path) -> None:
    """The outbox row written for the print channel (server.delivery.outbox) and the print
    provider that queues it later (an e-mail bounce falling back to paper) carry the
    layout's duplex and slip options into the queue, as DocumentService does."""
    from archive.index import DocumentIndex
    from archive.records import OutputRecord
    from server.delivery.model import Outgoing
    from server.delivery.outbox import details_for
    from server.delivery.providers.base import ProviderContext
    from server.delivery.providers.printing import PrintQueueProvider
    from server.printing.queue import PrintQueue, PrintSettings

    card = LAYOUTS.get("card-invoice")
    composition = _compose(card, card.sample_data())
    record = OutputRecord("print", "k/doc.pdf", "application/pdf", "0" * 64, 10, 2)
    details = details_for(composition, card, record)
    assert details["print"]["sides"] == "simplex;front=-1;blank_back=-1"

    index = DocumentIndex(f"sqlite:///{tmp_path / 'index.db'}")
    queue = PrintQueue(index, PrintSettings.from_dict(
        {"tenants": {"t": {"printshop": "acme", "profile": "pb-di-negative"}}}))
    queue.create_schema()
    provider = PrintQueueProvider("print", {}, ProviderContext(
        state_dir=tmp_path, services={"print_queue": queue}))
    provider.send(Outgoing(
        delivery_id="D1", tenant="t", document_id="SHEETS1", customer_id="c", channel="print",
        recipient="", content=b"", media_type="application/pdf", message_id="m", attempt=1,
        details={**details, "archive_key": "k/doc.pdf", "sha256": "0" * 64}))
    [row] = queue.pending("t")
    assert row["sides"] == "simplex;front=-1;blank_back=-1"
    assert row["sheets"] == 2  # two pages, simplex on the duplex line: two sheets
