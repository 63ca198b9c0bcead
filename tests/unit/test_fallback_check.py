"""The print page asked for the plan's fallbacks while rendering (server.channels.
fallback_check): with the layouts' real Typst engine, counted, so the PDF is rendered once
at most; text out of the envelope window skips every fallback carrying the PDF, ink in a
mark zone only print; the answer crosses the render pool's process boundary."""

from __future__ import annotations

import json
from datetime import UTC, datetime

import pytest

from server.channels import Renderers
from server.channels.pdf import PrintEngines
from server.channels.pool import RenderPool
from server.compose.composer import ComposeRequest, compose
from server.compose.layouts import DEFAULT_LAYOUTS_DIR
from server.compose.model import Channel
from server.printing.profiles import Rect
from server.printing.zones import MarkZone
from tests.layouts import shipped

LAYOUTS = shipped()
NOW = datetime(2026, 11, 22, 12, tzinfo=UTC)
WORDS = "Wi " * 40
WHY = "the print page cannot hold this document's text"


class Counted:
    """The real engines, counting the PDFs they render."""

    def __init__(self) -> None:
        self.inner = PrintEngines()
        self.renders = 0

    def render(self, layout, composition):
        self.renders += 1
        return self.inner.render(layout, composition)


def reminder(long_address: bool = False, channels=(), **customer):
    """The payment reminder's sample: plan SMS, then e-mail (PDF attached), then print."""
    layout = LAYOUTS.get("payment-reminder")
    data = json.loads(layout.sample_data())
    data["customer"].update(customer)
    data["customer"] = {k: v for k, v in data["customer"].items() if v is not None}
    if long_address:
        data["customer"].update(name=WORDS[:70], address={
            "lines": [WORDS[:70], WORDS[:70]], "postal_code": "0358", "city": WORDS[:60],
            "country": "NO"})
    return compose(ComposeRequest(tenant="t", layout=layout, data=json.dumps(data),
                                  document_id="01FALLBACK", now=NOW, channels=channels)), layout


def test_an_sms_first_plan_renders_the_pdf_once_for_its_fallbacks_and_keeps_them():
    engine = Counted()
    comp, layout = reminder()
    assert comp.channel_plan.channels == (Channel.SMS,)
    assert comp.channel_plan.fallbacks == (Channel.EMAIL, Channel.PRINT)
    rendering = Renderers(engine).render_planned(comp, layout)
    assert engine.renders == 1 and [o.channel for o in rendering.outputs] == [Channel.SMS]
    assert rendering.unfit_fallbacks == () and rendering.applied_to(comp) is comp


def test_the_print_page_refuses_the_fallbacks_carrying_the_pdf():
    comp, layout = reminder(long_address=True)
    rendering = Renderers(Counted()).render_planned(comp, layout)
    plan = rendering.applied_to(comp).channel_plan
    assert plan.channels == (Channel.SMS,) and plan.fallbacks == ()
    assert [s.channel for s in plan.skipped] == [Channel.EMAIL, Channel.PRINT]
    for skipped in plan.skipped:
        assert skipped.reason.startswith(WHY) and "envelope window" in skipped.reason
        assert skipped.field == "$.customer.name" and len(skipped.reason) <= 300


def test_a_planned_pdf_answers_for_the_fallbacks_without_a_second_render():
    engine = Counted()
    comp, layout = reminder(channels=(Channel.EMAIL,))  # the e-mail attaches the PDF
    assert Channel.PRINT in comp.channel_plan.fallbacks
    rendering = Renderers(engine).render_planned(comp, layout)
    assert engine.renders == 1 and rendering.unfit_fallbacks == ()


def test_ink_in_a_mark_zone_skips_print_but_not_the_email_attachment():
    comp, layout = reminder()
    everywhere = MarkZone("test-line", "omr", Rect(0, 0, 210, 297))  # the whole sheet
    rendering = Renderers(Counted(), mark_zones=[everywhere]).render_planned(comp, layout)
    [(channel, unfit)] = rendering.unfit_fallbacks
    assert channel is Channel.PRINT and "test-line" in unfit.reason
    assert rendering.applied_to(comp).channel_plan.fallbacks == (Channel.EMAIL,)


def test_no_fallback_carrying_the_pdf_renders_nothing_more():
    engine = Counted()
    comp, layout = reminder(channels=(Channel.SMS,), email=None, preferences=["digital_only"])
    assert comp.channel_plan.fallbacks == ()
    Renderers(engine).render_planned(comp, layout)
    assert engine.renders == 0


@pytest.fixture(scope="module")
def pool():
    pool = RenderPool(DEFAULT_LAYOUTS_DIR, workers=1)
    pool.start()
    yield pool
    pool.close()


def test_the_answer_crosses_the_render_pool(pool):
    comp, layout = reminder(long_address=True)
    pooled = pool.render_planned(comp, layout)
    local = Renderers().render_planned(comp, layout)
    assert pooled.unfit_fallbacks == local.unfit_fallbacks
    assert [c for c, _ in pooled.unfit_fallbacks] == [Channel.EMAIL, Channel.PRINT]


def test_a_fallback_renders_the_print_copy_of_a_replaceable_merchant_text():
    # a card invoice whose merchant text has an emoji: the print PDF drops it
    # ([print] replace_unprintable); the fallback's check renders that copy too, so the
    # letter fallback stays instead of being skipped for a glyph Typst cannot draw
    from dataclasses import replace as changed

    from server.compose.plan import ChannelPlan

    layout = LAYOUTS.get("card-invoice")
    data = json.loads(layout.sample_data())
    data["transactions"][0]["description"] = "KAFFEBAREN \u2615"
    comp = compose(ComposeRequest(tenant="t", layout=layout, data=json.dumps(data),
                                  document_id="01FALLBACK", now=NOW, channels=(Channel.SMS,)))
    comp = changed(comp, channel_plan=ChannelPlan((Channel.SMS,), fallbacks=(Channel.PRINT,)))
    engine = Counted()
    rendering = Renderers(engine).render_planned(comp, layout)
    assert engine.renders == 1
    assert rendering.applied_to(comp).channel_plan.fallbacks == (Channel.PRINT,)
