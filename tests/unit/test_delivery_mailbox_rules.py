"""What the mailbox and access point adapters decide before any request: documented limits
(bytes, pages, the left margin measured on the rendered page), national ids, the payment
data each API takes, the Peppol SBDH, and HTTP's Retry-After."""

from __future__ import annotations

import io
import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pikepdf
import pytest
from lxml import etree

from server.delivery.model import Failed, Outgoing, State
from server.delivery.providers import http
from server.delivery.providers.base import ProviderContext, build
from server.delivery.providers.digipost import canonical_request, invoice_xml
from server.delivery.providers.eboks import payment_block
from server.delivery.providers.kivra import content_payload
from server.delivery.providers.mailbox import (
    InvalidNationalId,
    Limits,
    left_margin_mm,
    national_id,
    over_limits,
)
from server.delivery.providers.sbdh import SBDH, NotUbl, instance_identifier, wrap

MM = 72 / 25.4


def pdf_with_a_box(left_mm: float, pages: int = 1) -> bytes:
    """A4 pages with a black box whose left edge is `left_mm` from the page's edge."""
    pdf = pikepdf.new()
    for _ in range(pages):
        page = pdf.add_blank_page(page_size=(595, 842))
        page.Contents = pdf.make_stream(f"0 g {left_mm * MM:.2f} 400 100 50 re f".encode())
    out = io.BytesIO()
    pdf.save(out)
    return out.getvalue()


def test_the_left_margin_is_measured_on_the_rendered_page():
    assert left_margin_mm(pdf_with_a_box(20)) == pytest.approx(20, abs=0.5)
    assert left_margin_mm(pdf_with_a_box(5)) == pytest.approx(5, abs=0.5)
    digipost = Limits(max_pages=20, min_left_margin_mm=15)
    assert over_limits(pdf_with_a_box(20), digipost, "digipost") is None
    refused = over_limits(pdf_with_a_box(5), digipost, "digipost")
    assert refused.startswith("left margin 5.") and "digipost requires at least 15 mm" in refused
    assert over_limits(pdf_with_a_box(20, pages=21), digipost, "digipost") == (
        "21 pages, over digipost's limit of 20")


def test_kivra_counts_the_whole_json_and_refuses_before_sending():
    details = {"subject": "Faktura", "generated_at": "2026-03-02", "payment": None}
    kivra = build("kivra-se", {"type": "kivra", "base_url": "http://127.0.0.1:9",
                               "tenant_key": "k"}, ProviderContext(Path(".")))
    big = pdf_with_a_box(20) + b"%" + b"x" * 800_000  # base64 makes it > 1 MB
    result = kivra.send(Outgoing("d", "t", "doc", "c", "mailbox", "kivra:198503042387", big,
                                 "application/pdf", "m", 1, details={"mailbox": details}))
    assert isinstance(result, Failed) and result.state == State.FAILED
    assert "over kivra's limit of 1048576" in result.reason
    # The payload is the same bytes on every attempt (Kivra's duplicate control).
    assert content_payload("198503042387", details, b"%PDF", "a.pdf") == content_payload(
        "198503042387", dict(reversed(details.items())), b"%PDF", "a.pdf")


def test_a_credit_balance_goes_to_kivra_as_a_letter():
    payment = {"amount": "0.50", "currency": "SEK", "due_date": "2026-03-31",
               "reference": "460277110223", "reference_scheme": "ocr", "account": "56784127",
               "account_kind": "bankgiro"}
    content = json.loads(content_payload("198503042387", {"payment": payment}, b"%", "a.pdf"))
    assert content["type"] == "letter" and "payment_multiple_options" not in content


@pytest.mark.parametrize(("country", "value", "compact"), [
    ("SE", "850304-2387", "198503042387"), ("SE", "198503042387", "198503042387"),
    ("NO", "150765 00565", "15076500565"), ("DK", "010170-1234", "0101701234")])
def test_national_ids(country, value, compact):
    assert national_id(country, value) == compact


def test_a_malformed_national_id_is_a_refused_recipient():
    with pytest.raises(InvalidNationalId):
        national_id("SE", "198503042384")  # wrong Luhn digit
    kivra = build("kivra-se", {"type": "kivra", "tenant_key": "k"}, ProviderContext(Path(".")))
    result = kivra.send(Outgoing("d", "t", "doc", "c", "mailbox", "kivra:198503042384",
                                 b"%PDF", "application/pdf", "m", 1))
    assert isinstance(result, Failed) and result.state == State.BOUNCED


