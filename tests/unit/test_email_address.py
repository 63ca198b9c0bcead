"""International email addresses (issue 11, item 6): checked by email-validator while
composing, domains sent as IDNA A-labels, a non-ASCII local part as an SMTPUTF8 message.

The `.eml` is parsed back with the standard library; the SMTP session itself (SMTPUTF8
negotiated with a real server) is in tests/integration/test_email_smtputf8.py.
"""

from __future__ import annotations

import email
import json
from datetime import UTC, datetime
from email import policy

import pytest

from server.channels import Renderers
from server.channels.pdf import RenderedPdf
from server.compose.composer import ComposeRequest, compose
from server.compose.model import Channel
from server.errors import InvalidInput
from tests.layouts import shipped
from tests.pdf_inspect import BLANK_PDF

LAYOUTS = shipped()
NOW = datetime(2026, 3, 2, 7, 30, tzinfo=UTC)


class FakePdf:
    def render(self, layout, composition) -> RenderedPdf:
        return RenderedPdf(content=BLANK_PDF, pages=1)


RENDERERS = Renderers(FakePdf(), mark_zones=())  # no real PDF to check


def eml(address: str, layout_id: str = "card-invoice") -> tuple[bytes, dict]:
    layout = LAYOUTS.get(layout_id)
    data = json.loads(layout.sample_data())
    data["customer"]["email"] = address
    composition = compose(ComposeRequest(tenant="t", layout=layout, data=json.dumps(data),
                                         document_id="01JN4Q7W2E", now=NOW,
                                         channels=(Channel.EMAIL,)))
    [output] = RENDERERS.render(composition, layout)
    return output.content, dict(output.facts)


def to_header_line(content: bytes) -> bytes:
    head = content.split(b"\r\n\r\n", 1)[0]
    return next(line for line in head.split(b"\r\n") if line.startswith(b"To: "))


@pytest.mark.parametrize(("address", "sent_as"), [
    ("kari@bø.no", b"kari@xn--b-5ga.no"),  # the example
    ("kari@BØ.no", b"kari@xn--b-5ga.no"),
    ("ola@exämple.de", b"ola@xn--exmple-cua.de"),
    ("ivan@пример.рф", b"ivan@xn--e1afmkfd.xn--p1ai"),
    ("nikos@παράδειγμα.gr", b"nikos@xn--hxajbheg2az3al.gr"),
    ("kari@xn--b-5ga.no", b"kari@xn--b-5ga.no"),
])
def test_international_domains_are_sent_as_idna(address: str, sent_as: bytes) -> None:
    content, facts = eml(address)
    assert to_header_line(content) == b"To: Kari Nordmann <" + sent_as + b">"
    assert b"=?utf-8?" not in to_header_line(content)
    assert content.isascii() and "smtputf8" not in facts
    parsed = email.message_from_bytes(content, policy=policy.default)
    assert parsed["To"].addresses[0].addr_spec == sent_as.decode()


def test_ascii_address_is_written_as_before() -> None:
    content, facts = eml("kari.nordmann@example.no")
    assert to_header_line(content) == b"To: Kari Nordmann <kari.nordmann@example.no>"
    assert "smtputf8" not in facts


def test_non_ascii_local_part_makes_an_smtputf8_message() -> None:
    content, facts = eml("kåre.øvrebø@bø.no")
    assert facts["smtputf8"] is True
    # RFC 6532: the address in UTF-8 itself, never as an encoded-word; domain as IDNA
    line = to_header_line(content)
    assert line == "To: Kari Nordmann <kåre.øvrebø@xn--b-5ga.no>".encode()
    parsed = email.message_from_string(content.decode("utf-8"), policy=policy.SMTPUTF8)
    assert parsed["To"].addresses[0].addr_spec == "kåre.øvrebø@xn--b-5ga.no"
    # the body parts are unchanged: quoted-printable, so only the headers need SMTPUTF8
    html = parsed.get_body(("html",)).get_content()
    assert "kåre.øvrebø@bø.no" in html  # "sent to" footer, as the customer reads it
    assert parsed["Subject"].startswith("Kredittkortfaktura")


@pytest.mark.parametrize(("address", "says"), [
    ("kari@bø..no", "two periods"),
    ("kari..nordmann@example.no", "two periods"),
    ("kari@-example-.no", "hyphen"),
    ("x" * 65 + "@example.no", "too long"),
    ("kari@exa mple.no", "does not match"),  # the schema's pattern already
    ("kari@example.no.", "period"),
])
def test_invalid_addresses_are_refused_naming_the_field(address: str, says: str) -> None:
    layout = LAYOUTS.get("card-invoice")
    data = json.loads(layout.sample_data())
    data["customer"]["email"] = address
    with pytest.raises(InvalidInput) as info:
        compose(ComposeRequest(tenant="t", layout=layout, data=json.dumps(data),
                               document_id="d", now=NOW))
    [violation] = info.value.violations
    assert violation.field == "$.customer.email"
    assert says in violation.description.lower()


def test_every_layout_checks_the_address() -> None:
    for layout in LAYOUTS.latest():
        data = json.loads(layout.sample_data())
        data["customer"]["email"] = "kari@bø..no"
        with pytest.raises(InvalidInput) as info:
            compose(ComposeRequest(tenant="t", layout=layout, data=json.dumps(data),
                                   document_id="d", now=NOW))
        assert info.value.violations[0].field == "$.customer.email", layout.ref
