"""The document's locale: decided once per document, from the request, the data or the layout.

A Kanal locale is a BCP 47 tag ``language-REGION``, and it names two different things:

- the **language** of the words: labels, SMS and e-mail text (``sv`` in both sv-SE and sv-FI);
- the **region** whose conventions the document follows: number and date formats and, on a
  payment document, the payment slip (NO: KID and kontonummer; SE: OCR, bankgiro, plusgiro;
  DK: FIK; FI: the Finnish reference). A Swedish-speaking customer in Finland reads sv-FI:
  Swedish words on a Finnish slip.

Decided in this order, the first that applies wins, and recorded with the document
(`LocaleDecision`: the Compose response, GetDocument and the index say which and why):

1. the request's ``locale`` (source "request");
2. the data's own ``locale`` field, when the layout's schema declares one (source "data");
3. the layout's rules, as data in its manifest, tried in order (source "rule")::

       [[locale.rules]]
       region = "$.currency"                      # NOK -> the layout's NO locale, SEK -> SE
       [[locale.rules]]
       region = "$.customer.address.country"      # else where the customer lives
       [[locale.rules]]
       when = { "$.customer.address.country" = "FI", "$.customer.language" = "sv" }
       locale = "sv-FI"

   A ``region`` rule reads the value at a JSON path, a country code (ISO 3166-1) or a
   currency with one home region (``CURRENCY_REGION``; EUR has many, so it never decides),
   and takes the layout's first locale of that region. A ``locale`` rule names the locale.
   ``when`` (JSON path -> value, or a list of values) must hold for either. A rule that finds
   no locale passes to the next. A manifest without rules (the frozen 1.0.0 layouts) gets
   `DEFAULT_RULES`: the currency first, because it decides the payment scheme, then the
   customer's country;
4. the layout's ``default_locale`` (source "default").

Whatever decided it, a domestic payment scheme in the data must belong to the locale's
region (`check_payment_region`): a KID or a Norwegian account number only in NO, OCR,
bankgiro and plusgiro only in SE, FIK (card types 71, 73, 75) only in DK, the Finnish
national reference only in FI, the UK reference and a sort code account only in GB, an NRB
account only in PL; RF (ISO 11649), remittance text and IBAN anywhere. Else Compose is
refused with INVALID_ARGUMENT naming both sides (``locale`` or the deciding data field, and
``$.currency``, ``$.payment.reference_scheme`` or the account's ``type``), because the slip
would send the payer to the wrong clearing.

Pure: no I/O. Rules are parsed and checked when the layout loads.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from decimal import Decimal
from typing import TYPE_CHECKING, Any

from server.compose.formatting import babel_locale
from server.compose.model import LocaleDecision
from server.errors import FieldViolation, InvalidInput

if TYPE_CHECKING:
    from server.compose.builders.base import PaymentScheme
    from server.compose.layouts import Layout

# The region whose clearing a domestic payment scheme belongs to. RF (ISO 11649) references
# and IBANs work across SEPA and belong to none. Reference schemes: server/compose/references.py;
# account types: server/compose/builders/base.py `payment_account`.
REFERENCE_REGION = {
    "kid_mod10": "NO", "kid_mod11": "NO", "ocr": "SE", "ocr_luhn": "SE", "fik": "DK",
    "fik73": "DK", "fik75": "DK", "fi": "FI", "gb": "GB",
}
ACCOUNT_REGION = {"no_account": "NO", "bankgiro": "SE", "plusgiro": "SE", "pl_nrb": "PL",
                  "gb_account": "GB"}
# Currencies with one home region, for `region = "$.currency"` rules (ISO 4217 -> ISO 3166-1).
CURRENCY_REGION = {
    "NOK": "NO", "SEK": "SE", "DKK": "DK", "PLN": "PL", "GBP": "GB", "ISK": "IS", "CHF": "CH",
}

DEFAULT_RULES = (
    {"region": "$.currency"},
    {"region": "$.customer.address.country"},
)
DATA_FIELD = "locale"  # the optional top-level field of a layout's data

_PATH = re.compile(r"^\$(\.[A-Za-z_][A-Za-z0-9_]*)+$")
_RULE_KEYS = frozenset({"when", "locale", "region"})


class LocaleRuleError(ValueError):
    """A `[[locale.rules]]` entry is malformed (a deployment error, reported at load time)."""


def region_of(locale: str) -> str:
    """'sv-FI' -> 'FI'. Kanal locales always name a region."""
    return babel_locale(locale).territory or ""


def value_at(data: Mapping[str, Any], path: str) -> str | None:
    """The scalar at a dotted JSON path (`$.customer.address.country`), as text, or None."""
    node: Any = data
    for part in path[2:].split("."):
        if not isinstance(node, Mapping) or part not in node:
            return None
        node = node[part]
    if isinstance(node, bool):
        return "true" if node else "false"
    return str(node) if isinstance(node, (str, int, Decimal)) else None


@dataclass(frozen=True, slots=True)
class LocaleRule:
    when: Mapping[str, tuple[str, ...]]  # JSON path -> accepted values
    locale: str | None = None  # a fixed locale ...
    region: str | None = None  # ... or the JSON path of a country or currency code

    def apply(self, data: Mapping[str, Any], locales: Sequence[str]) -> LocaleDecision | None:
        if not all(value_at(data, path) in accepted for path, accepted in self.when.items()):
            return None
        conditions = [f"{path} = {value_at(data, path)}" for path in self.when]
        if self.locale:
            field = next(iter(self.when), "locale")
            # "... -> sv-FI", as a region rule's reason ends "-> SE"
            return LocaleDecision(self.locale, "rule", field,
                                  " and ".join(conditions) + f" -> {self.locale}")
        assert self.region is not None
        value = value_at(data, self.region)
        region = CURRENCY_REGION.get(value or "") if len(value or "") == 3 else value
        chosen = next((loc for loc in locales if region and region_of(loc) == region), None)
        if chosen is None:
            return None
        return LocaleDecision(chosen, "rule", self.region,
                              " and ".join([*conditions, f"{self.region} = {value} -> {region}"]))


def _check_path(path: Any, where: str) -> str:
    if not isinstance(path, str) or not _PATH.match(path):
        raise LocaleRuleError(f"{where}: {path!r} is not a JSON path like '$.currency'")
    return path


def parse_locale_rules(manifest: Mapping[str, Any], locales: Sequence[str]
                       ) -> tuple[LocaleRule, ...]:
    """The manifest's `[[locale.rules]]`, checked against the layout's locales; `DEFAULT_RULES`
    when it has none."""
    for tag in locales:
        try:
            if not region_of(tag):
                raise LocaleRuleError(f"locale {tag!r} names no region (write e.g. 'sv-FI')")
        except InvalidInput as exc:
            raise LocaleRuleError(f"locales: unknown locale {tag!r}") from exc
    entries = manifest.get("locale", {}).get("rules") or DEFAULT_RULES
    rules = []
    for n, entry in enumerate(entries):
        where = f"locale.rules[{n}]"
        if not isinstance(entry, Mapping) or set(entry) - _RULE_KEYS:
            raise LocaleRuleError(f"{where}: a table with keys {', '.join(sorted(_RULE_KEYS))}")
        if ("locale" in entry) == ("region" in entry):
            raise LocaleRuleError(f"{where}: needs either `locale` or `region`")
        when = entry.get("when", {})
        if not isinstance(when, Mapping):
            raise LocaleRuleError(f"{where}.when: a table of JSON path = value(s)")
        conditions = {
            _check_path(path, f"{where}.when"): tuple(
                str(v).lower() if isinstance(v, bool) else str(v)
                for v in (value if isinstance(value, list) else [value]))
            for path, value in when.items()
        }
        locale = entry.get("locale")
        if locale is not None and locale not in locales:
            raise LocaleRuleError(f"{where}.locale: {locale!r} is not one of the layout's locales")
        region = _check_path(entry["region"], f"{where}.region") if "region" in entry else None
        rules.append(LocaleRule(conditions, locale, region))
    return tuple(rules)


def spelled_as(locale: str, known: Iterable[str]) -> str:
    """`locale` as one of `known` spells it when given in another case ("en-gb", "NB-NO" ->
    "en-GB", "nb-NO"): BCP 47 tags are case-insensitive (RFC 5646 2.1.1), and were refused
    as "supports ..., not 'en-gb'". Anything else as given."""
    folded = locale.casefold()
    return next((tag for tag in known if tag.casefold() == folded), locale)


def layout_spelling(layout: Layout, locale: str) -> str:
    """`spelled_as` among the layout's locales."""
    return spelled_as(locale, layout.locales)


