"""The Typst engine behind the PDF seam: data stays data, fonts and files stay in the layout,
the same Composition gives the same bytes, the manifest picks the engine, and every print
Output says which engine made it."""

from __future__ import annotations

import io
import json
import shutil
import subprocess
import sys
from dataclasses import replace
from datetime import UTC, datetime

import pikepdf
import pypdfium2
import pytest

from server.channels import Renderers
from server.channels.pdf import PrintEngines, engine_of, render_print
from server.channels.typst_engine import TYPST_VERSION, TypstEngine
from server.compose.composer import ComposeRequest, compose
from server.compose.layouts import DEFAULT_LAYOUTS_DIR, LayoutError, LayoutRegistry, load_layout
from server.compose.model import Channel, ChannelPlan
from server.compose.rules import parse_rules
from tests.pdf_inspect import MM_PER_PT, find_text, pages_text
from tests.print_engines import print_engines

LAYOUTS = LayoutRegistry()
NOW = datetime(2026, 3, 2, 9, 30, tzinfo=UTC)
HOSTILE = [
    '#read("/etc/passwd")',
    '#import "@preview/cetz:0.3.0": *',
    "#eval(\"1 + 1\") ] [ $x^2$",
    "<label> @ref *bold* _em_ `raw`",
    "#sys.inputs.context // \\ /* */",
]


def composition(layout_id: str = "card-invoice", data: dict | None = None, **kw):
    layout = LAYOUTS.get(layout_id)
    data = data or json.loads(layout.sample_data())
    return compose(ComposeRequest(tenant="t", layout=layout, data=json.dumps(data),
                                  document_id="01TYPST", now=NOW, channels=(), **kw)), layout


@pytest.fixture(scope="module")
def engine():
    return TypstEngine()


def test_the_volume_layouts_use_typst_and_the_letter_weasyprint():
    printed = [layout for layout in LAYOUTS.latest() if Channel.PRINT in layout.channels]
    assert {layout.id: engine_of(layout) for layout in printed} == {
        "card-invoice": "typst", "payment-reminder": "typst", "b2b-invoice": "typst",
        "welcome-letter": "weasyprint"}
    assert engine_of(LAYOUTS.get("card-invoice", "1.0.0")) == "weasyprint"  # frozen


def test_hostile_strings_are_printed_as_text_not_run(engine):
    data = json.loads(LAYOUTS.get("card-invoice").sample_data())
    data["customer"]["name"] = HOSTILE[0]
    for tx, text in zip(data["transactions"], HOSTILE[1:], strict=False):
        tx["description"] = text
    comp, layout = composition(data=data)
    text = " ".join(pages_text(engine.render(layout, comp).content))
    for hostile in HOSTILE:
        assert hostile in text
    assert "root:" not in text and "/bin/" not in text  # /etc/passwd was not read


def test_same_composition_same_bytes_in_fresh_engines():
    comp, layout = composition()
    first = TypstEngine().render(layout, comp).content
    assert TypstEngine().render(layout, comp).content == first
    other = replace(comp, document_id="01OTHER", created_at=datetime(2026, 3, 3, tzinfo=UTC))
    assert TypstEngine().render(layout, other).content != first


def test_creation_date_is_the_compositions_not_the_clock(engine):
    comp, layout = composition()
    with pikepdf.open(io.BytesIO(engine.render(layout, comp).content)) as pdf:
        assert str(pdf.docinfo["/CreationDate"]).startswith("D:20260302093000")


def test_fonts_come_only_from_the_layout(engine):
    comp, layout = composition()
    with pikepdf.open(io.BytesIO(engine.render(layout, comp).content)) as pdf:
        fonts = {str(f.BaseFont) for page in pdf.pages
                 for f in page.Resources.get("/Font", {}).values()}
    assert fonts and all(name.split("+")[-1].startswith("/Inter") or "Inter" in name
                         for name in fonts), fonts


def test_a_family_the_layout_does_not_ship_is_an_error(tmp_path):
    shutil.copytree(DEFAULT_LAYOUTS_DIR / "_shared", tmp_path / "_shared")
    folder = tmp_path / "card-invoice" / "2.0.0"
    shutil.copytree(DEFAULT_LAYOUTS_DIR / "card-invoice" / "2.0.0", folder)
    (tmp_path / "_shared" / "no-fonts").mkdir()
    manifest = folder / "manifest.toml"
    manifest.write_text(manifest.read_text().replace(
        '"../../_shared/fonts/inter-4.1-ttf"', '"../../_shared/no-fonts"'))
    layout = load_layout(folder)
    comp = compose(ComposeRequest(tenant="t", layout=layout, data=layout.sample_data(),
                                  document_id="01TYPST", now=NOW, channels=()))
    with pytest.raises(LayoutError, match="font"):
        TypstEngine().render(layout, comp)


