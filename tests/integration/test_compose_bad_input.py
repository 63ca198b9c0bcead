"""Refused input over gRPC, on a real Kanal server in-process with its embedded SeaweedFS:
every refusal is a clear status (NOT_FOUND, INVALID_ARGUMENT, RESOURCE_EXHAUSTED) naming the
field by its JSON path and why, never INTERNAL, and nothing refused is archived.

Covered: unknown layouts and versions, malformed or non-object JSON, schema violations,
impossible values, control and bidi characters, Peppol rules, locales that are unknown or
would print a wrong payment slip, and text the print page cannot hold (glyphs the font lacks,
private-use characters, lines into the OMR zone or off the page).
"""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import grpc
import pytest

from kanal.v1 import common_pb2, documents_pb2
from server.api.errors import field_violations
from server.app import KanalServer
from server.compose.data import MAX_DEPTH
from tests.integration.compose_api_fixtures import (
    call_error,
    count_objects,
    documents_stub,
    print_output,
    s3_client,
    sample,
    start_kanal,
)
from tests.pdf_inspect import pages_text

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def kanal(tmp_path_factory: pytest.TempPathFactory):
    yield from start_kanal(tmp_path_factory)


@pytest.fixture(scope="module")
def documents(kanal: KanalServer):
    yield from documents_stub(kanal)


@pytest.fixture(scope="module")
def s3(kanal: KanalServer):
    """A raw S3 client with the server's credentials, to look at the bucket directly."""
    return s3_client(kanal)


# --- bad input -------------------------------------------------------------------------------


def test_unknown_layout_and_version_are_not_found(documents):
    for layout_id, version in (("no-such-layout", ""), ("card-invoice", "9.9.9")):
        error = call_error(documents.Compose, documents_pb2.ComposeRequest(
            layout_id=layout_id, layout_version=version, data_json="{}"))
        assert error.code() == grpc.StatusCode.NOT_FOUND, error.details()
        assert (version or layout_id) in error.details()


def test_malformed_json_names_the_position(documents):
    error = call_error(documents.Compose, documents_pb2.ComposeRequest(
        layout_id="card-invoice", data_json='{"customer": {"name": "Kari",}'))
    assert error.code() == grpc.StatusCode.INVALID_ARGUMENT
    [(field, description)] = field_violations(error)
    assert field == "data" and "line 1 column" in description


def test_json_that_is_not_an_object_is_refused_at_its_root_path(documents):
    for data_json, kind in (("[1, 2]", "an array"), ('"x"', "a string")):
        error = call_error(documents.Compose, documents_pb2.ComposeRequest(
            layout_id="card-invoice", data_json=data_json))
        assert error.code() == grpc.StatusCode.INVALID_ARGUMENT
        assert field_violations(error) == [("$", f"must be a JSON object, not {kind}")]


def test_every_schema_violation_is_listed_with_its_path(documents):
    data = json.loads(sample("card-invoice"))
    del data["customer"]["name"]
    data["transactions"][2]["amount"] = "12,50"
    data["invoice"]["due_date"] = 20261215
    error = call_error(documents.Compose, documents_pb2.ComposeRequest(
        layout_id="card-invoice", data_json=json.dumps(data)))
    assert error.code() == grpc.StatusCode.INVALID_ARGUMENT
    fields = [f for f, _ in field_violations(error)]
    assert "$.customer" in fields
    assert "$.transactions[2].amount" in fields
    assert "$.invoice.due_date" in fields


@pytest.mark.parametrize(("change", "field"), [
    (lambda d: d.__setitem__("currency", "XYZ"), "currency"),
    (lambda d: d.__setitem__("payment", {"reference": "1234567893"}), "$.payment.reference"),
    (lambda d: d["invoice"].__setitem__("payments_received", "-5.00"), "payments_received"),
    (lambda d: d["invoice"].__setitem__("due_date", "2026-02-30"), "due_date"),
])
def test_impossible_values_are_refused_with_their_field(documents, change, field):
    data = json.loads(sample("card-invoice"))
    change(data)  # unknown currency, wrong KID check digit (MOD10 gives 7), negative, no date
    error = call_error(documents.Compose, documents_pb2.ComposeRequest(
        layout_id="card-invoice", data_json=json.dumps(data)))
    assert error.code() == grpc.StatusCode.INVALID_ARGUMENT, error.details()
    assert any(field in f for f, _ in field_violations(error)), field_violations(error)


