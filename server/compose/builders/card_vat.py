"""A card invoice's VAT exemption reason (EN 16931 BT-120) in the document's language.

Every line of a card invoice is VAT category O, "not subject to VAT" (`card_statement`): card
transactions are payments made on the card holder's behalf, outside the scope of VAT, and
interest and fees are exempt financial services (NO mva-loven § 3-6, SE mervärdesskattelagen
10 kap. 33 §, DK momsloven § 13 stk. 1 nr. 11, FI arvonlisäverolaki 41 §, DE UStG § 4 Nr. 8,
AT UStG § 6 Abs. 1 Z 8, PL ustawa o VAT art. 43 ust. 1 pkt 38-40, UK VATA 1994 Sch. 9
Group 5). The reason says so in the words the country's banks use, so that a Finnish card
holder's Finvoice (`VatFreeText`), a Norwegian EHF and a Swedish Peppol invoice (UBL
`cac:TaxCategory/cbc:TaxExemptionReason`) and a Factur-X (CII `ram:ExemptionReason`) read it
in the invoice's language, not in English. The texts name no paragraph: the issuer's country
(whose law applies) need not be the reader's.

This is server text, not a layout label: the builder serves every card-invoice version, and
released layout folders (labels.toml) are never changed. The table is keyed by language, a
locale where its country's banks word it otherwise (sv-FI: Finland's VAT act says
"finansieringstjänster"). Each text fits Finvoice's three `VatFreeText` elements of 70
characters wrapped at spaces (`server.channels.einvoice.finvoice.vat_free_texts`) whole.
"""

from __future__ import annotations

from collections.abc import Mapping
from types import MappingProxyType

FALLBACK = "en"

NOT_SUBJECT_TO_VAT: Mapping[str, str] = MappingProxyType({
    "en": "Not subject to VAT: card transactions are payments on the card holder's behalf; "
          "interest and fees are exempt financial services",
    "nb": "Ikke mva-pliktig: korttransaksjoner er betalinger på vegne av kortinnehaveren; "
          "renter og gebyrer er finansielle tjenester unntatt fra mva",
    "sv": "Ej momspliktig: korttransaktioner är betalningar för kortinnehavarens räkning; "
          "ränta och avgifter är momsfria finansiella tjänster",
    "sv-FI": "Ej momspliktig: korttransaktioner är betalningar för kortinnehavarens räkning; "
             "ränta och avgifter är momsfria finansieringstjänster",
    "da": "Ikke momspligtig: korttransaktioner er betalinger på kortholderens vegne; "
          "renter og gebyrer er momsfritagne finansielle ydelser",
    "fi": "Ei arvonlisäveron alainen: korttitapahtumat ovat kortinhaltijan puolesta "
          "suoritettuja maksuja; korot ja palkkiot ovat arvonlisäverottomia rahoituspalveluja",
    "de": "Nicht umsatzsteuerbar: Kartenumsätze sind Zahlungen im Auftrag des Karteninhabers; "
          "Zinsen und Entgelte sind umsatzsteuerfreie Finanzdienstleistungen",
    "pl": "Nie podlega VAT: transakcje kartą to płatności dokonywane w imieniu posiadacza "
          "karty; odsetki, opłaty i prowizje to usługi finansowe zwolnione z VAT",
})


def not_subject_to_vat(locale: str) -> str:
    """The exemption reason for a card invoice in `locale` (BCP 47, 'fi-FI'): the locale's
    own text, else its language's ('de-AT' -> 'de'), else English."""
    language = locale.split("-")[0].lower()
    return (NOT_SUBJECT_TO_VAT.get(locale) or NOT_SUBJECT_TO_VAT.get(language)
            or NOT_SUBJECT_TO_VAT[FALLBACK])
