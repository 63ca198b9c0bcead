"""The payment's account and reference -> the payment slip its country's banks read: which form,
its fields in order, its code line and its machine-readable codes, labelled in the
document's language.

The form is chosen by the payment in the data (never by the language): the reference's
scheme and the account's kind, and for an IBAN with an RF reference or remittance text, the
account's country and the currency:

    form   when                                           prints
    giro   KID / OCR, Norwegian account, bankgiro,        the Fjordbank giro (NO, SE; and
           plusgiro; any other non-SEPA case              RF + IBAN outside SEPA euro)
    fik    FIK 71 / 73 / 75 (DK)                          indbetalingskort: payment id,
                                                          creditor no., the code line
    fi     Finnish reference, or RF/text to a Finnish     tilisiirto: IBAN, BIC, reference,
           IBAN (EUR)                                     due date, euro, virtual bar code
                                                          (Code 128) and its 54 digits
    sepa   RF or remittance text to a non-Finnish IBAN    SEPA credit transfer: IBAN, BIC,
           in EUR (DE, AT, ...)                           RF or Verwendungszweck, EPC QR
    pl     NRB or IBAN PL in PLN                          polecenie przelewu: account,
                                                          amount, PLN, tytuł przelewu
    gb     UK reference or sort code + account (GBP)      bank giro credit: sort code,
                                                          account no., reference, amount

Combinations no bank reads are refused with INVALID_ARGUMENT naming the data's fields: a
Finnish reference to a non-Finnish account, the virtual bar code without EUR, a UK reference
without a UK account, text as a Norwegian or Swedish reference. Labels come from the shared
`slip-labels.toml` (form -> locale -> key): the document's locale, else the same language
in another region, else en-GB.

Pure: no I/O but reading the labels file once.
"""

from __future__ import annotations

import base64
import functools
import tomllib
from collections.abc import Mapping
from datetime import date
from decimal import Decimal
from pathlib import Path
from typing import Any

from server.compose.model import PaymentReference
from server.compose.payments import codes
from server.compose.payments.accounts import PaymentAccount
from server.errors import FieldViolation, InvalidInput

__all__ = ["FORMS", "SlipPaths", "payee_account", "slip_form", "slip_context", "slip_labels"]

FORMS = ("giro", "fik", "fi", "sepa", "pl", "gb")

# The domestic giro accounts and the one currency their clearing takes: a Norwegian account
# number (KID giro, NOK) and Bankgirot's / PlusGirot's numbers (OCR giro, SEK). An invoice in
# EUR or JPY to a bankgiro printed "KRONOR ... ÖRE" over euro amounts.
GIRO_CURRENCIES = {"no_account": "NOK", "bankgiro": "SEK", "plusgiro": "SEK"}
FIK_SCHEMES = ("fik", "fik73", "fik75")
FALLBACK_LOCALE = "en-GB"


class SlipPaths:
    """The JSON paths of the data's payment fields, named in errors."""

    def __init__(self, account: str, due_date: str, payment: str = "$.payment",
                 currency: str = "$.currency"):
        self.account = account
        self.due_date = due_date
        self.payment = payment
        self.currency = currency

    @property
    def scheme(self) -> str:
        return f"{self.payment}.reference_scheme"


def _refuse(why: str, *fields: tuple[str, str]) -> InvalidInput:
    return InvalidInput(why, [FieldViolation(path, text) for path, text in fields])