def test_data_nested_past_the_parser_is_refused_at_the_deepest_path_reached(documents):
    # was `data` once the nesting went past the parser's recursion limit (as it is named
    # when nested less deep: test_input_limits.py)
    depth = 100_000
    text = sample("card-invoice").replace(
        '"transactions": [', '"transactions": [' + "[" * depth + "]" * depth + ", ", 1)
    error = call_error(documents.Compose, documents_pb2.ComposeRequest(
        layout_id="card-invoice", data_json=text))
    assert error.code() == grpc.StatusCode.INVALID_ARGUMENT, error.details()
    assert field_violations(error) == [("$.transactions" + "[0]" * (MAX_DEPTH - 1),
                                        f"nested deeper than {MAX_DEPTH} levels")]


@pytest.mark.parametrize("invoice_days, due_days, field, other", [
    (200, 30, "$.invoice.invoice_date", "$.invoice.due_date"),
    (-5, -20, "$.invoice.due_date", "$.invoice.invoice_date"),
], ids=["invoice date mistyped", "due date mistyped"])
def test_an_invoice_dated_after_its_due_date_names_the_date_mistyped(
        documents, invoice_days, due_days, field, other):
    # was always `$.invoice.due_date` "must not be before invoice_date"; the server composes
    # as of its own clock, so the dates are set from today
    today = datetime.now(UTC).date()
    invoice_date = (today + timedelta(days=invoice_days)).isoformat()
    due_date = (today + timedelta(days=due_days)).isoformat()
    data = json.loads(sample("card-invoice"))
    data["invoice"].update(invoice_date=invoice_date, due_date=due_date)
    error = call_error(documents.Compose, documents_pb2.ComposeRequest(
        layout_id="card-invoice", data_json=json.dumps(data)))
    assert error.code() == grpc.StatusCode.INVALID_ARGUMENT, error.details()
    [(found, why)] = field_violations(error)
    assert found == field and invoice_date in why and due_date in why and other in why, why


def test_control_character_is_invalid_argument_with_its_path(documents):
    # issue 12: a U+000B in any text made every renderer raise and the API answer INTERNAL
    data = json.loads(sample("card-invoice"))
    data["customer"]["name"] = "Kari\x0bNordmann"
    error = call_error(documents.Compose, documents_pb2.ComposeRequest(
        layout_id="card-invoice", data_json=json.dumps(data)))
    assert error.code() == grpc.StatusCode.INVALID_ARGUMENT, error.details()
    [(field, description)] = field_violations(error)
    assert field == "$.customer.name" and "U+000B" in description


@pytest.mark.parametrize(("layout_id", "change", "field", "why"), [
    ("payment-reminder", lambda d: d["reminder"].update(date="2026-01-10"), "$.reminder.date",
     "2026-01-10 is not after the invoice's due date 2026-01-26"),
    ("card-invoice", lambda d: d["transactions"][0].update(amount="0.005"),
     "$.transactions[0].amount", "NOK has 2 decimals; 0.005 has 3"),
    ("card-invoice", lambda d: d["customer"].update(name="\u202eRLO override gnirts\u202c"),
     "$.customer.name", "U+202E RIGHT-TO-LEFT OVERRIDE"),
    ("card-invoice", lambda d: d["transactions"][0].update(date="2027-01-01"),
     "$.transactions[0].date", "after the invoice date 2026-03-02"),
], ids=["reminder before due", "sub-øre amount", "bidi override", "future transaction"])
def test_input_checks_are_invalid_argument_with_path_and_reason(documents, layout_id, change,
                                                                field, why):
    # QA H3, M6, M8 and the future card transaction: each is refused, never composed
    data = json.loads(sample(layout_id))
    change(data)
    error = call_error(documents.Compose, documents_pb2.ComposeRequest(
        layout_id=layout_id, data_json=json.dumps(data)))
    assert error.code() == grpc.StatusCode.INVALID_ARGUMENT, error.details()
    [(found, description)] = field_violations(error)
    assert found == field and why in description, description


