"""The SMS channel renderer on the shipped layouts: text, facts, shortening, refusals."""

from __future__ import annotations

import json
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path

import pytest

from server.channels.sms_channel import MEDIA_TYPE, render_sms, sms_settings
from server.compose.composer import ComposeRequest, compose
from server.compose.layouts import Layout
from server.compose.model import Channel
from server.errors import InvalidInput
from tests.layouts import shipped

LAYOUTS = shipped()
NOW = datetime(2026, 3, 2, 9, tzinfo=UTC)


def composed(layout_id: str, locale: str = "nb-NO", **customer):
    layout = LAYOUTS.get(layout_id)
    data = json.loads((layout.path / layout.manifest["samples"][locale]).read_text())
    data["customer"].update(customer)
    data["customer"] = {k: v for k, v in data["customer"].items() if v is not None}
    return compose(ComposeRequest(tenant="t", layout=layout, data=json.dumps(data),
                                  document_id="d", now=NOW, locale=locale)), layout


def with_section(layout: Layout, **sms) -> Layout:
    manifest = {**layout.manifest, "sms": {**layout.section("sms"), **sms}}
    return replace(layout, manifest=manifest)


def test_card_invoice_sms_text_and_facts():
    composition, layout = composed("card-invoice")
    output = render_sms(composition, layout)
    text = output.content.decode()
    assert output.channel is Channel.SMS and output.media_type == MEDIA_TYPE
    # Babel's no-break spaces are normalised: the message stays GSM-7
    assert text == ("Hei Kari Nordmann! Fakturaen din fra Fjordbank ASA på 34 708,17 kr "
                    "forfaller 25.03.2026. KID 20 18445 51238.")
    assert output.facts == {"encoding": "GSM-7", "segments": 1, "units": len(text),
                            "parts": json.dumps([text], ensure_ascii=False),
                            "data_coding": 0, "template": "sms.txt", "adapted": ""}


def test_swedish_reminder_uses_ocr():
    composition, layout = composed("payment-reminder", "sv-SE", mobile="+46701234567")
    text = render_sms(composition, layout).content.decode()
    assert "OCR 46 02771 10322" in text and "Betala 2 977,40 kr senast 2026-02-24" in text


def test_long_issuer_name_is_shortened_only_there():
    composition, layout = composed("card-invoice")
    issuer = {**composition.context["issuer"], "name": "Fjordbank " + "Kortforvaltning " * 8}
    long = replace(composition, context={**composition.context, "issuer": issuer})
    output = render_sms(long, layout)
    text = output.content.decode()
    assert output.facts["segments"] == 1 and len(text) <= 160
    assert text.startswith("Hei Kari Nordmann! Fakturaen din fra Fjordbank Kortforvaltning")
    assert "... på 34 708,17 kr" in text and text.endswith("KID 20 18445 51238.")


def test_too_long_without_shortenable_field_is_refused():
    composition, layout = composed("card-invoice")
    issuer = {**composition.context["issuer"], "name": "Fjordbank " * 20}
    long = replace(composition, context={**composition.context, "issuer": issuer})
    no_shortening = with_section(layout, shortenable="")
    with pytest.raises(InvalidInput) as info:
        render_sms(long, no_shortening)
    [violation] = info.value.violations
    assert violation.field == "sms.max_segments" and "allows 1" in violation.description


def test_non_gsm_character_switches_to_ucs2():
    composition, layout = composed("card-invoice")
    issuer = {**composition.context["issuer"], "name": "Bänk 💳"}
    output = render_sms(replace(composition, context={**composition.context, "issuer": issuer}),
                        with_section(layout, max_segments=3))
    assert (output.facts["encoding"], output.facts["data_coding"]) == ("UCS-2", 8)
    assert output.facts["segments"] == 2  # > 70 UTF-16 units


def test_name_forcing_ucs2_that_cannot_be_shortened_is_refused_by_a_layout_that_allows_nothing():
    # 1.0.0 has one template and no transliteration: rendered anyway, it refuses.
    layout = LAYOUTS.get("card-invoice", "1.0.0")
    data = json.loads(layout.sample_data())
    data["customer"]["name"] = "Šárka Nováková-Lindqvist"
    composition = compose(ComposeRequest(tenant="t", layout=layout, data=json.dumps(data),
                                         document_id="d", now=NOW))
    assert Channel.SMS not in composition.channel_plan.channels  # the plan skipped it
    with pytest.raises(InvalidInput) as info:
        render_sms(composition, layout)
    assert info.value.violations[0].field == "sms.max_segments"
    assert "2 segments" in info.value.violations[0].description


def test_name_forcing_ucs2_is_written_in_gsm7_letters_where_the_layout_allows_it():
    composition, layout = composed("card-invoice", name="Šárka Nováková-Lindqvist")
    output = render_sms(composition, layout)
    assert output.content.decode().startswith("Hei Sarka Novakova-Lindqvist! Fakturaen din")
    assert (output.facts["encoding"], output.facts["segments"]) == ("GSM-7", 1)
    assert (output.facts["template"], output.facts["adapted"]) == ("sms.txt", "transliterated")


def test_recipient_without_mobile_cannot_get_sms():
    composition, layout = composed("payment-reminder")
    without = replace(composition, recipient=replace(composition.recipient, mobile=None))
    with pytest.raises(InvalidInput) as info:
        render_sms(without, layout)
    assert info.value.violations[0].field == "$.customer.mobile"


def test_shipped_sms_templates_exist():
    for layout_id in ("card-invoice", "payment-reminder"):
        layout = LAYOUTS.get(layout_id)
        assert Channel.SMS in layout.channels
        for template in sms_settings(layout).templates:
            assert Path(layout.path / template).is_file()


def test_the_renderer_reuses_the_plan_checks_fit_of_the_same_document(monkeypatch):
    """The composer's `check_sms` and `render_sms` fit the same document one after the other:
    its templates are rendered once for both; another document (another context object,
    locale or layout) is fitted afresh."""
    import server.channels.sms_channel as sms_channel

    composition, layout = composed("card-invoice")
    other, _ = composed("card-invoice")
    swedish, _ = composed("card-invoice", "sv-SE")
    rendered = []
    real = sms_channel._render
    monkeypatch.setattr(sms_channel, "_render",
                        lambda lay, template, context: rendered.append(template)
                        or real(lay, template, context))
    assert sms_channel.check_sms(composition, layout) is None
    once = len(rendered)
    assert once >= 1
    text = render_sms(composition, layout).content
    assert len(rendered) == once
    assert render_sms(other, layout).content == text and len(rendered) == 2 * once
    assert render_sms(swedish, layout).content != text and len(rendered) > 2 * once