def test_digipost_payment_fields_and_string_to_sign():
    payment = {"amount": "34708.17", "currency": "NOK", "due_date": "2026-03-25",
               "reference": "201844551238", "account": "15031234562"}
    invoice = etree.fromstring(invoice_xml(payment)).find("*")
    assert {etree.QName(e).localname: e.text for e in invoice} == {
        "due-date": "2026-03-25T00:00:00+01:00", "sum": "34708.17",
        "creditor-account": "15031234562", "kid": "201844551238"}
    assert invoice_xml({**payment, "currency": "SEK"}) == ""  # no pay button abroad
    assert canonical_request("POST", "/Messages", {
        "X-Digipost-UserId": "1", "Date": "d", "X-Content-SHA256": "h", "Accept": "a"}) == (
        b"POST\n/messages\ndate: d\nx-content-sha256: h\nx-digipost-userid: 1\n\n")


def test_e_boks_payment_from_an_fik_code_line():
    block = payment_block({"amount": "100.00", "currency": "DKK", "due_date": "2026-04-01",
                           "reference": "+71<000000012345671", "account": "DK12345678"})
    assert block == {"amount": "100.00", "currency": "DKK", "dueDate": "2026-04-01",
                     "cardType": "71", "paymentId": "000000012345671",
                     "creditorNumber": "12345678"}
    assert payment_block({"currency": "NOK"}) is None


UBL = b"""<Invoice xmlns="urn:oasis:names:specification:ubl:schema:xsd:Invoice-2"
 xmlns:cac="urn:oasis:names:specification:ubl:schema:xsd:CommonAggregateComponents-2"
 xmlns:cbc="urn:oasis:names:specification:ubl:schema:xsd:CommonBasicComponents-2">
<cbc:CustomizationID>urn:cen.eu:en16931:2017#compliant#urn:fdc:peppol.eu:2017:poacc:billing:3.0</cbc:CustomizationID>
<cbc:ProfileID>urn:fdc:peppol.eu:2017:poacc:billing:01:1.0</cbc:ProfileID>
<cac:AccountingSupplierParty><cac:Party><cbc:EndpointID schemeID="0192">987654321</cbc:EndpointID>
<cac:PostalAddress><cac:Country><cbc:IdentificationCode>NO</cbc:IdentificationCode></cac:Country></cac:PostalAddress>
</cac:Party></cac:AccountingSupplierParty>
<cac:AccountingCustomerParty><cac:Party><cbc:EndpointID schemeID="0192">987654325</cbc:EndpointID>
</cac:Party></cac:AccountingCustomerParty></Invoice>"""


def test_the_sbdh_carries_the_peppol_ids_and_a_stable_instance_identifier():
    instance = instance_identifier("01MSG")
    assert instance == instance_identifier("01MSG") != instance_identifier("01MSH")
    root = etree.fromstring(wrap(UBL, instance, datetime(2026, 3, 2, tzinfo=UTC)))
    ns = {"s": SBDH}
    assert root.findtext("s:StandardBusinessDocumentHeader/s:Sender/s:Identifier",
                         namespaces=ns) == "0192:987654321"
    assert root.findtext("s:StandardBusinessDocumentHeader/s:Receiver/s:Identifier",
                         namespaces=ns) == "0192:987654325"
    scopes = {s.findtext("s:Type", namespaces=ns): s.findtext("s:InstanceIdentifier",
                                                              namespaces=ns)
              for s in root.iterfind(".//s:Scope", ns)}
    assert scopes == {
        "DOCUMENTID": "urn:oasis:names:specification:ubl:schema:xsd:Invoice-2::Invoice##"
                      "urn:cen.eu:en16931:2017#compliant#urn:fdc:peppol.eu:2017:poacc:"
                      "billing:3.0::2.1",
        "PROCESSID": "urn:fdc:peppol.eu:2017:poacc:billing:01:1.0", "COUNTRY_C1": "NO"}
    assert root.findtext(".//s:InstanceIdentifier", namespaces=ns) == instance
    assert etree.QName(root[1]).localname == "Invoice"
    with pytest.raises(NotUbl):
        wrap(b"%PDF-1.7", instance)


def test_retry_after_in_seconds_or_as_a_date():
    now = datetime(2026, 3, 2, 12, tzinfo=UTC)
    assert http.retry_after({"Retry-After": "7"}) == timedelta(seconds=7)
    assert http.retry_after({"retry-after": "Mon, 02 Mar 2026 12:00:30 GMT"}, now) == \
        timedelta(seconds=30)
    assert http.retry_after({}) is None
    assert http.transient(http.Response(429, b"", {"Retry-After": "2"}), "x").after == \
        timedelta(seconds=2)
    assert http.transient(http.Response(400, b""), "x") is None
