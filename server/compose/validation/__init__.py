"""Business validation of a composed invoice, at composition time, with rule ids and paths.

    check_en16931(invoice, ...)   EN 16931 BR-*, BR-CO-*, BR-<category>-*, BR-DEC-*, BR-CL-*
    check_peppol(invoice)         Peppol BIS Billing 3.0 PEPPOL-* and the national rules
                                  (NO-R-*, SE-R-*, DK-R-*) of its schematron
    check_finvoice(invoice)       what Finvoice 3.0 makes mandatory or limits
    text_fields(data)             (JSON path, string) of every string in the input

Each check returns `Finding`s: the model path of the value (`lines[2].vat_rate`), the rule
id and a sentence. A builder knows where each model value came from in its input and gives
a `where` function that turns a model path into the JSON path of the input
(`$.transactions[1].amount`); `violations` turns findings into `FieldViolation`s whose
description starts with the rule id in brackets, e.g. `[PEPPOL-EN16931-R003] ...`, and the
API answers INVALID_ARGUMENT with them.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable

from server.compose.validation.en16931 import check_en16931
from server.compose.validation.findings import Finding
from server.compose.validation.peppol import check_peppol
from server.compose.validation.text import input_fields, text_fields
from server.errors import FieldViolation, InvalidInput

__all__ = ["Finding", "check_einvoice", "check_en16931", "check_peppol",
           "input_fields", "raise_if_invalid", "renamer", "text_fields", "violations"]

Where = Callable[[str], str]


def default_where(path: str) -> str:
    return f"$.{path}" if path else "$"


def renamer(renames: Iterable[tuple[str, str]]) -> Callable[[str], str]:
    """A model-path -> input-path function from (model prefix, input prefix) pairs; the first
    pair whose prefix matches (a whole path segment) is applied, and the rest of the path
    kept. The result is unprefixed: `where` functions add the `$.`."""
    pairs = tuple(renames)

    def rename(path: str) -> str:
        for old, new in pairs:
            if path == old or path.startswith((old + ".", old + "[")):
                return new + path[len(old):]
        return path

    return rename


def violations(findings: Iterable[Finding], where: Where | None = None) -> list[FieldViolation]:
    where = where or default_where
    return [FieldViolation(where(f.path), f"[{f.rule}] {f.text}") for f in findings]


def raise_if_invalid(invoice, *, where: Where | None = None, **inputs) -> None:
    """EN 16931 validation of a freshly computed invoice; `InvalidInput` with every finding."""
    found = check_en16931(invoice, **inputs)
    if found:
        raise InvalidInput("invalid invoice (EN 16931)", violations(found, where))


def check_einvoice(invoice, layout, recipient, where: Where | None = None) -> None:
    """The rules of the e-invoice syntax the recipient gets (`plan.einvoice_syntax`), before
    it is rendered: Peppol BIS 3 (PEPPOL-*, NO/SE/DK national rules) or Finvoice 3.0.
    Factur-X needs only EN 16931, which `compute_invoice` already checked. Raises
    `InvalidInput`."""
    from server.compose.plan import FINVOICE, PEPPOL_UBL, einvoice_syntax
    from server.compose.validation.finvoice import check_finvoice

    syntax = einvoice_syntax(layout.kind, recipient, layout)
    if syntax == PEPPOL_UBL:
        found, what = check_peppol(invoice), "Peppol BIS Billing 3.0"
    elif syntax == FINVOICE:
        found, what = check_finvoice(invoice), "Finvoice 3.0"
    else:
        return
    if found:
        raise InvalidInput(f"the invoice cannot be sent as {what}", violations(found, where))
