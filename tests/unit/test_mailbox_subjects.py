"""A digital mailbox's subject longer than the service takes ends at the last space before
the limit, never inside a word (Kivra 60 characters, Digipost 255: api_v8.xsd)."""

from __future__ import annotations

import json

from lxml import etree

from server.delivery.providers import digipost, kivra

# 65 characters; the first 60 end inside "Kortservice" ("... Nordkort Kortservi").
KIVRA_SUBJECT = "Kontoutdrag kreditkort februari 2026 från Nordkort Kortservice AB"


def test_kivra_subject_ends_between_words():
    payload = json.loads(kivra.content_payload(
        "197002021234", {"subject": KIVRA_SUBJECT, "generated_at": "2026-03-02",
                         "payment": None}, b"%PDF-1.7", "doc.pdf"))
    assert payload["subject"] == "Kontoutdrag kreditkort februari 2026 från Nordkort"


def test_kivra_subject_that_fits_is_sent_as_given():
    subject = "Kontoutdrag kreditkort"
    payload = json.loads(kivra.content_payload(
        "197002021234", {"subject": subject, "generated_at": "2026-03-02"}, b"%PDF", "d.pdf"))
    assert payload["subject"] == subject


def test_digipost_subject_ends_between_words():
    words = "Kredittkortfaktura for Fjordbank Mastercard Platinum med reiseforsikring"
    subject = " ".join([words] * 4)  # 295 characters, the 255th inside a word
    assert len(subject) > 255 and subject[254] != " " and subject[255] != " "
    xml = digipost.message_xml("m-1", "991825827", "15076500565", "u-1",
                               {"subject": subject, "payment": None})
    sent = etree.fromstring(xml).findtext(f"{{{digipost.V8}}}primary-document/"
                                          f"{{{digipost.V8}}}subject")
    assert len(sent) <= 255 and subject.startswith(sent)
    assert subject[len(sent)] == " "  # a whole word last
    assert sent == subject[:subject.rfind(" ", 0, 256)]