def slip_form(reference: PaymentReference, account: PaymentAccount, currency: str,
              paths: SlipPaths) -> str:
    """The form (`FORMS`) the payment prints on; raises `InvalidInput` for a payment no
    country's banks read (see the module docstring)."""
    scheme, kind = reference.scheme, account.kind
    country = account.country
    if scheme in FIK_SCHEMES:
        return "fik"
    if scheme == "fi":
        if kind != "iban" or country != "FI":
            raise _refuse("a Finnish reference is paid to a Finnish account",
                          (paths.scheme, "fi: a Finnish national reference, which only "
                                         "banks in FI clear, to a Finnish account"),
                          (f"{paths.account}.number", "must then be a Finnish IBAN (FI...)"))
        if currency != "EUR":
            raise _refuse("the Finnish bank transfer form is in euros",
                          (paths.currency, f"{currency}: the Finnish form needs EUR"))
        return "fi"
    if scheme == "gb" or kind == "gb_account":
        if kind != "gb_account" or currency != "GBP":
            raise _refuse("a UK bank giro credit needs a UK reference, a sort code and account "
                          "number, and GBP",
                          (paths.scheme, f"{scheme}: use gb with a gb_account"),
                          (f"{paths.account}.type", f"{kind}: use gb_account"),
                          (paths.currency, f"{currency}: use GBP"))
        return "gb"
    if scheme == "text" and kind not in ("iban", "pl_nrb"):
        raise _refuse("remittance text goes with an IBAN (SEPA) or a Polish account",
                      (paths.scheme, f"text cannot be the reference of a {kind} account"))
    if kind == "pl_nrb" or (kind == "iban" and country == "PL" and currency == "PLN"):
        if currency != "PLN":
            raise _refuse("an NRB account takes a Polish transfer in PLN",
                          (paths.currency, f"{currency}: use PLN, or the account's IBAN "
                                           "(type iban) for a SEPA transfer in EUR"))
        return "pl"
    if kind == "iban" and scheme in ("rf", "text"):
        if currency == "EUR":
            return "fi" if country == "FI" and _fi_reference(reference) else "sepa"
        if scheme == "text":
            raise _refuse("remittance text on a giro outside SEPA euro transfers",
                          (paths.currency, f"{currency}: text goes with EUR (SEPA) or PLN"))
    home = GIRO_CURRENCIES.get(kind)
    if home is not None and currency != home:
        raise _refuse(f"a {kind} account takes {home} only (its giro clears in {home})",
                      (paths.currency, f"{currency}: use {home}, or an IBAN for other "
                                       "currencies"))
    return "giro"


def _fi_reference(reference: PaymentReference) -> bool:
    return reference.scheme == "rf" and reference.value[4:].isdigit()


@functools.cache
def _label_file(path: Path) -> Mapping[str, Mapping[str, Mapping[str, str]]]:
    return tomllib.loads(path.read_text(encoding="utf-8"))


def slip_labels(path: Path, form: str, locale: str) -> dict[str, str]:
    """The labels of `form` in `locale`: that locale's table, else one of the same language,
    else en-GB (`FALLBACK_LOCALE`), on top of the form's en-GB table so that every key
    exists."""
    tables = _label_file(path).get(form, {})
    language = locale.split("-")[0]
    chosen = tables.get(locale) or next(
        (table for tag, table in tables.items() if tag.split("-")[0] == language), None)
    return {**tables.get(FALLBACK_LOCALE, {}), **(chosen or {})}


def slip_context(*, form: str, labels: Mapping[str, str], reference: PaymentReference,
                 account: PaymentAccount, amount: Decimal, amount_text: str,
                 due_date: date | None, due_text: str | None, payee_name: str,
                 paths: SlipPaths) -> dict[str, Any]:
    """What the slip template of `form` places: `form`, `labels`, `fields` (label, value,
    key, in reading order), `code_line`, `qr_svg` / `barcode_svg` with their alt text, and
    `barcode_text`. `amount` is the Decimal due (rounded once by the builder), `amount_text`
    its locale form."""
    fields: list[dict[str, str]] = []

    def add(key: str, value: str | None) -> None:
        if value:
            fields.append({"key": key, "label": labels[key], "value": value})

    out: dict[str, Any] = {"form": form, "labels": dict(labels), "code_line": None,
                           "qr_svg": None, "barcode_svg": None, "barcode_text": None}
    if form == "fik":
        card, _, rest = reference.value.removeprefix("+").partition("<")
        payment_id, _, creditor = rest.rstrip("<").partition("+")
        add("card_type", f"+{card}")
        add("payment_id", payment_id)
        add("creditor", creditor)
        add("amount", amount_text)
        # printed as the indbetalingskort's OCR line: card type, payment id, creditor
        out["code_line"] = f"+{card}< {payment_id} +{creditor}<" if payment_id else \
            f"+{card}< +{creditor}<"
        if not payment_id:  # card type 73: the payer identifies the payment in a message
            out["labels"]["note"] = labels.get("note_73", labels["note"])
    elif form == "fi":
        add("iban", account.display)
        add("bic", account.bic)
        add("reference", reference.display)
        # the due date stands in the slip's head (Eräpäivä / Förfallodag), as on the form
        add("amount", amount_text)
        if not account.bic:
            raise _refuse("the Finnish bank transfer form prints the payee's BIC",
                          (f"{paths.account}.bic", "required for a Finnish account"))
        if not codes.fi_barcode_carries(due_date):  # a bank reads 2126-01-31 as 2026-01-31
            first, last = codes.FI_BARCODE_YEARS
            raise _refuse(f"the Finnish virtual bar code writes the due date as YYMMDD, read "
                          f"as {first}-{last} by the payer's bank",
                          (paths.due_date, f"{due_date} is outside {first}-{last}"))
        digits = codes.fi_virtual_barcode(iban=account.number, amount=amount,
                                          reference=reference, due_date=due_date)
        out["barcode_text"] = digits
        out["barcode_svg"] = codes.code128_svg(digits)
        out["barcode_alt"] = labels["barcode_alt"].format(digits=digits)
    elif form == "sepa":
        add("iban", account.display)
        add("bic", account.bic)
        add("reference" if reference.scheme == "rf" else "remittance", reference.display)
        add("amount", amount_text)
        if Decimal("0.01") <= amount <= codes.EPC_MAX_AMOUNT and account.iban:
            out["qr_svg"] = codes.epc_qr_svg(
                name=payee_name, iban=account.number, amount=amount, reference=reference,
                text=reference.value if reference.scheme != "rf" else None, bic=account.bic)
            out["qr_alt"] = labels["qr_alt"]
    elif form == "pl":
        add("account", account.display)
        add("amount", amount_text)
        add("title", reference.display)
    elif form == "gb":
        add("sort_code", account.sort_code)
        add("account", account.display)
        add("reference", reference.display)
        add("amount", amount_text)
    out["fields"] = fields
    # the same SVG as a data: URI for the HTML engine's <img> (alt text, no fetch)
    for key in ("qr", "barcode"):
        svg = out.get(f"{key}_svg")
        out[f"{key}_uri"] = ("data:image/svg+xml;base64," + base64.b64encode(
            svg.encode("utf-8")).decode("ascii")) if svg else None
    return out


