"""Payment data per country for the payment layouts, and those layouts with the eight countries'
locales (tests of server/compose/payments).

The country locales and samples of issue 15 item 1 come with their own branch; until every
payment layout lists a country's locale, `layout_with_locales` gives a copy of the layouts
whose manifest lists it, with that locale's labels.toml table copied from en-GB, else nb-NO
(the slip's own labels come from `_shared/fjordbank-2/slip-labels.toml`, which is what these
tests read). Once the layouts have the locales, the copy is the layouts themselves.
"""

from __future__ import annotations

import copy
import functools
import json
import re
import shutil
import tempfile
from datetime import UTC, datetime
from pathlib import Path

from server.compose.composer import ComposeRequest, compose
from server.compose.layouts import DEFAULT_LAYOUTS_DIR, LayoutRegistry
from server.compose.model import Composition

NOW = datetime(2026, 3, 2, 9, tzinfo=UTC)
PAYMENT_LAYOUTS = ("card-invoice", "payment-reminder", "b2b-invoice")
COUNTRY_LOCALES = ("da-DK", "fi-FI", "sv-FI", "de-DE", "de-AT", "pl-PL", "en-GB")

# country -> (locale, currency, payee account, payment); accounts are published examples
# that pass their checks (IBAN registry examples, the NRB of a Polish bank's help page).
COUNTRIES: dict[str, tuple[str, str, dict, dict]] = {
    "DK": ("da-DK", "DKK", {"type": "iban", "number": "DK50 0040 0440 1162 43"},
           {"reference_scheme": "fik", "reference_base": "4711", "creditor_number": "87654321"}),
    "FI": ("fi-FI", "EUR", {"type": "iban", "number": "FI21 1234 5600 0007 85", "bic": "NDEAFIHH"},
           {"reference_scheme": "fi", "reference_base": "2026004711"}),
    "DE": ("de-DE", "EUR", {"type": "iban", "number": "DE89 3704 0044 0532 0130 00",
                            "bic": "COBADEFFXXX"},
           {"reference_scheme": "rf", "reference_base": "2026004711"}),
    "AT": ("de-AT", "EUR", {"type": "iban", "number": "AT61 1904 3002 3457 3201",
                            "bic": "BKAUATWW"},
           {"reference_scheme": "text", "reference": "Rechnung 2026-4711 Kunde 10042"}),
    "PL": ("pl-PL", "PLN", {"type": "pl_nrb", "number": "61 1090 1014 0000 0712 1981 2874"},
           {"reference_scheme": "text", "reference": "Faktura 2026/03/4711, klient 10042"}),
    "GB": ("en-GB", "GBP", {"type": "gb_account", "number": "31926819", "sort_code": "60-16-13"},
           {"reference_scheme": "gb", "reference": "FJB 10042 4711"}),
}

# organisation numbers that pass the country's check (DK CVR MOD11, FI Y-tunnus)
ORG_NUMBERS = {"DK": ("13585628", "25313763"), "FI": ("0112038-9", "0112038-9")}

_ACCOUNT_AT = {"card-invoice": ("issuer",), "payment-reminder": ("creditor",),
               "b2b-invoice": ("seller",)}


@functools.cache
def _layouts_root() -> Path:
    """The layouts folder, or a copy whose payment layouts list every country locale."""
    real = LayoutRegistry()
    if all(loc in real.get(lid).locales for lid in PAYMENT_LAYOUTS for loc in COUNTRY_LOCALES):
        return DEFAULT_LAYOUTS_DIR
    root = Path(tempfile.mkdtemp(prefix="kanal-country-layouts-")) / "layouts"
    shutil.copytree(DEFAULT_LAYOUTS_DIR, root)
    for lid in PAYMENT_LAYOUTS:
        folder = root / lid / real.get(lid).version
        layout = real.get(lid)
        missing = [loc for loc in COUNTRY_LOCALES if loc not in layout.locales]
        manifest = (folder / "manifest.toml").read_text("utf-8")
        locales = list(layout.locales) + missing
        manifest = re.sub(r"(?m)^locales = \[.*\]$", "locales = " + json.dumps(locales),
                          manifest, count=1)
        (folder / "manifest.toml").write_text(manifest, "utf-8")
        base = "en-GB" if "en-GB" in layout.labels else layout.default_locale
        extra = []
        for loc in missing:
            extra.append(f'\n["{loc}"]')
            extra += [f"{k} = {json.dumps(v, ensure_ascii=False)}"
                      for k, v in layout.labels[base].items()]
        with (folder / "labels.toml").open("a", encoding="utf-8") as out:
            out.write("\n".join(extra) + "\n")
        schema = json.loads((folder / "schema.json").read_text("utf-8"))
        if "locale" in schema.get("properties", {}):
            schema["properties"]["locale"]["enum"] = locales
            (folder / "schema.json").write_text(json.dumps(schema), "utf-8")
    return root


@functools.cache
def registry() -> LayoutRegistry:
    return LayoutRegistry(_layouts_root())


def country_data(layout_id: str, country: str, payment: dict | None = None,
                 account: dict | None = None) -> tuple[str, dict]:
    """(locale, data): the layout's sample with the country's currency, payee account,
    payment and addresses."""
    layout = registry().get(layout_id)
    locale, currency, default_account, default_payment = COUNTRIES[country]
    # the country's own sample (its addresses, postal codes and fees are that country's),
    # with this module's payee account and payment
    data = json.loads(layout.sample_data(locale))
    data["currency"] = currency
    data["payment"] = copy.deepcopy(payment if payment is not None else default_payment)
    party = data[_ACCOUNT_AT[layout_id][0]]
    party["payment_account"] = copy.deepcopy(account or default_account)
    if "address" in party:
        party["address"]["country"] = country
    customer_address = data.get("customer", {}).get("address")
    if customer_address:
        customer_address["country"] = country
    if country in ORG_NUMBERS:
        party["org_number"] = ORG_NUMBERS[country][0]
        if data.get("customer", {}).get("org_number"):
            data["customer"]["org_number"] = ORG_NUMBERS[country][1]
    if layout_id == "b2b-invoice":
        data.get("payment", {}).pop("means", None)
    return locale, data


def compose_country(layout_id: str, country: str, payment: dict | None = None,
                    account: dict | None = None, locale: str | None = None) -> Composition:
    chosen, data = country_data(layout_id, country, payment, account)
    layout = registry().get(layout_id)
    return compose(ComposeRequest(tenant="t", layout=layout, data=json.dumps(data),
                                  document_id="d", now=NOW, locale=locale or chosen))