def test_peppol_rule_is_invalid_argument_with_path_and_rule(documents):
    data = json.loads(sample("b2b-invoice"))
    data["customer"]["peppol_id"] = "9955:5560360793"  # a scheme the EAS list withdrew
    error = call_error(documents.Compose, documents_pb2.ComposeRequest(
        layout_id="b2b-invoice", data_json=json.dumps(data),
        channels=[common_pb2.CHANNEL_EINVOICE]))
    assert error.code() == grpc.StatusCode.INVALID_ARGUMENT, error.details()
    [(field, description)] = field_violations(error)
    assert field == "$.customer.peppol_id"
    assert description.startswith("[PEPPOL-EN16931-CL008]")


def test_a_mistyped_peppol_id_is_invalid_argument_not_a_paper_invoice(documents, s3):
    # QA: the buyer's id with a wrong MOD11 check digit was composed OK as "factur-x-and-paper
    # (einvoice skipped)", a print output only; the caller must hear that the id is wrong
    data = json.loads(sample("b2b-invoice"))
    data["customer"]["peppol_id"] = "0192:987654324"
    before = count_objects(s3)
    error = call_error(documents.Compose, documents_pb2.ComposeRequest(
        layout_id="b2b-invoice", data_json=json.dumps(data)))
    assert error.code() == grpc.StatusCode.INVALID_ARGUMENT, error.details()
    [(field, description)] = field_violations(error)
    assert field == "$.customer.peppol_id"
    assert description.startswith("[PEPPOL-COMMON-R041] scheme 0192: ")
    assert "check digit" in description
    assert count_objects(s3) == before


def test_text_running_into_a_print_mark_zone_is_invalid_argument_with_its_path(documents, s3):
    # issue 11 fault 7: a long unbroken URL ran under the right-edge OMR column and
    # DataMatrix of the Pitney Bowes profile; printed, it would vanish under the marks.
    # The 2.0.0 letter now breaks it inside its column and prints; the frozen 1.0.0 letter,
    # which cannot, is refused naming the field, and nothing is archived.
    data = json.loads(sample("welcome-letter"))
    data["letter"]["paragraphs"][2] = (
        "Les mer på fjordbank.no/velkommen?utm_source=velkomstbrev&utm_medium=print"
        "&utm_campaign=kredittkort2026&utm_content=nykunde&ref=4419002199502026 om vilkårene.")
    text = json.dumps(data, ensure_ascii=False)
    printed = documents.Compose(documents_pb2.ComposeRequest(
        layout_id="welcome-letter", data_json=text, channels=[common_pb2.CHANNEL_PRINT]))
    assert printed.layout_version == "2.3.0" and printed.outputs  # the newest
    before = count_objects(s3)
    error = call_error(documents.Compose, documents_pb2.ComposeRequest(
        layout_id="welcome-letter", layout_version="1.0.0", data_json=text,
        channels=[common_pb2.CHANNEL_PRINT]))
    assert error.code() == grpc.StatusCode.INVALID_ARGUMENT, error.details()
    [(field, description)] = field_violations(error)
    assert field == "$.letter.paragraphs[2]" and "utm_source" in description
    assert count_objects(s3) == before  # nothing archived


def test_unknown_locale_is_invalid(documents):
    for locale in ("xx-YY", "de-DE"):  # unknown to Babel; known but not in the layout
        error = call_error(documents.Compose, documents_pb2.ComposeRequest(
            layout_id="card-invoice", data_json=sample("card-invoice"),
            locale=locale))
        assert error.code() == grpc.StatusCode.INVALID_ARGUMENT
        assert field_violations(error)[0][0] == "locale"


def test_oversized_data_is_refused(documents):
    data = json.loads(sample("welcome-letter"))
    data["padding"] = "x" * (600 * 1024)
    error = call_error(documents.Compose, documents_pb2.ComposeRequest(
        layout_id="welcome-letter", data_json=json.dumps(data)))
    assert error.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
    huge = documents_pb2.ComposeRequest(layout_id="welcome-letter",
                                        data_json="x" * (17 * 1024 * 1024))
    assert call_error(documents.Compose, huge).code() == grpc.StatusCode.RESOURCE_EXHAUSTED