LABELS_FILE = "fjordbank-2/slip-labels.toml"  # below the layouts' _shared folder


def payment_slip(*, shared_path: Path, locale: str, reference: PaymentReference,
                 account: PaymentAccount, currency: str, amount: Decimal, amount_text: str,
                 due_date: date | None, due_text: str | None, payee_name: str,
                 paths: SlipPaths) -> dict[str, Any]:
    """`slip_form` + `slip_context` with the form's labels in `locale`: the `payment.slip`
    value of a payment document's context (the builders of card-invoice, payment-reminder
    and b2b-invoice)."""
    form = slip_form(reference, account, currency, paths)
    labels = slip_labels(shared_path / LABELS_FILE, form, locale)
    return slip_context(form=form, labels=labels, reference=reference, account=account,
                        amount=amount, amount_text=amount_text, due_date=due_date,
                        due_text=due_text, payee_name=payee_name, paths=paths)


def fill_names(named: Mapping[str, str], slip: Mapping[str, Any]) -> dict[str, str]:
    """`builders.base.payment_labels` with what a layout's labels.toml does not name (the
    schemes and accounts of the new forms) taken from the slip's labels."""
    text = slip["labels"]
    account_key = next((k for k in ("iban", "account", "creditor") if k in text), "account")
    defaults = {"reference_label": text.get("reference") or text.get("title")
                or text.get("payment_id") or text.get("reference_name", ""),
                "reference_name": text.get("reference_name", ""),
                "account_label": text.get(account_key, ""),
                "account_name": text.get("account_name") or text.get(account_key, "")}
    if any(field["key"] == "sort_code" for field in slip["fields"]):
        defaults |= {"sort_code_label": text.get("sort_code", ""),
                     "sort_code_name": text.get("sort_code_name") or text.get("sort_code", "")}
    return {**named, **{k: v for k, v in defaults.items() if not named.get(k)}}


def payee_account(names: Mapping[str, str], account: PaymentAccount | None,
                  display: str) -> dict[str, str | None]:
    """What the e-mail and SMS need beyond `display` (the account as printed) to let a
    customer pay without the slip: `sort_code`, a UK account's sort code (``60-16-13``, else
    None), and `payee_account`, the account as running text (an SMS, a payment sentence)
    names it, with every number the payer keys in: ``{account_name} {display}``, and for a
    UK account its sort code first, ``sort code 60-16-13, account no. 31926819`` (UK Faster
    Payments and Bacs route a payment by sort code and account number, never by the account
    number alone). `names`: `fill_names`' result (`account_name`, `sort_code_name`)."""
    sort_code = account.sort_code if account else None
    text = f"{names.get('account_name', '')} {display}"
    if sort_code:
        text = f"{names.get('sort_code_name', '')} {sort_code}, {text}"
    return {"sort_code": sort_code, "payee_account": text}
