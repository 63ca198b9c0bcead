"""E-invoice channel: one computed EN 16931 `Invoice` -> the XML syntaxes receivers read.

* `render_ubl`      Peppol BIS Billing 3.0 (UBL 2.1 Invoice / CreditNote): EHF 3 in Norway,
                    Peppol in Sweden, Denmark and the rest of Europe;
* `render_cii`      UN/CEFACT CII D16B, Factur-X / ZUGFeRD EN 16931 profile (also as
                    its lxml tree, `cii_tree`, and that tree's bytes, `cii_bytes`);
* `embed_facturx`   that CII inside the archived PDF/A-3 (Factur-X hybrid PDF);
* `render_finvoice` Finvoice 3.0, the Finnish banks' consumer e-invoice;
* `check_peppol`    the Peppol rules the data can break, as field violations, before sending.

The renderers are pure functions (bytes out, no I/O, no arithmetic): every amount was
decided once by `server.compose.invoice.compute_invoice`.
"""

from server.channels.einvoice.cii import cii_bytes, cii_tree, render_cii
from server.channels.einvoice.facturx import embed_facturx
from server.channels.einvoice.finvoice import render_finvoice
from server.channels.einvoice.peppol import check_peppol
from server.channels.einvoice.ubl import render_ubl

__all__ = ["check_peppol", "cii_bytes", "cii_tree", "embed_facturx", "render_cii",
           "render_finvoice", "render_ubl"]
