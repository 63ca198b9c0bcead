"""A card network's merchant text with an emoji or a script the print fonts lack does not
stop the invoice (`[print] replace_unprintable`, server/channels/glyphs.py): the print PDF
drops the symbols and prints other such characters as "?", the e-mail keeps them; a name
or an address with the same characters is still refused, naming the field."""

from __future__ import annotations

import email
import email.policy
import io
import json
from datetime import UTC, datetime
from pathlib import Path

import pikepdf
import pytest

from server.channels.einvoice_channel import render_einvoice
from server.channels.email import render_email
from server.channels.glyphs import printable
from server.channels.pdf import render_print
from server.compose.composer import ComposeRequest, compose
from server.compose.layouts import LayoutError, load_layout
from server.compose.model import Channel
from server.errors import InvalidInput
from tests.layouts import shipped
from tests.pdf_inspect import pages_text
from tests.print_engines import print_engines

LAYOUTS = shipped()
NOW = datetime(2026, 3, 2, 9, tzinfo=UTC)
COFFEE = "KAFFEBAREN \u2615"  # HOT BEVERAGE: no print font has it
FAMILY = "LEKEBUTIKKEN \U0001f468\u200d\U0001f469\u200d\U0001f467 OSLO"  # a ZWJ sequence
STARBUCKS = "\u661f\u5df4\u514b 7"  # CJK: no print font has it


def card_invoice(**changes: str) -> tuple[dict, object]:
    layout = LAYOUTS.get("card-invoice")
    data = json.loads((layout.path / "sample.json").read_text(encoding="utf-8"))
    for index, description in changes.items():
        data["transactions"][int(index[1:])]["description"] = description
    return data, layout


def composed(data: dict, layout, channels=(Channel.PRINT,)):
    return compose(ComposeRequest(tenant="t", layout=layout, data=json.dumps(data),
                                  document_id="01JTEST", now=NOW, channels=channels))


@pytest.mark.parametrize("engine", ["typst", "weasyprint"])
def test_merchant_descriptors_print_without_what_no_font_draws(engine):
    data, layout = card_invoice(t0=COFFEE, t1=FAMILY, t2=STARBUCKS)
    composition = composed(data, layout)  # the plan asks the print channel: it can carry it
    pdf = render_print(composition, layout, print_engines(engine, layout)).content
    text = " ".join(pages_text(pdf))
    assert "KAFFEBAREN" in text and "\u2615" not in text
    assert "LEKEBUTIKKEN OSLO" in text and "\u200d" not in text  # the sequence dropped whole
    assert "??? 7" in text and "\u661f" not in text  # one "?" per character, not dropped
    assert "REMA 1000 GRÜNERLØKKA" in text  # the other descriptions as they were


def test_only_the_print_copy_changes():
    # the e-mail attaches the Factur-X (the plan makes one), whose pages are the print
    # PDF's, without the emoji; its XML (BT-153 item names) keeps the merchant text as
    # given, and so does the composition every channel shares
    data, layout = card_invoice(t0=COFFEE)
    data["customer"]["email"] = "kari@example.no"
    composition = composed(data, layout, channels=(Channel.EMAIL, Channel.EINVOICE))
    printed = render_print(composition, layout, print_engines(None, layout))
    einvoice = render_einvoice(composition, layout, lambda: printed)
    message = email.message_from_bytes(
        render_email(composition, layout, lambda: einvoice).content, policy=email.policy.default)
    [pdf] = [part.get_content() for part in message.iter_attachments()]
    assert "KAFFEBAREN" in " ".join(pages_text(pdf)) and "\u2615" not in " ".join(pages_text(pdf))
    facturx = einvoice.content
    assert pdf == facturx
    with pikepdf.open(io.BytesIO(facturx)) as document:
        [xml] = [f.get_file().read_bytes() for f in document.attachments.values()]  # factur-x.xml
    assert COFFEE.encode() in xml
    assert printable(composition, layout) is not composition
    assert COFFEE in json.dumps(dict(composition.context), ensure_ascii=False)


@pytest.mark.parametrize(("path", "field"), [
    (("customer", "name"), "$.customer.name"),
    (("customer", "address", "lines", 0), "$.customer.address.lines[0]"),
])
def test_a_name_or_address_is_still_refused(path, field):
    data, layout = card_invoice(t0=COFFEE)  # replaced; the name is not
    node = data
    for part in path[:-1]:
        node = node[part]
    node[path[-1]] = "Kari \u2615"
    with pytest.raises(InvalidInput) as refused:
        composed(data, layout)
    fields = {v.field for v in refused.value.violations}
    assert fields == {field}, refused.value.violations


def test_a_document_every_font_draws_is_not_copied():
    data, layout = card_invoice()
    composition = composed(data, layout)
    assert printable(composition, layout) is composition


def test_the_manifest_names_data_paths(tmp_path: Path):
    source = LAYOUTS.get("card-invoice").path
    import shutil

    target = tmp_path / "card-invoice" / source.name  # the folder its manifest names
    shutil.copytree(source, target)
    shutil.copytree(source.parents[1] / "_shared", tmp_path / "_shared")
    manifest = target / "manifest.toml"
    text = manifest.read_text(encoding="utf-8")
    manifest.write_text(text.replace('replace_unprintable = ["$.transactions[*].description"',
                                     'replace_unprintable = ["transactions.description"'),
                        encoding="utf-8")
    with pytest.raises(LayoutError, match="replace_unprintable"):
        load_layout(target)
