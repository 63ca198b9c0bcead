"""Machine-readable payment codes -> their payload text and an SVG image of the symbol.

- EPC QR code ("GiroCode", EPC069-12 version 002): a SEPA credit transfer a payer's banking
  app scans: BIC, payee name, IBAN, EUR amount, and an RF creditor reference (structured)
  or a remittance text. Payload and symbol by segno (`segno.helpers.make_epc_qr`, error
  correction M as the guideline requires).
- Finnish virtual bar code (virtuaaliviivakoodi, Finanssiala "Pankkiviivakoodi-opas" 5.3):
  54 digits, version 4 (national reference) or 5 (RF), printed as Code 128 (character set C,
  python-barcode) and as text. The 54 digits are a record layout, not an encoder:

      4 | IBAN 16 digits (FI dropped) | euros 6 | cents 2 | 000 | reference 20 (zero-padded)
        | due date YYMMDD
      5 | IBAN 16 digits | euros 6 | cents 2 | RF check digits 2 | RF body 21 (zero-padded)
        | due date YYMMDD

  An amount over 999 999,99 EUR and a missing due date are written as zeros: the payer
  then types them (the guide's rule).

Pure: no I/O; both engines embed the SVG text (WeasyPrint inline, Typst `image(bytes(..))`).
"""

from __future__ import annotations

import io
import re
from datetime import date
from decimal import Decimal

import barcode
from barcode.writer import SVGWriter
from segno import helpers

from server.compose.model import PaymentReference
from server.compose.text_limits import cut_at_space

__all__ = ["code128_svg", "epc_qr_svg", "fi_virtual_barcode"]

EPC_MAX_AMOUNT = Decimal("999999999.99")
EPC_NAME_CHARS = 70  # EPC069-12: the beneficiary's name, at most 70 characters
FI_MAX_AMOUNT = Decimal("999999.99")
FI_BARCODE_YEARS = (2000, 2099)  # the years a YYMMDD due date can name (read as 20YY)
# Code 128 sizes: narrowest bar 0.25 mm, 13 mm tall, quiet zones of 6.4 mm (over the 10
# modules Code 128 needs) each side: 95.8 mm in all for the 54 digits in character set C.
# These are the sizes Finnish invoices print; check them against the current Finanssiala
# guide before a print run (not verified against its text here).
FI_MODULE_MM = 0.25
FI_HEIGHT_MM = 13.0
FI_QUIET_MM = 6.4
# EPC069-12 fixes error correction M and at most QR version 13 (segno's make_epc_qr does
# both); the printed size is the templates' (24-26 mm).
_PROLOGUE = re.compile(r"^.*?(?=<svg)", re.S)


def _bare_svg(svg: str) -> str:
    """The `<svg>` element alone: no XML declaration, DOCTYPE (which names a URL) or comment,
    so the markup can sit inline in HTML and be read by Typst without fetching anything."""
    svg = _PROLOGUE.sub("", svg, count=1)
    return re.sub(r"<!--.*?-->", "", svg, flags=re.S).strip()


def epc_qr_svg(*, name: str, iban: str, amount: Decimal, reference: PaymentReference | None,
               text: str | None, bic: str | None) -> str:
    """The EPC QR code as SVG (no size: the template gives it one). An RF `reference` goes in
    the structured field (which carries ISO 11649 only) and `text` is then left out; else
    `text` is the unstructured remittance. A payee `name` over 70 characters (the field's
    limit) ends at the last space before it, not inside a word. Raises ValueError (segno's
    message) for data the EPC format cannot carry (amount outside 0.01-999 999 999.99, text
    over 140)."""
    structured = reference.value if reference is not None and reference.scheme == "rf" else None
    qr = helpers.make_epc_qr(name=cut_at_space(name, EPC_NAME_CHARS), iban=iban, amount=amount,
                             reference=structured, text=None if structured else text,
                             bic=bic)
    out = io.BytesIO()
    qr.save(out, kind="svg", xmldecl=False, svgns=True, border=4, scale=1, omitsize=True,
            nl=False)
    return _bare_svg(out.getvalue().decode("utf-8"))


def fi_barcode_carries(due_date: date | None) -> bool:
    """Whether the Finnish virtual bar code can carry `due_date` (none: written as zeros)."""
    return due_date is None or FI_BARCODE_YEARS[0] <= due_date.year <= FI_BARCODE_YEARS[1]


def fi_virtual_barcode(*, iban: str, amount: Decimal, reference: PaymentReference,
                       due_date: date | None) -> str:
    """The 54 digits of the Finnish virtual bar code (version 4 for a Finnish national
    reference, 5 for an RF reference with a numeric body). `iban` must be a Finnish IBAN
    (FI + 16 digits), `amount` in euros with at most 2 decimals. Raises ValueError for a
    reference of another scheme or an RF reference with letters, and for a due date outside
    `FI_BARCODE_YEARS` (the code writes YYMMDD, which payers' banks read as 20YY)."""
    if not (iban.startswith("FI") and len(iban) == 18 and iban[2:].isdigit()):
        raise ValueError("the Finnish virtual bar code needs a Finnish IBAN")
    cents_total = int((amount * 100).to_integral_value())
    if amount < 0 or amount > FI_MAX_AMOUNT:
        cents_total = 0  # the payer types the amount
    euros, cents = divmod(cents_total, 100)
    if not fi_barcode_carries(due_date):
        raise ValueError(f"the Finnish virtual bar code cannot carry the due date {due_date}")
    due = due_date.strftime("%y%m%d") if due_date else "000000"
    account_amount = f"{iban[2:]}{euros:06d}{cents:02d}"
    if reference.scheme == "fi":
        return f"4{account_amount}000{reference.value:0>20}{due}"
    if reference.scheme == "rf" and reference.value[4:].isdigit():
        return f"5{account_amount}{reference.value[2:4]}{reference.value[4:]:0>21}{due}"
    raise ValueError("the Finnish virtual bar code carries a Finnish or a numeric RF reference")


def code128_svg(digits: str) -> str:
    """A Code 128 symbol of `digits` as SVG (python-barcode, which encodes a run of digits
    in character set C), sized as the Finnish guide asks, without human-readable text (the
    slip prints the digits itself)."""
    symbol = barcode.get("code128", digits, writer=SVGWriter())
    svg = symbol.render(writer_options={
        "module_width": FI_MODULE_MM, "module_height": FI_HEIGHT_MM,
        "quiet_zone": FI_QUIET_MM, "write_text": False, "margin_top": 0, "margin_bottom": 0,
    })
    return _bare_svg(svg.decode("utf-8"))
