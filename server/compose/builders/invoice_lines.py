"""The b2b-invoice input's lines (BG-25..BG-32, with their allowances and charges BG-27/28)
and the document-level allowances and charges (BG-20/BG-21), as `compute_invoice` takes them.

Separate from `invoice_input` because lines are the bulk of an invoice and of its business
terms: quantities, prices, item identifiers and classifications, each line's own period,
references and allowances. Values are read as `invoice_reader` says.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from server.compose.builders.base import amount
from server.compose.builders.invoice_reader import (
    InvoiceReader,
    optional_amount,
    optional_date,
    optional_rate,
    required_text,
    text,
)
from server.compose.en16931 import AllowanceCharge, ItemAttribute, LineAllowanceCharge
from server.compose.invoice import LineInput

__all__ = ["read_allowances_charges", "read_lines"]


def _line_allowances(items: Any, path: str, currency: str) -> list[LineAllowanceCharge]:
    """BG-27/BG-28: amounts (BT-136/BT-141) and base amounts (BT-137/BT-142) in the
    invoice currency, with its decimals (BR-DEC-24/27, BR-DEC-25/28)."""
    return [
        LineAllowanceCharge(
            is_charge=bool(ac["is_charge"]),
            amount=optional_amount(ac.get("amount"), f"{path}[{j}].amount",  # type: ignore[arg-type]
                                   allow_negative=True, currency=currency,
                                   rule="BR-DEC-27" if ac["is_charge"] else "BR-DEC-24"),
            reason=text(ac.get("reason")),
            reason_code=text(ac.get("reason_code")),
            base_amount=optional_amount(ac.get("base_amount"), f"{path}[{j}].base_amount",
                                        currency=currency,
                                        rule="BR-DEC-28" if ac["is_charge"] else "BR-DEC-25"),
            percent=optional_amount(ac.get("percent"), f"{path}[{j}].percent"),
        )
        for j, ac in enumerate(items or ())
    ]


def read_lines(reader: InvoiceReader, data: Mapping[str, Any],
               currency: str) -> list[LineInput]:
    """`$.lines[]` -> the lines; BR-26 (a price is required) goes to the reader's problems.
    Quantities and prices keep their decimals (BT-129, BT-146/148 have no BR-DEC limit)."""
    out = []
    for i, line in enumerate(data["lines"]):
        path = f"$.lines[{i}]"
        period = line.get("period") or {}
        price = line.get("unit_price")
        out.append(LineInput(
            id=text(line.get("id")) or str(i + 1),
            name=required_text(line.get("name")),
            quantity=amount(line["quantity"], f"{path}.quantity", allow_negative=True),
            unit_code=text(line.get("unit_code")) or "C62",
            unit_price=None if price is None else amount(price, f"{path}.unit_price",
                                                         allow_negative=True),
            vat_category=line["vat_category"],
            vat_rate=optional_rate(line.get("vat_rate"), f"{path}.vat_rate"),
            description=text(line.get("description")),
            period_start=optional_date(period.get("start"), f"{path}.period.start"),
            period_end=optional_date(period.get("end"), f"{path}.period.end"),
            note=text(line.get("note")),
            object_id=reader.identifier(line.get("object_id"), f"{path}.object_id"),
            order_line_reference=text(line.get("order_line_reference")),
            accounting_reference=text(line.get("accounting_reference")),
            allowances_charges=_line_allowances(line.get("allowances_charges"),
                                                f"{path}.allowances_charges", currency),
            gross_price=optional_amount(line.get("gross_price"), f"{path}.gross_price",
                                        allow_negative=True),
            price_discount=optional_amount(line.get("price_discount"), f"{path}.price_discount"),
            base_quantity=optional_amount(line.get("base_quantity"), f"{path}.base_quantity",
                                          allow_negative=True),
            seller_item_id=text(line.get("seller_item_id")),
            buyer_item_id=text(line.get("buyer_item_id")),
            standard_item_id=reader.identifier(line.get("standard_item_id"),
                                               f"{path}.standard_item_id"),
            classifications=[
                ident for j, c in enumerate(line.get("classifications", ()))
                if (ident := reader.identifier(c, f"{path}.classifications[{j}]"))
            ],
            origin_country=text(line.get("origin_country")),
            attributes=[ItemAttribute(required_text(a.get("name")), required_text(a.get("value")))
                        for a in line.get("attributes", ())],
        ))
        if price is None and line.get("gross_price") is None:
            reader.fail(f"{path}.unit_price", "[BR-26] the item net price (unit_price) or the "
                        "gross price is required")
    return out


def read_allowances_charges(data: Mapping[str, Any], currency: str) -> list[AllowanceCharge]:
    """`$.allowances_charges[]` -> the document-level allowances and charges (BG-20/BG-21),
    amounts and base amounts with the currency's decimals (BR-DEC-01/02, BR-DEC-05/06)."""
    return [
        AllowanceCharge(
            is_charge=bool(ac["is_charge"]),
            amount=optional_amount(ac.get("amount"), f"$.allowances_charges[{i}].amount",  # type: ignore[arg-type]
                                   allow_negative=True, currency=currency,
                                   rule="BR-DEC-05" if ac["is_charge"] else "BR-DEC-01"),
            reason=text(ac.get("reason")),
            vat_category=ac["vat_category"],
            vat_rate=optional_rate(ac.get("vat_rate"), f"$.allowances_charges[{i}].vat_rate"),
            reason_code=text(ac.get("reason_code")),
            base_amount=optional_amount(ac.get("base_amount"),
                                        f"$.allowances_charges[{i}].base_amount",
                                        currency=currency,
                                        rule="BR-DEC-06" if ac["is_charge"] else "BR-DEC-02"),
            percent=optional_amount(ac.get("percent"), f"$.allowances_charges[{i}].percent"),
        )
        for i, ac in enumerate(data.get("allowances_charges", ()))
    ]