def _supported(layout: Layout, locale: Any, field: str) -> str:
    if not isinstance(locale, str):
        raise InvalidInput.field(field, "must be a BCP 47 locale such as 'nb-NO'")
    locale = layout_spelling(layout, locale)
    try:
        babel_locale(locale)
    except InvalidInput as exc:
        raise InvalidInput.field(field, f"unknown locale {locale!r}") from exc
    if locale not in layout.locales:
        raise InvalidInput.field(
            field, f"layout {layout.ref} supports {', '.join(layout.locales)}, not {locale!r}")
    return locale


def decide_locale(layout: Layout, requested: str | None, data: Mapping[str, Any]
                  ) -> LocaleDecision:
    """The request's locale, else the data's `locale` field, else the layout's rules, else
    its default (see the module docstring). An unknown or unsupported locale is refused with
    INVALID_ARGUMENT naming `locale` or `$.locale`."""
    if requested:
        locale = _supported(layout, requested, "locale")
        return LocaleDecision(locale, "request", "locale", "given in the request")
    if DATA_FIELD in layout.schema.get("properties", {}) and DATA_FIELD in data:
        locale = _supported(layout, data[DATA_FIELD], f"$.{DATA_FIELD}")
        return LocaleDecision(locale, "data", f"$.{DATA_FIELD}", f"$.{DATA_FIELD} = {locale}")
    for rule in layout.locale_rules:
        if decision := rule.apply(data, layout.locales):
            return decision
    return LocaleDecision(layout.default_locale, "default", "locale",
                          f"no locale given and no rule matched: the layout's default "
                          f"{layout.default_locale}")