def test_manifest_errors_are_caught_at_load(tmp_path):
    shutil.copytree(DEFAULT_LAYOUTS_DIR / "_shared", tmp_path / "_shared")
    folder = tmp_path / "card-invoice" / "2.0.0"
    shutil.copytree(DEFAULT_LAYOUTS_DIR / "card-invoice" / "2.0.0", folder)
    manifest = folder / "manifest.toml"
    original = manifest.read_text()
    for change, message in (
        (('engine = "typst"', 'engine = "chromium"'), "engine 'chromium'"),
        (('typst_template = "print.typ"', 'typst_template = "missing.typ"'), "missing"),
        (('pdf_standards = ["a-3a", "ua-1"]', 'pdf_standards = ["ua-1"]'), "ua-1 needs"),
        (('"../../_shared/fonts/inter-4.1-ttf"', '"/usr/share/fonts"'), r"\[print\] fonts"),
    ):
        manifest.write_text(original.replace(*change))
        with pytest.raises(LayoutError, match=message):
            load_layout(folder)


def test_print_output_records_engine_and_standards():
    comp, layout = composition()
    typst_out = render_print(comp, layout, PrintEngines())
    assert typst_out.facts["engine"] == "typst"
    assert typst_out.facts["engine_version"] == TYPST_VERSION
    assert typst_out.facts["pdf_standards"] == "a-3a,ua-1"
    assert typst_out.facts["pdf_variant"] == "pdf/a-3a"
    weasy_out = render_print(comp, layout, print_engines("weasyprint", layout))
    assert weasy_out.facts["engine"] == "weasyprint" and weasy_out.facts["engine_version"]
    old_layout = LAYOUTS.get("card-invoice", "1.0.0")
    old = compose(ComposeRequest(tenant="t", layout=old_layout, data=old_layout.sample_data(),
                                 document_id="01TYPST", now=NOW, channels=()))
    frozen = render_print(old, old_layout, print_engines(None, old_layout))
    assert (frozen.facts["engine"], frozen.facts["pdf_variant"]) == ("weasyprint", "pdf/a-3b")


def test_renderers_use_each_layouts_engine():
    for layout_id, engine in (("payment-reminder", "typst"), ("welcome-letter", "weasyprint")):
        comp, layout = composition(layout_id)
        comp = replace(comp, channel_plan=ChannelPlan(channels=(Channel.PRINT,)))
        [output] = Renderers().render(comp, layout)
        assert output.facts["engine"] == engine


def test_a_long_word_breaks_inside_its_column(engine):
    """A 70-letter 'word' wraps inside the description column (37..123 mm from the left)
    instead of running over the foreign-amount and amount columns."""
    data = json.loads(LAYOUTS.get("card-invoice").sample_data())
    data["transactions"][0]["description"] = "W" * 70
    comp, layout = composition(data=data)
    pdf = engine.render(layout, comp).content
    document = pypdfium2.PdfDocument(pdf)
    page = document[0]
    textpage = page.get_textpage()
    text = textpage.get_text_range()
    start = text.index("WWWW")
    rights = [textpage.get_charbox(i)[2] * MM_PER_PT
              for i, ch in enumerate(text[start:start + 90], start) if ch == "W"]
    document.close()
    assert len(rights) == 70
    assert max(rights) <= 210 - 18 - 25 - 44 + 0.5, max(rights)
    assert not find_text(pdf, "W" * 70)  # it did break


def test_the_rules_campaign_prints_in_the_card_invoice_in_both_locales(engine):
    """The campaign area shows the rules' `main` campaign (and nothing without one); the
    sv-SE sample renders with Swedish labels and the OCR slip."""
    rules = parse_rules([{"id": "gold", "when": {"segment": "premium"}, "campaign": {
        "area": "main", "id": "gold-2027", "title": "Oppgrader til Gold",
        "body": "Reiseforsikring og lounge inkludert."}}])
    layout = LAYOUTS.get("card-invoice")
    data = json.loads(layout.sample_data())
    for segment, shown in (("premium", True), ("private", False)):
        data["card_account"]["segment"] = segment
        comp, _ = composition(data=data, rules=rules)
        text = " ".join(pages_text(engine.render(layout, comp).content))
        assert ("TIPS TIL DEG Oppgrader til Gold Reiseforsikring og lounge inkludert." in text) \
            is shown
    swedish = (layout.path / "sample-sv-SE.json").read_text(encoding="utf-8")
    comp, _ = composition(data=json.loads(swedish), locale="sv-SE")
    pdf = engine.render(layout, comp).content
    text = " ".join(pages_text(pdf))
    assert "Kontoutdrag kreditkort" in text and "OCR-nummer".upper() in text
    pages = pages_text(pdf)
    assert f"Sida {len(pages)} / {len(pages)}" in text
    # this sample's table ends right at a page break: the total still follows a row there
    header, total = "Belopp (kr)", "Summa transaktioner"
    last = next(page for page in pages if total in page)
    between = last[last.index(header) + len(header):last.index(total)]
    assert "TELIA SVERIGE AB" in between
    with pikepdf.open(io.BytesIO(pdf)) as document:
        assert str(document.Root.Lang) == "sv-SE"


