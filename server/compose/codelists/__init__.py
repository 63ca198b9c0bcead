"""The code lists EN 16931 and Peppol BIS 3 validate against, one file each, read once.

Every coded value Kanal writes into an e-invoice (electronic address schemes, ICD identifier
schemes, VAT exemption reasons, units, currencies, countries, document types, payment means,
allowance and charge reasons, VAT categories, item classification and object identifier
schemes, VAT point date codes, note subjects, attachment MIME types) is checked against the
list in this folder, and only here. Each `<list>.tsv` starts with `#` lines naming what it is
for and the release it comes from (`# version: ...`), then one `code<TAB>name` per line
(ISO 4217 adds the minor unit). Updating a list to a new Peppol or CEN release is editing
that one file; the version line travels with it into `VERSIONS`.

One file is no e-invoice list: `iso4217-other.tsv` holds the ISO 4217 currencies the e-invoice
currency list leaves out (e.g. XCG, STN), so that with `iso4217.tsv` every ISO 4217 minor
unit is here (`iso_minor_unit`), for amounts no e-invoice carries: a card transaction's
original amount, which may be in any currency the card was used in.

Where Peppol and CEN both check a list, the file holds the codes both accept (e.g. the EAS
list is Peppol's `eaid` intersected with CEN BR-CL-25), so a value passing here passes both.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from types import MappingProxyType

_DIR = Path(__file__).resolve().parent


@dataclass(frozen=True)
class CodeList:
    """One code list: `codes` maps code -> name (in file order); `version` is its release."""

    name: str
    version: str
    codes: Mapping[str, str]
    extra: Mapping[str, str]  # third column when the list has one (ISO 4217 minor unit)

    def __contains__(self, code: object) -> bool:
        return code in self.codes

    def __iter__(self):
        return iter(self.codes)

    def __len__(self) -> int:
        return len(self.codes)


def load(name: str) -> CodeList:
    """Read `<name>.tsv` from this folder."""
    version = ""
    codes: dict[str, str] = {}
    extra: dict[str, str] = {}
    for raw in (_DIR / f"{name}.tsv").read_text(encoding="utf-8").splitlines():
        if raw.startswith("#"):
            if raw.startswith("# version:"):
                version = raw.removeprefix("# version:").strip()
            continue
        if not raw.strip():
            continue
        code, _, rest = raw.partition("\t")
        label, _, third = rest.partition("\t")
        codes[code.strip()] = label.strip()
        if third:
            extra[code.strip()] = third.strip()
    if not version:
        raise ValueError(f"code list {name}.tsv has no '# version:' line")
    return CodeList(name, version, MappingProxyType(codes), MappingProxyType(extra))


EAS = load("eas")  # BT-34/BT-49 electronic address scheme
ICD = load("icd")  # ISO 6523 identifier schemes (legal, party, item, location ids)
VATEX = load("vatex")  # BT-121 VAT exemption reason codes
UNITS = load("unece-rec20")  # BT-130/BT-150 UN/ECE Rec 20 + 21
CURRENCIES = load("iso4217")  # BT-5/BT-6
COUNTRIES = load("iso3166")  # BT-40/55/69/80/159
INVOICE_TYPES = load("uncl1001-invoice")  # BT-3 written as a UBL Invoice
CREDIT_NOTE_TYPES = load("uncl1001-credit-note")  # BT-3 written as a UBL CreditNote
PAYMENT_MEANS = load("uncl4461")  # BT-81
ALLOWANCE_REASONS = load("uncl5189")  # BT-98/BT-140
CHARGE_REASONS = load("uncl7161")  # BT-105/BT-145
VAT_CATEGORIES = load("uncl5305")  # BT-95/102/118/151
ITEM_CLASSIFICATIONS = load("uncl7143")  # BT-158 scheme
OBJECT_SCHEMES = load("uncl1153")  # BT-18/BT-128 scheme
TAX_POINT_CODES = load("uncl2005")  # BT-8
NOTE_SUBJECTS = load("uncl4451")  # BT-21
MIME_CODES = load("mime")  # BT-125 attachment MIME type

ALL: tuple[CodeList, ...] = (
    EAS, ICD, VATEX, UNITS, CURRENCIES, COUNTRIES, INVOICE_TYPES, CREDIT_NOTE_TYPES,
    PAYMENT_MEANS, ALLOWANCE_REASONS, CHARGE_REASONS, VAT_CATEGORIES, ITEM_CLASSIFICATIONS,
    OBJECT_SCHEMES, TAX_POINT_CODES, NOTE_SUBJECTS, MIME_CODES,
)
VERSIONS: Mapping[str, str] = MappingProxyType({cl.name: cl.version for cl in ALL})


# ISO 4217 codes the e-invoice list leaves out; not a code list of EN 16931 (not in `ALL`)
OTHER_ISO_CURRENCIES = load("iso4217-other")

EN16931_MAX_DECIMALS = 2  # BR-DEC-*: an EN 16931 amount has at most two decimals


def _iso_minor_units() -> Mapping[str, int | None]:
    units: dict[str, int | None] = {}
    for codes in (CURRENCIES, OTHER_ISO_CURRENCIES):
        for code, written in codes.extra.items():
            units[code] = None if written == "N.A." else int(written)
    return MappingProxyType(units)


_ISO_MINOR_UNITS = _iso_minor_units()


def iso_minor_unit(currency: str) -> int | None:
    """Decimals of the currency's minor unit as ISO 4217 (List One) defines it, not capped:
    NOK/SEK/EUR 2; JPY, ISK, KRW 0; KWD, BHD, JOD, OMR, TND, IQD, LYD 3; CLF, UYW 4.
    None for a code ISO 4217 defines no minor unit for (N.A.: XAU, XDR, XXX...) and for one
    it does not list (withdrawn: DEM, ANG; unknown)."""
    return _ISO_MINOR_UNITS.get(currency)


def minor_unit(currency: str) -> int:
    """Decimals of the currency's minor unit as EN 16931 writes amounts: ISO 4217's, at most
    2 (BR-DEC-*): NOK/SEK/EUR 2, JPY/ISK 0, KWD 2 (ISO 3). A code without an ISO minor unit
    (XAU, ...) gets 0; a code the e-invoice list does not hold gets 2 (refused elsewhere)."""
    if currency not in CURRENCIES:
        return EN16931_MAX_DECIMALS
    return min(_ISO_MINOR_UNITS[currency] or 0, EN16931_MAX_DECIMALS)