def check_payment_region(decision: LocaleDecision, scheme: PaymentScheme | None,
                         layout: Layout) -> None:
    """Refuse a locale whose region cannot print the data's domestic payment scheme
    (SEK + OCR on a Norwegian giro): INVALID_ARGUMENT naming the locale's side and the
    data's side. A layout that prints no national payment slip (`[print] payment_slip =
    false`: the b2b invoice names the account and reference in a sentence, under labels that
    follow the scheme) may carry any region's payment."""
    if scheme is None or not layout.section("print").get("payment_slip", True):
        return
    region = region_of(decision.locale)
    found = [
        (REFERENCE_REGION.get(scheme.reference_scheme), scheme.reference_field,
         f"gives a {scheme.reference_scheme} payment reference"),
        (ACCOUNT_REGION.get(scheme.account_kind), scheme.account_field,
         f"gives a {scheme.account_kind} account"),
    ]
    clashes = [(home, field, what) for home, field, what in found if home and home != region]
    if not clashes:
        return
    homes = sorted({home for home, _, _ in clashes})
    fitting = [loc for loc in layout.locales if region_of(loc) in homes]
    advice = (f"use {' or '.join(fitting)}" if fitting else
              f"layout {layout.ref} has no locale for {', '.join(homes)}")
    raise InvalidInput(
        f"locale {decision.locale} prints a payment slip for {region}, but the data's payment "
        f"belongs to {', '.join(homes)}",
        [FieldViolation(decision.field, f"{decision.locale} ({decision.reason}) is a {region} "
                                        f"locale; {advice}"),
         *(FieldViolation(field, f"{what}, which only banks in {home} clear")
           for home, field, what in clashes)],
    )
