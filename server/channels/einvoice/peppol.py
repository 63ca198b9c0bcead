"""`Invoice` -> the Peppol BIS Billing 3.0 rule violations it would raise, as field violations.

The rules themselves live with composition (`server.compose.validation.peppol`), where the
composer checks them before anything is rendered and names the caller's JSON paths; this is
the same check for a caller that holds only an `Invoice` (the channel's last look before it
writes UBL, tests), with model paths under `field_prefix`.
"""

from __future__ import annotations

from server.compose.en16931 import Invoice
from server.compose.validation import check_peppol as _check_peppol
from server.errors import FieldViolation


def check_peppol(invoice: Invoice, *, field_prefix: str = "$") -> list[FieldViolation]:
    """Every Peppol rule the invoice breaks (empty list: sendable)."""
    return [FieldViolation(f"{field_prefix}.{f.path}", f"[{f.rule}] {f.text}")
            for f in _check_peppol(invoice)]
