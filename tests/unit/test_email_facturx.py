"""Which PDF the e-mail attaches: the plan's Factur-X when the layout asks for it
(`[email] attach_facturx`, card-invoice 2.2.0 on), else the print PDF; each rendered once.

QA: the e-mail of a document whose plan also made a Factur-X (card-invoice's "digital" plan)
attached the print PDF, and the Factur-X, which no network carries, was only archived: a
buyer who gets the invoice by e-mail never received the machine-readable one. Real PDFs here
(the print engine of the layout), since the Factur-X is an incremental update of the print
PDF/A-3 that pikepdf reads back.
"""

from __future__ import annotations

import email
import io
import json
from dataclasses import replace
from datetime import UTC, datetime
from email import policy

import pikepdf
import pytest
from lxml import etree

from server.channels import Renderers
from server.channels import email as email_channel
from server.channels.email import email_attachment, render_email
from server.channels.pdf import PrintEngines
from server.compose.composer import ComposeRequest, compose
from server.compose.layouts import LayoutError
from server.compose.model import Channel, Output
from server.compose.plan import FACTURX
from tests.layouts import shipped

LAYOUTS = shipped()
NOW = datetime(2026, 3, 2, 7, 30, tzinfo=UTC)
CII = "{urn:un:unece:uncefact:data:standard:CrossIndustryInvoice:100}CrossIndustryInvoice"


class CountingEngines:
    """The layouts' own print engines, counting their renders."""

    def __init__(self):
        self.engines = PrintEngines()
        self.calls = 0

    def render(self, layout, composition):
        self.calls += 1
        return self.engines.render(layout, composition)


def composed(version: str | None = None, preferences=("email",), channels=()):
    """The card-invoice sample for a customer who prefers `preferences` (email: the
    "digital" plan, e-mail and SMS with an e-invoice, which for a customer without a Peppol
    id in Norway is a Factur-X), with `channels` requested when given."""
    layout = LAYOUTS.get("card-invoice", version)
    data = json.loads(layout.sample_data())
    data["customer"]["preferences"] = list(preferences)
    return compose(ComposeRequest(
        tenant="nordkort", layout=layout, data=json.dumps(data), document_id="01JN4Q7W2E",
        now=NOW, channels=list(channels))), layout


def rendered(version: str | None = None, **kwargs):
    engines = CountingEngines()
    composition, layout = composed(version, **kwargs)
    outputs = {o.channel: o for o in Renderers(engines).render(composition, layout)}
    return outputs, engines.calls


def the_attachment(mailed: Output) -> bytes:
    message = email.message_from_bytes(mailed.content, policy=policy.default)
    [attachment] = list(message.iter_attachments())
    assert attachment.get_content_type() == "application/pdf"
    return attachment.get_content()


def test_the_email_attaches_the_facturx_when_the_plan_makes_one():
    outputs, renders = rendered()
    assert set(outputs) == {Channel.EMAIL, Channel.SMS, Channel.EINVOICE}
    facturx, mailed = outputs[Channel.EINVOICE], outputs[Channel.EMAIL]
    assert facturx.facts["syntax"] == FACTURX
    attached = the_attachment(mailed)
    assert attached == facturx.content  # the archived Factur-X itself
    assert renders == 1  # the print PDF once, for the Factur-X and so for the e-mail
    assert mailed.facts["attachment"] == FACTURX and mailed.facts["pdf_attached"] is True

    with pikepdf.open(io.BytesIO(attached)) as pdf:
        assert list(pdf.attachments) == ["factur-x.xml"]
        xml = pdf.attachments["factur-x.xml"].get_file().read_bytes()
        assert etree.fromstring(xml).tag == CII
        [spec] = list(pdf.Root.AF)
        assert spec.AFRelationship == pikepdf.Name.Data  # the pages and the XML agree
        assert spec.UF == "factur-x.xml"


def test_the_email_attaches_the_print_pdf_when_the_plan_makes_no_facturx():
    # requested without the e-invoice: the print PDF, as before
    outputs, renders = rendered(channels=(Channel.EMAIL, Channel.PRINT))
    assert renders == 1
    assert the_attachment(outputs[Channel.EMAIL]) == outputs[Channel.PRINT].content
    assert outputs[Channel.EMAIL].facts["attachment"] == "print"
    with pikepdf.open(io.BytesIO(outputs[Channel.PRINT].content)) as pdf:
        assert not pdf.attachments and "/AF" not in pdf.Root

    # a layout version that does not ask for it (2.1.0 is immutable): its own bytes again
    outputs, renders = rendered("2.1.0")
    assert set(outputs) == {Channel.EMAIL, Channel.SMS, Channel.EINVOICE} and renders == 1
    attached = the_attachment(outputs[Channel.EMAIL])
    assert attached != outputs[Channel.EINVOICE].content
    with pikepdf.open(io.BytesIO(attached)) as pdf:
        assert not pdf.attachments
    assert outputs[Channel.EMAIL].facts["attachment"] == "print"
    composition, layout = composed("2.1.0")
    assert email_attachment(composition, layout) == Channel.PRINT


def test_the_email_takes_no_other_pdf_than_the_one_it_attaches():
    every = (Channel.EMAIL, Channel.PRINT, Channel.EINVOICE)
    outputs, _ = rendered(channels=every)
    printed, facturx = outputs[Channel.PRINT], outputs[Channel.EINVOICE]
    assert the_attachment(outputs[Channel.EMAIL]) == facturx.content
    composition, layout = composed(channels=every)
    with pytest.raises(ValueError, match="attaches the einvoice output, not the print one"):
        render_email(composition, layout, pdf=lambda: printed)
    old, old_layout = composed("2.1.0", channels=every)
    with pytest.raises(ValueError, match="attaches the print output, not the einvoice one"):
        render_email(old, old_layout, pdf=lambda: facturx)


def test_attach_facturx_needs_attach_pdf():
    _, layout = composed()
    section = {**layout.section("email"), "attach_pdf": False}
    broken = replace(layout, manifest={**layout.manifest, "email": section})
    with pytest.raises(LayoutError, match="attach_facturx replaces the attached print PDF"):
        email_channel.email_settings(broken, "nordkort")