@pytest.mark.parametrize("layout_id", ["card-invoice", "payment-reminder"])
def test_the_giro_slip_sits_where_the_weasyprint_one_does(layout_id):
    """A print shop may tear the slip off along a perforation: the engine a designer picks
    must not move it. Its title and amount field lie within 1 mm of WeasyPrint's."""
    comp, layout = composition(layout_id)
    placed = {}
    for name in ("typst", "weasyprint"):
        pdf = print_engines(name, layout).render(layout, comp).content
        last = len(pages_text(pdf)) - 1
        placed[name] = [find_text(pdf, text, last)[-1] for text in (
            comp.context["labels"]["slip_title"], comp.context["payment"]["reference"])]
    for typst, weasyprint in zip(placed["typst"], placed["weasyprint"], strict=True):
        assert abs(typst.top - weasyprint.top) < 1 and abs(typst.left - weasyprint.left) < 1


def test_the_b2b_invoice_prints_the_same_en16931_rows_with_both_engines():
    """Everything the WeasyPrint b2b page prints of the EN 16931 model (BG-3 preceding
    invoice, BG-14 period, BT-72 delivery date, BT-12 contract reference, a line's note,
    period and allowance, BT-113 prepaid, BT-114 rounding, BT-111 VAT in accounting
    currency) the Typst page prints too, from the same composed values."""
    data = json.loads(LAYOUTS.get("b2b-invoice").sample_data())
    data.update({
        "preceding_invoices": [{"number": "F-2026-00001", "issue_date": "2026-01-15"}],
        "period": {"start": "2026-03-01", "end": "2026-03-31"},
        "contract_reference": "AVTALE-2025-17",
        "delivery": {"date": "2026-03-01"},
        "prepaid_amount": "500.00",
        "round_payable_to": "1",
        "vat_accounting": {"currency": "EUR", "exchange_rate": "0.0862"},
    })
    data["lines"][0].update({
        "note": "Timeliste vedlagt", "period": {"start": "2026-03-01", "end": "2026-03-15"},
        "allowances_charges": [{"is_charge": False, "amount": "100.00",
                                "reason": "Volumrabatt"}]})
    comp, layout = composition("b2b-invoice", data)
    ctx = comp.context
    expected = [
        "F-2026-00001", ctx["invoice"]["period"], ctx["invoice"]["delivery"]["date"],
        "AVTALE-2025-17", "Timeliste vedlagt", ctx["lines"][0]["period"], "Volumrabatt",
        ctx["totals"]["prepaid_deducted"], ctx["totals"]["rounding"],
        ctx["totals"]["tax_in_accounting_currency"], ctx["totals"]["payable"],
    ]
    assert all(expected), expected
    for name in ("weasyprint", "typst"):
        pdf = print_engines(name, layout).render(layout, comp).content
        text = " ".join(pages_text(pdf)).replace("\u00a0", " ").replace("\u202f", " ")
        missing = [value for value in expected
                   if value.replace("\u00a0", " ").replace("\u202f", " ") not in text]
        assert not missing, (name, missing)


def test_the_b2b_invoice_paid_by_other_means_says_so_with_both_engines():
    """An invoice paid by card or direct debit (BG-17 absent, BG-18/BG-19 given) has no
    account to pay to: both pages tell the buyer there is nothing to pay by hand."""
    data = json.loads(LAYOUTS.get("b2b-invoice").sample_data())
    data["payment"]["means"] = [{"code": "48", "card": {
        "pan": "5213 88** **** 4821", "holder": "KARI N", "network": "VISA"}}]
    data["seller"].pop("payment_account")
    comp, layout = composition("b2b-invoice", data)
    sentence = comp.context["labels"]["paid_by_other_means"]
    for name in ("weasyprint", "typst"):
        pdf = print_engines(name, layout).render(layout, comp).content
        text = " ".join(" ".join(pages_text(pdf)).split())
        assert " ".join(sentence.split()[:4]) in text, name


def test_a_process_printing_only_typst_layouts_never_imports_weasyprint():
    """A bulk worker builds its pipeline and renders every channel of a card invoice without
    loading WeasyPrint (Pango, HarfBuzz, fontconfig through cffi: about 0.8 s of CPU per
    worker process start); the welcome letter in the same process loads it then."""
    script = """if True:
        import json, sys
        from datetime import UTC, datetime
        import server.jobs.worker
        from server.channels import Renderers
        from server.compose.composer import ComposeRequest, compose
        from server.compose.layouts import LayoutRegistry
        layouts, renderers = LayoutRegistry(), Renderers()
        now = datetime(2026, 3, 2, tzinfo=UTC)
        def render(layout_id):
            layout = layouts.get(layout_id)
            composition = compose(ComposeRequest(tenant="t", layout=layout,
                data=layout.sample_data(), document_id="01IMPORTS", now=now))
            return {o.channel.value for o in renderers.render(composition, layout)}
        channels = render("card-invoice")
        typst_only = "weasyprint" in sys.modules
        render("welcome-letter")
        print(json.dumps([sorted(channels), typst_only, "weasyprint" in sys.modules]))
    """
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                            check=True, cwd=DEFAULT_LAYOUTS_DIR.parent)
    channels, typst_only, after_letter = json.loads(result.stdout.splitlines()[-1])
    assert "print" in channels and len(channels) > 1, channels
    assert typst_only is False
    assert after_letter is True
