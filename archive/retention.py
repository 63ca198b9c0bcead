"""Retention: turn (document kind, country, tenant, creation time) into the instant until
which the archived object is locked in COMPLIANCE mode.

Bookkeeping laws count retention from the end of the accounting year, not from the day a
document was made, so a period of N years ends at the close of the calendar year N years after
the year of `created_at` (UTC): an invoice of 2025-03-14 kept 5 years is locked until
2031-01-01T00:00:00Z. This is never shorter than "N years after the end of the year". For a
tenant whose fiscal year is not the calendar year, add one year in its tenant override.

The rules, in order:

1. the country's rule for the kind (`country.<CC>.<kind>`), else the default for the kind
   (`default.<kind>`);
2. a tenant override (`tenant.<tenant>.<kind>`) may make the period *longer*, never shorter:
   the law is a floor a bank may exceed (its own policy, a supervisory requirement), not one
   configuration may undercut.

Built-in defaults (`RetentionPolicy.default()`): `archive/retention.toml`, one table per
country with the act it follows in `source`, in years:

| kind                                      | NO | SE | DK | FI | DE | AT | PL | GB | elsewhere |
|-------------------------------------------|----|----|----|----|----|----|----|----|-----------|
| invoice, credit_note, reminder, statement |  5 |  7 |  5 |  6 |  8 |  7 |  6 |  6 |    10     |
| letter                                    |  2 |  2 |  2 |  2 |  6 |  7 |  2 |  2 |     2     |

(DE: AO § 147 as amended from 2025, 8 years for Buchungsbelege, 6 for business letters;
AT: BAO § 132 and UGB § 212, 7 years for vouchers and business papers; PL: 5 years from the
end of the year the tax fell due, so 6 after the document's year; GB: HMRC's 6 years.)
Reminders and statements carry amounts and fees and are kept as accounting records.

The configuration is a plain mapping as it comes from the TOML file:

    [archive.retention.default]
    invoice = 10
    letter = 2
    [archive.retention.country.SE]
    invoice = 7
    [archive.retention.tenant.sparebank-vest]
    statement = 10

Keys missing from a given mapping fall back to the built-in defaults.
"""

from __future__ import annotations

import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from types import MappingProxyType
from typing import Any

__all__ = ["DOCUMENT_KINDS", "SOURCES", "RetentionPolicy"]

DOCUMENT_KINDS: tuple[str, ...] = ("invoice", "credit_note", "reminder", "statement", "letter")
_ACCOUNTING_KINDS = ("invoice", "credit_note", "reminder", "statement")
_MAX_YEARS = 100


def _years_table(accounting: int, letter: int) -> dict[str, int]:
    table = dict.fromkeys(_ACCOUNTING_KINDS, accounting)
    table["letter"] = letter
    return table


LAW_FILE = Path(__file__).with_name("retention.toml")


def _law() -> tuple[dict[str, int], dict[str, dict[str, int]], dict[str, str]]:
    """retention.toml -> (default years, years per country, each country's source)."""
    data = tomllib.loads(LAW_FILE.read_text(encoding="utf-8"))
    default = _parse_years("retention.toml [default]", data["default"])
    countries, sources = {}, {}
    for code, table in data["country"].items():
        if not str(table.get("source", "")).strip():
            raise ValueError(f"retention.toml [country.{code}]: cite the act in `source`")
        sources[code] = table["source"]
        countries[code] = _parse_years(f"retention.toml [country.{code}]",
                                       {k: v for k, v in table.items() if k != "source"})
    return default, countries, sources


def _frozen(table: Mapping[str, int]) -> Mapping[str, int]:
    return MappingProxyType(dict(table))


def _parse_years(where: str, raw: Any) -> dict[str, int]:
    if not isinstance(raw, Mapping):
        raise ValueError(f"{where} must be a table of kind = years")
    out: dict[str, int] = {}
    for kind, years in raw.items():
        if kind not in DOCUMENT_KINDS:
            raise ValueError(f"{where}: unknown document kind {kind!r}")
        if isinstance(years, bool) or not isinstance(years, int) or not 0 <= years <= _MAX_YEARS:
            raise ValueError(f"{where}.{kind}: years must be an integer in 0..{_MAX_YEARS}")
        out[kind] = years
    return out


_DEFAULT_YEARS, _DEFAULT_COUNTRY_YEARS, SOURCES = _law()
_DEFAULT_YEARS = {**_years_table(accounting=10, letter=2), **_DEFAULT_YEARS}


@dataclass(frozen=True)
class RetentionPolicy:
    """Years of retention per document kind, per country, with optional tenant overrides."""

    default_years: Mapping[str, int] = field(default_factory=lambda: _frozen(_DEFAULT_YEARS))
    country_years: Mapping[str, Mapping[str, int]] = field(default_factory=dict)
    tenant_years: Mapping[str, Mapping[str, int]] = field(default_factory=dict)

    @classmethod
    def default(cls) -> RetentionPolicy:
        """The built-in defaults of retention.toml (see the module docstring)."""
        return cls.from_dict({})

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> RetentionPolicy:
        """Build from `{"default": {...}, "country": {"NO": {...}}, "tenant": {"t": {...}}}`;
        anything not given keeps the built-in default."""
        unknown = set(data) - {"default", "country", "tenant"}
        if unknown:
            raise ValueError(f"retention: unknown keys {sorted(unknown)}")
        defaults = {**_DEFAULT_YEARS, **_parse_years("retention.default", data.get("default", {}))}
        countries: dict[str, dict[str, int]] = {
            code: dict(table) for code, table in _DEFAULT_COUNTRY_YEARS.items()
        }
        for code, table in (data.get("country") or {}).items():
            cc = str(code).upper()
            if len(cc) != 2 or not cc.isalpha():
                raise ValueError(f"retention.country: {code!r} is not an ISO 3166 alpha-2 code")
            countries.setdefault(cc, {}).update(_parse_years(f"retention.country.{cc}", table))
        tenants = {
            str(tenant): _parse_years(f"retention.tenant.{tenant}", table)
            for tenant, table in (data.get("tenant") or {}).items()
        }
        return cls(
            default_years=_frozen(defaults),
            country_years=MappingProxyType({k: _frozen(v) for k, v in countries.items()}),
            tenant_years=MappingProxyType({k: _frozen(v) for k, v in tenants.items()}),
        )

    def years(self, kind: str, country: str | None, tenant: str | None = None) -> int:
        """The retention period in years for one document."""
        if kind not in DOCUMENT_KINDS:
            raise ValueError(f"unknown document kind {kind!r}")
        table = self.country_years.get(country.upper(), {}) if country else {}
        legal = table.get(kind, self.default_years[kind])
        override = self.tenant_years.get(tenant, {}).get(kind) if tenant is not None else None
        return max(legal, override) if override is not None else legal

    def retain_until(
        self,
        created_at: datetime,
        kind: str,
        country: str | None,
        tenant: str | None = None,
    ) -> datetime:
        """Start of the calendar year after (year of `created_at` + years), in UTC."""
        if created_at.tzinfo is None or created_at.utcoffset() is None:
            raise ValueError("created_at must be timezone-aware")
        years = self.years(str(kind), country, tenant)
        year = created_at.astimezone(UTC).year + years + 1
        return datetime(year, 1, 1, tzinfo=UTC)
