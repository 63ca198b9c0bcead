"""Pure archive rules, no servers: object keys that cannot escape their prefix, retention
periods per kind/country/tenant, and the ASCII encoding of S3 metadata values."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import pytest

from archive.keys import customer_prefix, document_key, encode_segment, parse_document_key
from archive.retention import DOCUMENT_KINDS, RetentionPolicy
from archive.store import decode_metadata_value, encode_metadata_value

CREATED = datetime(2025, 3, 14, 9, 30, tzinfo=UTC)


# --- keys -------------------------------------------------------------------------------


def test_document_key_scheme() -> None:
    key = document_key("sparebank-vest", "10020030", CREATED, "01JD4W8ZQ7", "print", "pdf")
    assert key == "sparebank-vest/10020030/2025/01JD4W8ZQ7/print.pdf"


@pytest.mark.parametrize(
    ("tenant", "customer"),
    [
        ("../other-tenant", "x"),
        ("t", "../../other-tenant/victim"),
        ("t/evil", "a/b"),
        ("..", "."),
        ("t", "Åse Østby %2F"),
        ("t", "back\\slash\x00nul"),
    ],
)
def test_ids_cannot_escape_their_prefix(tenant: str, customer: str) -> None:
    key = document_key(tenant, customer, CREATED, "DOC1", "email", "html")
    segments = key.split("/")
    assert len(segments) == 5
    assert not {".", ".."} & set(segments)
    assert all(ch.isascii() and ch.isprintable() for ch in key)
    assert key.startswith(customer_prefix(tenant, customer))
    parsed = parse_document_key(key)
    assert (parsed.tenant, parsed.customer_id) == (tenant, customer)


def test_encoding_is_injective_and_reversible() -> None:
    assert encode_segment("a/b") == "a%2Fb"
    assert encode_segment("a%2Fb") == "a%252Fb"  # a literal percent never collides
    assert encode_segment("Å") == "%C3%85"
    assert encode_segment("..") == "%2E%2E"
    assert encode_segment("a.b_c-D9") == "a.b_c-D9"
    with pytest.raises(ValueError):
        encode_segment("")


def test_year_is_taken_in_utc() -> None:
    new_year_in_oslo = datetime(2026, 1, 1, 0, 30, tzinfo=timezone(timedelta(hours=1)))
    assert "/2025/" in document_key("t", "c", new_year_in_oslo, "D", "sms", "txt")


@pytest.mark.parametrize(
    ("document_id", "channel", "extension", "created_at"),
    [
        ("../x", "print", "pdf", CREATED),
        ("a/b", "print", "pdf", CREATED),
        ("DOC", "Print/x", "pdf", CREATED),
        ("DOC", "print", "p/df", CREATED),
        ("DOC", "print", "pdf", datetime(2025, 1, 1)),
    ],
)
def test_kanal_generated_parts_are_validated(
    document_id: str, channel: str, extension: str, created_at: datetime
) -> None:
    with pytest.raises(ValueError):
        document_key("t", "c", created_at, document_id, channel, extension)


def test_parse_rejects_foreign_keys() -> None:
    for key in ["t/c/25/D/print.pdf", "t/c/2025/D/printpdf", "t/2025/D/print.pdf", "a/b/c/d/e/f"]:
        with pytest.raises(ValueError):
            parse_document_key(key)


# --- retention --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("country", "years"),
    [("NO", 5), ("SE", 7), ("DK", 5), ("FI", 6), ("no", 5), ("DE", 8), ("AT", 7), ("PL", 6),
     ("GB", 6), ("FR", 10), (None, 10)],
)
def test_default_accounting_retention_per_country(country: str | None, years: int) -> None:
    policy = RetentionPolicy.default()
    for kind in ("invoice", "credit_note", "reminder", "statement"):
        assert policy.years(kind, country) == years
        # counted from the end of the year the document was made in
        assert policy.retain_until(CREATED, kind, country) == datetime(
            2025 + years + 1, 1, 1, tzinfo=UTC
        )


def test_letters_are_kept_shorter() -> None:
    policy = RetentionPolicy.default()
    assert all(policy.years("letter", c) == 2 for c in ("NO", "SE", "DK", "FI", None))


def test_config_overrides_and_tenant_may_only_lengthen() -> None:
    policy = RetentionPolicy.from_dict(
        {
            "default": {"letter": 3},
            "country": {"se": {"letter": 4}, "IS": {"invoice": 7}},
            "tenant": {"strict-bank": {"invoice": 12, "letter": 1}},
        }
    )
    assert policy.years("letter", None) == 3
    assert policy.years("letter", "SE") == 4
    assert policy.years("invoice", "SE") == 7  # built-in default kept
    assert policy.years("invoice", "IS") == 7
    assert policy.years("invoice", "NO", "strict-bank") == 12
    assert policy.years("letter", "SE", "strict-bank") == 4  # never below the rule
    assert policy.years("invoice", "NO", "other-bank") == 5


def test_kinds_match_the_compose_model() -> None:
    from server.compose.model import DocumentKind

    assert set(DOCUMENT_KINDS) == {kind.value for kind in DocumentKind}
    policy = RetentionPolicy.default()
    assert policy.years(DocumentKind.INVOICE, "NO") == 5


@pytest.mark.parametrize(
    "bad",
    [
        {"default": {"novel": 3}},
        {"default": {"invoice": -1}},
        {"default": {"invoice": "5"}},
        {"default": {"invoice": True}},
        {"country": {"NOR": {"invoice": 5}}},
        {"tenant": {"t": 5}},
        {"defaults": {}},
    ],
)
def test_bad_config_is_refused(bad: dict[str, object]) -> None:
    with pytest.raises(ValueError):
        RetentionPolicy.from_dict(bad)


def test_retain_until_needs_an_aware_time_and_a_known_kind() -> None:
    policy = RetentionPolicy.default()
    with pytest.raises(ValueError):
        policy.retain_until(datetime(2025, 1, 1), "invoice", "NO")
    with pytest.raises(ValueError):
        policy.retain_until(CREATED, "receipt", "NO")


# --- metadata values --------------------------------------------------------------------


@pytest.mark.parametrize(
    "value",
    [
        "Åse Østby",
        "plain-ascii 123",
        "",
        " leading",
        "trailing ",
        "line\nbreak",
        "=?utf-8?b?QcOF?=",
        "=?UTF-8?Q?not_ours?=",
        "emoji 📄",
    ],
)
def test_metadata_values_round_trip_as_ascii(value: str) -> None:
    encoded = encode_metadata_value(value)
    assert encoded.isascii() and "\n" not in encoded
    assert encoded == encoded.strip()
    assert decode_metadata_value(encoded) == value
