"""Computed invoice amounts -> the refusal of any with more digits than an amount may have.

Every amount, read or computed, has at most `money.MAX_AMOUNT_DIGITS` (15) digits before the
decimal point: Finvoice 3.0 writes no more (`-?[0-9]{1,15}`), and amounts of 15 + 2 digits
keep their sums exact within Decimal's default 28-digit precision. A builder refuses an input
amount beyond it where it reads it (`builders.base.amount`); this module refuses what
`server.compose.invoice.compute_invoice` computed beyond it, each at the JSON path of what it
was computed from (`where(model path)`, as every EN 16931 rule is reported), saying which
business term (BT-*) overflows, by how many digits, and the limit:

* a line amount (BT-131, quantity x price; a line allowance or charge BT-136/141 from its
  percentage; a document allowance or charge BT-92/99 from its percentage): at the line's
  quantity or at the percentage (`check_lines`);
* a sum no single field made: many lines each within the limit whose total is not
  (`check_totals`): BT-106 (sum of line net amounts), a VAT category's taxable amount BT-116
  and its VAT BT-117, BT-109, BT-110 and BT-112 at `lines`; BT-107/108 (sums of allowances
  and charges) at `allowances_charges`; BT-115 (amount due), when BT-112 fits, at `prepaid`,
  whose deduction then takes it beyond; BT-111 (VAT in the accounting currency), when BT-110
  fits, at `vat_accounting.exchange_rate`. One problem per path, the first term in that
  order: a sum that overflows makes the totals built on it overflow too.

Raises `InvalidInput` ("amounts too large to compute exactly", INVALID_ARGUMENT with a
`google.rpc.BadRequest` field violation per path) rather than leaving the amount to fail a
channel (a Finvoice that cannot be written) or to reach `builders._within_precision`, which
could only name `data`.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from decimal import Decimal

from server.compose.en16931 import AllowanceCharge, InvoiceLine, Totals, VatBreakdown
from server.compose.money import MAX_AMOUNT_DIGITS
from server.errors import FieldViolation, InvalidInput

TOO_LARGE = "amounts too large to compute exactly"


def too_large(value: Decimal) -> bool:
    """More digits before the decimal point than an amount may have (`MAX_AMOUNT_DIGITS`)."""
    return not value.is_zero() and value.adjusted() >= MAX_AMOUNT_DIGITS


def _why(what: str, value: Decimal) -> str:
    return (f"{what} has {value.adjusted() + 1} digits before the decimal point; an amount "
            f"has at most {MAX_AMOUNT_DIGITS}")


def check_lines(lines: Sequence[InvoiceLine], document_ac: Sequence[AllowanceCharge],
                where: Callable[[str], str]) -> None:
    """Refuse a line net amount (BT-131) at its line's quantity (BT-129; its price multiplies
    it, and the message names the price too), an allowance or charge computed from a
    percentage (BT-136/141, BT-92/99) at that percentage. Raises `InvalidInput`."""
    problems = []

    def refuse(path: str, what: str, value: Decimal) -> None:
        problems.append(FieldViolation(where(path), _why(what, value)))

    for i, line in enumerate(lines):
        if too_large(line.net_amount):
            refuse(f"lines[{i}].quantity", f"the line net amount (BT-131), quantity x price "
                   f"({where(f'lines[{i}].unit_price')}),", line.net_amount)
        for j, ac in enumerate(line.allowances_charges):
            if too_large(ac.amount):
                refuse(f"lines[{i}].allowances_charges[{j}].percent",
                       "the line allowance or charge, base amount x percent,", ac.amount)
    for j, ac in enumerate(document_ac):
        if too_large(ac.amount):
            refuse(f"allowances_charges[{j}].percent",
                   "the allowance or charge, base amount x percent,", ac.amount)
    if problems:
        raise InvalidInput(TOO_LARGE, problems)


def _category(entry: VatBreakdown) -> str:
    return entry.category if entry.rate is None else f"{entry.category} {entry.rate}%"


def check_totals(totals: Totals, breakdown: Sequence[VatBreakdown],
                 where: Callable[[str], str]) -> None:
    """Refuse a sum beyond `MAX_AMOUNT_DIGITS` digits (see the module docstring for which sum
    is named at which path), one problem per path. Raises `InvalidInput`."""
    terms: list[tuple[str, str, Decimal | None]] = [
        ("lines", "the sum of the line net amounts (BT-106)", totals.line_extension)]
    for entry in breakdown:
        terms += [
            ("lines", f"the taxable amount of VAT category {_category(entry)} (BT-116)",
             entry.taxable_amount),
            ("lines", f"the VAT of category {_category(entry)} (BT-117)", entry.tax_amount)]
    terms += [
        ("allowances_charges", "the sum of the allowances (BT-107)", totals.allowances),
        ("allowances_charges", "the sum of the charges (BT-108)", totals.charges),
        ("lines", "the total without VAT (BT-109)", totals.tax_exclusive),
        ("lines", "the VAT total (BT-110)", totals.tax),
        ("lines", "the total with VAT (BT-112)", totals.tax_inclusive),
    ]
    # named where they came from only when the sum they are made from fits
    if not too_large(totals.tax_inclusive):
        terms.append(("prepaid", "the amount due (BT-115), the total with VAT less the paid "
                      "amount,", totals.payable))
    if not too_large(totals.tax):
        terms.append(("vat_accounting.exchange_rate", "the VAT total in the VAT accounting "
                      "currency (BT-111), BT-110 x exchange rate,",
                      totals.tax_in_accounting_currency))
    problems: dict[str, FieldViolation] = {}
    for path, what, value in terms:
        if value is not None and too_large(value):
            field = where(path)
            problems.setdefault(field, FieldViolation(field, _why(what, value)))
    if problems:
        raise InvalidInput(TOO_LARGE, list(problems.values()))
