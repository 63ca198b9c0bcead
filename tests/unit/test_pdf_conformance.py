"""Every layout's print PDF, from every engine it has a template for, is archive-grade
PDF/A-3 and accessible PDF/UA-1 as far as machines can check (tests/pdf_conformance.py:
the pdfua rules and the PDF/A-3 essentials); Factur-X keeps both after embedding its XML.

WeasyPrint 70 tags every HTML table as a data /Table with unscoped /TH cells; the
Fjordbank 2.0.0 HTML lays out the masthead, the signatures and the giro slip's parties with
tables that have no header cells (tables lay out faster than flex in WeasyPrint; design §5).
server/channels/table_tags.py settles those tags before the PDF is identified as PDF/UA-1,
so both engines' pages pass every rule (UA-15-003 included).
"""

from __future__ import annotations

import json
from datetime import UTC, datetime

import facturx
import pytest

from server.channels.einvoice_channel import render_einvoice
from server.channels.pdf import PrintEngines, engine_of, pdf_standards, render_print
from server.compose.composer import ComposeRequest, compose
from server.compose.layouts import PRINT_ENGINES
from server.compose.model import Channel
from tests.layouts import shipped
from tests.pdf_conformance import pdf_a_problems, pdf_ua_findings

LAYOUTS = shipped()
NOW = datetime(2026, 11, 22, tzinfo=UTC)
ENGINES = PrintEngines()


def engines(layout) -> list[str]:
    """The layout's own engine first, then any other engine it keeps a template for."""
    section = layout.section("print")
    others = [e for e, key in PRINT_ENGINES.items() if section.get(key) and e != engine_of(layout)]
    return [engine_of(layout), *others]


CASES = [(layout, sample.name, engine) for layout in LAYOUTS.latest()
         if Channel.PRINT in layout.channels
         for sample in sorted(layout.path.glob("sample*.json"))
         for engine in engines(layout)]


def render(layout, sample: str, engine: str) -> bytes:
    suffix = sample.removeprefix("sample").removesuffix(".json").removeprefix("-")
    comp = compose(ComposeRequest(
        tenant="t", layout=layout, data=(layout.path / sample).read_text(encoding="utf-8"),
        document_id="01CONFORM", now=NOW, channels=(Channel.PRINT,),
        locale=suffix if suffix in layout.locales else None))
    return ENGINES.engine(engine).render(layout, comp).content


@pytest.mark.parametrize(("layout", "sample", "engine"), CASES,
                         ids=[f"{lay.id}-{s}-{e}" for lay, s, e in CASES])
def test_print_pdf_is_pdf_a3_and_pdf_ua1(layout, sample, engine):
    assert set(pdf_standards(layout)) == {"a-3a", "ua-1"}, "every 2.0.0 layout is archive-grade"
    pdf = render(layout, sample, engine)
    assert pdf_a_problems(pdf, ua=True) == []
    assert pdf_ua_findings(pdf) == []


def test_the_checks_see_an_untagged_pdf_a3b():
    """The 1.0.0 layouts stay PDF/A-3b without tags (they must re-render exactly): the
    checks say so, so they are not vacuous."""
    layout = LAYOUTS.get("card-invoice", "1.0.0")
    pdf = render(layout, "sample.json", "weasyprint")
    assert pdf_a_problems(pdf, ua=False) == []
    assert pdf_a_problems(pdf, ua=True) == ["XMP pdfuaid:part is None, not '1'"]
    rules = {f.split()[0] for f in pdf_ua_findings(pdf)}
    assert {"UA-01-005", "UA-01-002"} <= rules  # no structure tree, not marked


def test_factur_x_keeps_pdf_a3_and_pdf_ua_after_embedding():
    layout = LAYOUTS.get("b2b-invoice")
    data = json.loads((layout.path / "sample-credit-note.json").read_text(encoding="utf-8"))
    comp = compose(ComposeRequest(tenant="t", layout=layout, data=json.dumps(data),
                                  document_id="01FACTURX", now=NOW,
                                  channels=(Channel.EINVOICE,)))
    print_pdf = render_print(comp, layout, ENGINES)
    assert print_pdf.facts["engine"] == "typst"
    output = render_einvoice(comp, layout, pdf=lambda: print_pdf)
    assert output.facts["syntax"] == "factur-x-en16931"
    assert pdf_a_problems(output.content, ua=True) == []
    assert pdf_ua_findings(output.content) == []
    filename, xml = facturx.get_xml_from_pdf(output.content, check_xsd=False)
    assert filename == "factur-x.xml" and b"CrossIndustryInvoice" in xml
