"""A payee's account as the data gives it -> a checked `PaymentAccount`, printed as its country's
banks print it.

A wrong account on a payment slip sends a customer's money astray, so every kind is checked
with the check its banks use, by python-stdnum where it has it:

- ``no_account``  Norway, 11 digits, MOD11 (`stdnum.no.kontonr`), printed ``1503.03.12345``
- ``bankgiro``    Sweden, 7-8 digits, Luhn, printed ``5050-1055``
- ``plusgiro``    Sweden, 2-8 digits, Luhn, printed ``4-3``... ``1234567-8``
- ``iban``        any IBAN country (MOD 97-10 and the country's BBAN structure and national
                  check where stdnum has one, `stdnum.iban`), printed in groups of four; with an
                  optional ``bic`` (ISO 9362, `stdnum.bic`), which the Finnish bank transfer
                  form and the EPC QR code carry (a Norwegian or Polish account may carry one
                  too, for the e-invoice's BT-86)
- ``pl_nrb``      Poland, the 26-digit NRB (Numer Rachunku Bankowego): its two leading check
                  digits are the IBAN's, so it is checked as ``PL`` + NRB (MOD 97-10, and the
                  BBAN structure); printed ``61 1090 1014 0000 0712 1981 2874``
- ``gb_account``  United Kingdom, a 6-digit sort code and an 8-digit account number, printed
                  ``60-16-13`` and ``31926819``. Format only: python-stdnum has no UK account
                  check, and the Vocalink modulus check needs Vocalink's weight table, which
                  changes every few months; the maintained way to run it is the payer's bank
                  (Confirmation of Payee), and no maintained PyPI library ships the current
                  table. A 7-digit account number is left-padded with 0 (the banks' rule).

Errors are `InvalidInput` naming the JSON path of the field at fault.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from stdnum import bic as stdnum_bic
from stdnum import iban, luhn
from stdnum.no import kontonr as no_kontonr

from server.errors import InvalidInput

__all__ = ["ACCOUNT_KINDS", "PaymentAccount", "payment_account"]

ACCOUNT_KINDS = ("no_account", "bankgiro", "plusgiro", "iban", "pl_nrb", "gb_account")


@dataclass(frozen=True, slots=True)
class PaymentAccount:
    """Where the payer sends money.

    kind: one of `ACCOUNT_KINDS`. `number` is the account as systems carry it (the IBAN form
    for ``pl_nrb``; sort code + account number, 14 digits, for ``gb_account``, as EN 16931
    BT-84 takes a UK account); `display` is how a slip prints it; `bic` and `sort_code`
    (printed ``60-16-13``) where the kind has them."""

    kind: str
    number: str
    display: str
    bic: str | None = None
    sort_code: str | None = None

    @property
    def country(self) -> str | None:
        """The ISO 3166-1 country of the account's bank (from the IBAN for ``iban``)."""
        if self.kind == "iban":
            return self.number[:2]
        return {"no_account": "NO", "bankgiro": "SE", "plusgiro": "SE", "pl_nrb": "PL",
                "gb_account": "GB"}.get(self.kind)

    @property
    def iban(self) -> str | None:
        """The IBAN, for the kinds that have one (``iban``, ``pl_nrb``)."""
        return self.number if self.kind in ("iban", "pl_nrb") else None


def _digits(value: str) -> str:
    return "".join(value.split()).replace(".", "").replace("-", "")


def _bic(data: Mapping[str, Any], path: str) -> str | None:
    value = data.get("bic")
    if value is None:
        return None
    if not stdnum_bic.is_valid(str(value)):
        raise InvalidInput.field(f"{path}.bic", f"{value!r} is not a valid BIC (ISO 9362: "
                                 "4 letters bank, 2 letters country, 2 location, 3 branch)")
    return stdnum_bic.compact(str(value))


def payment_account(data: Mapping[str, Any], path: str) -> PaymentAccount:
    """`{"type": ..., "number": ..., "bic"?: ..., "sort_code"?: ...}` -> a checked
    `PaymentAccount`. Raises `InvalidInput` at ``<path>.number`` (or ``.bic``,
    ``.sort_code``, ``.type``) saying which check failed."""
    kind = data["type"]
    raw = "".join(str(data["number"]).split())
    number = raw.replace(".", "").replace("-", "")

    def bad(why: str, field: str = "number") -> InvalidInput:
        return InvalidInput.field(f"{path}.{field}", f"{data[field]!r} {why}")

    if kind != "gb_account" and "sort_code" in data:
        raise InvalidInput.field(f"{path}.sort_code", "only a gb_account has a sort code")
    if kind == "no_account":
        if not no_kontonr.is_valid(number) or len(number) != 11:
            raise bad("is not a valid Norwegian account number (11 digits, MOD11)")
        return PaymentAccount(kind, number, f"{number[:4]}.{number[4:6]}.{number[6:]}",
                              bic=_bic(data, path))
    if kind == "bankgiro":
        if not (number.isdigit() and len(number) in (7, 8) and luhn.is_valid(number)):
            raise bad("is not a valid bankgiro number (7-8 digits, Luhn)")
        return PaymentAccount(kind, number, f"{number[:-4]}-{number[-4:]}")
    if kind == "plusgiro":
        if not (number.isdigit() and 2 <= len(number) <= 8 and luhn.is_valid(number)):
            raise bad("is not a valid plusgiro number (2-8 digits, Luhn)")
        return PaymentAccount(kind, number, f"{number[:-1]}-{number[-1]}")
    if kind == "iban":
        if not iban.is_valid(raw):
            raise bad("is not a valid IBAN")
        return PaymentAccount(kind, iban.compact(raw), iban.format(raw), bic=_bic(data, path))
    if kind == "pl_nrb":
        nrb = _digits(raw.upper().removeprefix("PL"))
        if not (nrb.isascii() and nrb.isdigit() and len(nrb) == 26):
            raise bad("is not a Polish account number (NRB: 26 digits)")
        if not iban.is_valid("PL" + nrb):
            raise bad("is not a valid Polish account number: its check digits (the first "
                      "two, MOD 97-10 as in IBAN PL) do not match")
        groups = " ".join([nrb[:2], *(nrb[i:i + 4] for i in range(2, 26, 4))])
        return PaymentAccount(kind, "PL" + nrb, groups, bic=_bic(data, path))
    if kind == "gb_account":
        if "sort_code" not in data:
            raise InvalidInput.field(f"{path}.sort_code", "a gb_account needs its sort code")
        sort_code = _digits(str(data["sort_code"]))
        if not (sort_code.isascii() and sort_code.isdigit() and len(sort_code) == 6):
            raise bad("is not a UK sort code (6 digits, e.g. 60-16-13)", "sort_code")
        if not (number.isascii() and number.isdigit() and len(number) in (7, 8)):
            raise bad("is not a UK account number (8 digits)")
        number = number.zfill(8)
        return PaymentAccount(kind, sort_code + number, number,
                              sort_code=f"{sort_code[:2]}-{sort_code[2:4]}-{sort_code[4:]}")
    raise InvalidInput.field(f"{path}.type", f"unknown account type {kind!r}")
