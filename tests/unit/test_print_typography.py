"""What the printed pages show, read back from the PDF with pdfium (tests/pdf_inspect.py):
the Swedish sample without a locale is a Swedish document with an OCR / bankgiro slip,
amounts have tabular figures and dates and words do not, negative amounts carry the locale's
one minus sign, and a transaction table never leaves one row alone on a page."""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime
from typing import Any

import pytest

from server.channels.pdf import PdfEngine, PrintEngines
from server.compose.composer import ComposeRequest, compose
from server.compose.layouts import Layout
from tests.layouts import shipped
from tests.pdf_inspect import advances, font_size, pages_text

LAYOUTS = shipped()
NOW = datetime(2026, 3, 2, 8, 0, tzinfo=UTC)
CARD = LAYOUTS.get("card-invoice")


@pytest.fixture(scope="module", params=[None, "weasyprint"], ids=["layout-engine", "weasyprint"])
def engine(request: pytest.FixtureRequest) -> PdfEngine:
    """The engine each layout's manifest names (Typst for the 2.0.0 volume layouts), and
    WeasyPrint, which designers may still choose for them."""
    return PrintEngines(request.param)


def sample(layout: Layout, name: str = "sample.json") -> dict[str, Any]:
    return json.loads((layout.path / name).read_text(encoding="utf-8"))


def pdf(engine: PdfEngine, layout: Layout, data: dict[str, Any],
        locale: str | None = None) -> bytes:
    composition = compose(ComposeRequest(tenant="fjordbank", layout=layout,
                                         data=json.dumps(data), document_id="01JTEST",
                                         now=NOW, locale=locale))
    return engine.render(layout, composition).content


@pytest.fixture(scope="module")
def samples(engine) -> dict[str, bytes]:
    """The card-invoice samples as a core system sends them (no locale), per locale."""
    return {"nb-NO": pdf(engine, CARD, sample(CARD)),
            "sv-SE": pdf(engine, CARD, sample(CARD, "sample-sv-SE.json"))}


@pytest.fixture(scope="module")
def swedish(samples) -> bytes:
    """The sv-SE sample without a locale."""
    return samples["sv-SE"]


@pytest.mark.parametrize("version", ["1.0.0", "2.0.0"])
def test_swedish_sample_without_locale_prints_a_swedish_ocr_bankgiro_slip(engine, version):
    layout = LAYOUTS.get("card-invoice", version)
    pages = pages_text(pdf(engine, layout, sample(layout, "sample-sv-SE.json")))
    whole, slip = " ".join(pages), pages[-1]
    assert "Kontoutdrag kreditkort" in whole and "Sammanställning" in whole
    assert "INBETALNING/GIRERING AVI" in slip
    assert "OCR-NUMMER 46 02771 10223" in slip or "OCR-NUMMER" in slip and "46 02771 10223" in slip
    assert "TILL BANKGIRONUMMER" in slip and "5678-4127" in slip
    for norwegian in ("KID", "Kundeidentifikasjon", "TIL KONTO", "Kredittkortfaktura"):
        assert norwegian.lower() not in whole.lower(), norwegian


def _digits(pairs: list[tuple[str, float]]) -> list[float]:
    return [round(width, 2) for char, width in pairs if char.isdigit()]


def test_amounts_have_tabular_figures_dates_and_numbers_with_hyphens_do_not(swedish):
    amount = _digits(advances(swedish, "12 965,81"))  # summary column
    assert len(set(amount)) == 1, amount
    tx = _digits(advances(swedish, "1 060,00"))  # transaction amount column
    assert len(set(tx)) == 1, tx
    units = _digits(advances(swedish, "12 691", page_index=1))  # the slip's kronor
    assert len(set(units)) == 1, units
    for text, page in (("2026-02-16", 0), ("2026-02-28", 0), ("5678-4127", 1)):
        pairs = advances(swedish, text, page_index=page)
        digits = _digits(pairs)
        hyphen = next(width for char, width in pairs if char == "-")
        assert len(set(digits)) > 1, text  # proportional: "1" is narrower than "0"
        assert hyphen < max(digits), text  # not widened to a digit's width


def test_words_with_hyphens_are_not_widened(engine):
    b2b = LAYOUTS.get("b2b-invoice")
    document = pdf(engine, b2b, sample(b2b))
    hyphen = dict(advances(document, "MVA-spesifikasjon"))["-"]
    # Inter 4.1 SemiBold (the heading): the proportional hyphen is 0.465 em, the tabular
    # one (hyphen.tf, a digit's width) 0.647 em
    assert hyphen / font_size(document, "MVA-spesifikasjon") < 0.55


@pytest.mark.parametrize("locale", ["nb-NO", "sv-SE"])
def test_negative_amounts_print_with_the_locales_minus_sign(samples, locale):
    """nb-NO and sv-SE both take U+2212 (server/compose/formatting.py minus_sign)."""
    text = " ".join(pages_text(samples[locale]))
    negatives = re.findall(r"(?<![\w\-\u2212])[-\u2212]\d[\d ]*,\d\d", text)
    assert len(negatives) >= 3  # payments received, refunds, a credited transaction
    assert all(value.startswith("\u2212") for value in negatives), negatives


def _transactions(count: int, fees: int) -> dict[str, Any]:
    data = sample(CARD, "sample-sv-SE.json")
    data["transactions"] = [
        {"date": f"2026-02-{1 + i % 28:02d}", "description": f"TX{i:03d} BUTIK",
         "amount": "10.00"} for i in range(count)]
    data["fees"] = [{"description": f"Avgift {k}", "amount": "1.00"} for k in range(fees)]
    return data


# (transactions, fees): without keeping rows together these leave one row alone on a page:
# 19 rows put the last one on page 2 (a widow), 20 fees push the table so far down that only
# its first row fits on page 1 (an orphan).
@pytest.mark.parametrize(("count", "fees"), [(19, 1), (3, 20)])
def test_a_transaction_table_never_leaves_one_row_alone_on_a_page(engine, count, fees):
    pages = pages_text(pdf(engine, CARD, _transactions(count, fees), "sv-SE"))
    rows = [len(re.findall(r"TX\d{3}", page)) for page in pages]
    assert sum(rows) == count
    assert all(n != 1 for n in rows), rows
    first = next(i for i, n in enumerate(rows) if n)
    assert "Transaktioner" in pages[first]  # the heading travels with its first rows


def test_invoice_lines_never_leave_one_line_alone_on_a_page(engine):
    """b2b-invoice: 17 lines put the last one alone on page 2 without keeping rows together."""
    b2b = LAYOUTS.get("b2b-invoice")
    data = sample(b2b)
    line, data["allowances_charges"] = data["lines"][0], []
    data["lines"] = [dict(line, id=str(i + 1), name=f"LINE{i:03d}") for i in range(17)]
    pages = pages_text(pdf(engine, b2b, data))
    rows = [len(re.findall(r"LINE\d{3}", page)) for page in pages]
    assert sum(rows) == 17 and len(rows) > 1
    assert all(n != 1 for n in rows), rows