def test_missing_required_request_fields(documents):
    error = call_error(documents.Compose, documents_pb2.ComposeRequest(data_json="{}"))
    assert error.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert field_violations(error) == [("layout_id", "is required")]
    error = call_error(documents.GetDocument, documents_pb2.GetDocumentRequest(
        tenant="nordkort", document_id="01JNOSUCHDOCUMENT0000000000"))
    assert error.code() == grpc.StatusCode.NOT_FOUND


# --- a locale that does not fit the data ---------------------------------------------------


def test_a_locale_that_would_print_a_wrong_slip_is_invalid_naming_both_sides(documents, s3):
    before = count_objects(s3)
    error = call_error(documents.Compose, documents_pb2.ComposeRequest(
        tenant="nordkort", layout_id="card-invoice", locale="nb-NO",
        data_json=sample("card-invoice", "sample-sv-SE.json")))
    assert error.code() == grpc.StatusCode.INVALID_ARGUMENT
    fields = dict(field_violations(error))
    assert set(fields) == {"locale", "$.currency", "$.issuer.payment_account.type"}
    assert "use sv-SE" in fields["locale"]
    assert count_objects(s3) == before


# --- text the print page cannot hold -------------------------------------------------------


def test_character_no_print_font_draws_is_invalid_argument_with_field_and_code_point(documents,
                                                                                      s3):
    # issue 11 item 2: a name the letter would print as boxes is refused, nothing archived
    data = json.loads(sample("card-invoice"))
    data["customer"]["name"] = "Kari \U00010380 Nordmann"  # U+10380 UGARITIC LETTER ALPA
    before = count_objects(s3)
    error = call_error(documents.Compose, documents_pb2.ComposeRequest(
        tenant="nordkort", layout_id="card-invoice", data_json=json.dumps(data)))
    assert error.code() == grpc.StatusCode.INVALID_ARGUMENT, error.details()
    [(field, description)] = field_violations(error)
    assert field == "$.customer.name" and description.startswith("U+10380 UGARITIC")
    assert count_objects(s3) == before


def test_a_private_use_character_is_invalid_argument_not_internal(documents, s3):
    # Inter draws icons at 745 private-use code points, so they passed the glyph check and
    # Typst's PDF/A-3a export then refused the document: INTERNAL. Refused by field now.
    data = json.loads(sample("card-invoice"))
    data["customer"]["name"] = "Kari \ue000 Nordmann"
    data["transactions"][0]["description"] = "Kiosk \U000F0001"
    before = count_objects(s3)
    error = call_error(documents.Compose, documents_pb2.ComposeRequest(
        tenant="nordkort", layout_id="card-invoice", data_json=json.dumps(data)))
    assert error.code() == grpc.StatusCode.INVALID_ARGUMENT, error.details()
    fields = dict(field_violations(error))
    # the merchant text is one the card invoice prints without what it cannot draw
    # ([print] replace_unprintable: "Kiosk ?"); the name is refused
    assert set(fields) == {"$.customer.name"}
    assert fields["$.customer.name"].startswith("U+E000 is a private-use character")
    assert count_objects(s3) == before


def test_text_running_off_the_page_is_invalid_argument_and_not_archived(documents, s3):
    # issue 11 item 1, the example on the frozen 1.0.0 card invoice (whose table
    # still widens for a 61-character descriptor): the print preflight refuses the page
    data = json.loads(sample("card-invoice"))
    data["transactions"][0]["description"] = ("WWWEXAMPLESHOPNOORDER" + "7" * 40)[:61]
    before = count_objects(s3)
    error = call_error(documents.Compose, documents_pb2.ComposeRequest(
        tenant="nordkort", layout_id="card-invoice", layout_version="1.0.0",
        data_json=json.dumps(data)))
    assert error.code() == grpc.StatusCode.INVALID_ARGUMENT, error.details()
    fields = {field for field, _ in field_violations(error)}
    assert fields == {"$.transactions[0].description"}
    assert count_objects(s3) == before
    # the same data on the 2.0.0 layout prints, the amounts on the page
    reply = documents.Compose(documents_pb2.ComposeRequest(
        tenant="nordkort", layout_id="card-invoice", data_json=json.dumps(data),
        preview=True))
    assert "412,80" in " ".join(pages_text(print_output(reply.outputs).content))
