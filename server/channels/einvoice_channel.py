"""E-invoice channel: Composition (its EN 16931 `Invoice`) -> one e-invoice `Output`.

Which syntax a recipient gets is decided by `server.compose.plan.einvoice_syntax` (the same
rule the channel plan used to put e-invoice in the plan):

1. buyer has a Peppol participant id -> Peppol BIS Billing 3.0 UBL (EHF 3 in Norway); the
   composer already refused data that breaks a Peppol rule (with the caller's JSON paths,
   `server.compose.validation`), and `check_peppol` runs once more here as the last look;
   an attachment that asks for it embeds the print PDF;
2. Finnish consumer -> Finvoice 3.0 XML;
3. otherwise, when the layout asks for it (`[einvoice] facturx = true`) -> Factur-X: the
   print PDF/A-3 with the CII (EN 16931 profile) embedded as `factur-x.xml`. The print PDF
   is rendered once per document; the renderer gets it through `pdf()`.

Facts: `syntax`, `document_type` (380 invoice, 381 credit note), `customization_id` for UBL,
`pages` for Factur-X (the print PDF's).

The composer asks `check_einvoice` while planning: a buyer's Peppol participant id that no
e-invoice can be addressed to (its scheme is no EAS code, or the identifier is invalid for its
scheme) is a routing problem, as if the recipient had no Peppol id; Peppol or Finvoice rules
the invoice data breaks keep the e-invoice out of the plan (or refuse it when it is owed,
see server/compose/plan.py).
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable

from server.channels.einvoice import (
    check_peppol,
    cii_bytes,
    cii_tree,
    embed_facturx,
    render_finvoice,
    render_ubl,
)
from server.channels.einvoice.ubl import CUSTOMIZATION_ID
from server.compose import identifiers as ids
from server.compose.layouts import Layout
from server.compose.model import Channel, Composition, Output
from server.compose.plan import FACTURX, FINVOICE, PEPPOL_UBL, Unfit, einvoice_syntax
from server.errors import FieldViolation, InvalidInput
from server.pdfium import page_count

XML = "application/xml"
PDF = "application/pdf"


def render_einvoice(
    composition: Composition, layout: Layout, pdf: Callable[[], Output] | None = None
) -> Output:
    invoice = composition.invoice
    if invoice is None:
        raise InvalidInput.field(
            "channels", f"layout {layout.ref} ({composition.kind}) has no EN 16931 invoice"
        )
    syntax = einvoice_syntax(composition.kind, composition.recipient, layout)
    facts: dict[str, object] = {"syntax": syntax, "document_type": invoice.type_code}
    if syntax == PEPPOL_UBL:
        problems = check_peppol(invoice, field_prefix="$")
        if problems:
            raise InvalidInput("the invoice cannot be sent as a Peppol BIS 3 e-invoice", problems)
        attach = any(a.rendered_pdf for a in invoice.attachments)
        if attach and pdf is None:
            raise ValueError("the invoice embeds its PDF: the e-invoice needs the print PDF")
        content, media_type = render_ubl(invoice, pdf().content if attach else None), XML
        facts["customization_id"] = CUSTOMIZATION_ID
    elif syntax == FINVOICE:
        content, media_type = render_finvoice(invoice, field_prefix="$"), XML
    elif syntax == FACTURX:
        if pdf is None:
            raise ValueError("Factur-X needs the print PDF")
        printed = pdf()
        cii = cii_tree(invoice)  # embedded as bytes, read as the tree: not parsed again
        content = embed_facturx(printed.content, cii_bytes(cii), parsed=cii)
        media_type = PDF
        # The print PDF plus an attachment: its pages are the print PDF's, which its renderer
        # counted already (read only when a print Output comes without the count). A job's
        # summary, the index and the metrics count an e-invoice's pages by this fact.
        pages = printed.facts.get("pages")
        facts["pages"] = pages if pages is not None else page_count(content)
    else:
        raise InvalidInput.field(
            "$.customer.peppol_id",
            "the recipient has no e-invoice address and the layout does not ask for Factur-X",
        )
    return Output(
        channel=Channel.EINVOICE,
        media_type=media_type,
        content=content,
        sha256=hashlib.sha256(content).hexdigest(),
        facts=facts,
    )


# Peppol problems with the buyer's electronic address: the e-invoice cannot be routed.
_BUYER_ENDPOINT = ("$.buyer.endpoint_id", "$.buyer.endpoint_scheme")
PEPPOL_ID_FIELD = "$.customer.peppol_id"


def _unroutable(peppol_id: str | None) -> list[FieldViolation]:
    """Why the recipient's Peppol participant id addresses no one (the builders then leave the
    buyer without an electronic address), with the rule it breaks; [] when it is routable."""
    try:
        if peppol_id:
            ids.peppol_id(peppol_id)
    except ids.IdentifierError as exc:
        return [FieldViolation(PEPPOL_ID_FIELD, str(exc))]
    return []


def check_einvoice(composition: Composition, layout: Layout) -> Unfit | None:
    """Why this document's e-invoice cannot be made (for the channel plan), or None."""
    invoice = composition.invoice
    if invoice is None:
        return Unfit(f"layout {layout.ref} ({composition.kind}) has no EN 16931 invoice")
    syntax = einvoice_syntax(composition.kind, composition.recipient, layout)
    if syntax == PEPPOL_UBL:
        problems = check_peppol(invoice, field_prefix="$")
        routing = _unroutable(composition.recipient.peppol_id) or [
            FieldViolation(PEPPOL_ID_FIELD, p.description)
            for p in problems if p.field in _BUYER_ENDPOINT]
        if routing:
            return Unfit("no Peppol e-invoice can be addressed to the buyer's participant id: "
                         + "; ".join(p.description for p in routing), tuple(routing),
                         unreachable=True)
        if problems:
            return Unfit("the invoice breaks Peppol BIS 3 rules: "
                         + "; ".join(str(p) for p in problems), tuple(problems))
    elif syntax == FINVOICE:
        try:
            render_finvoice(invoice, field_prefix="$")
        except InvalidInput as exc:
            return Unfit(f"{exc.message}: " + "; ".join(str(v) for v in exc.violations),
                         tuple(exc.violations))
    return None
