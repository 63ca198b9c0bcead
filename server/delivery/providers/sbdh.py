"""A UBL invoice or credit note -> the Peppol Standard Business Document that carries it
between access points (Peppol Envelope Specification 2.0, "SBDH" 1.3 profile).

    Sender / Receiver   iso6523-actorid-upis: the EndpointID (BT-34 / BT-49) with its
                        schemeID, "0192:923609016"
    DocumentIdentification   Standard = the UBL root's namespace, Type = its local name,
                        TypeVersion 2.1, InstanceIdentifier = a UUID (the same for every
                        attempt of one delivery), CreationDateAndTime
    BusinessScope       DOCUMENTID (busdox-docid-qns: root namespace::local name##
                        CustomizationID::2.1), PROCESSID (cenbii-procid-ubl: ProfileID),
                        COUNTRY_C1 (the seller's country, BT-40)

Raises `NotUbl` for anything else (a Factur-X PDF, Finvoice): those do not travel by Peppol.
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime

from lxml import etree

SBDH = "http://www.unece.org/cefact/namespaces/StandardBusinessDocumentHeader"
UBL_ROOTS = {
    "urn:oasis:names:specification:ubl:schema:xsd:Invoice-2": "Invoice",
    "urn:oasis:names:specification:ubl:schema:xsd:CreditNote-2": "CreditNote",
}
CBC = "urn:oasis:names:specification:ubl:schema:xsd:CommonBasicComponents-2"
CAC = "urn:oasis:names:specification:ubl:schema:xsd:CommonAggregateComponents-2"
ACTOR_SCHEME = "iso6523-actorid-upis"


class NotUbl(ValueError):
    pass


def instance_identifier(message_id: str) -> str:
    """The SBDH InstanceIdentifier of a delivery: a UUID derived from its message id."""
    return str(uuid.uuid5(uuid.NAMESPACE_URL, f"kanal:peppol:{message_id}"))


def _endpoint(root: etree._Element, party: str) -> str:
    found = root.find(f"{{{CAC}}}{party}/{{{CAC}}}Party/{{{CBC}}}EndpointID")
    if found is None or not (found.text or "").strip():
        raise NotUbl(f"the UBL has no {party} EndpointID")
    return f"{found.get('schemeID', '')}:{found.text.strip()}"


def _text(root: etree._Element, path: str) -> str:
    found = root.find(path)
    return (found.text or "").strip() if found is not None else ""


def wrap(ubl: bytes, instance: str, now: datetime | None = None) -> bytes:
    try:
        root = etree.fromstring(ubl)
    except etree.XMLSyntaxError as exc:
        raise NotUbl(f"not XML: {exc}") from exc
    namespace = etree.QName(root).namespace or ""
    local = UBL_ROOTS.get(namespace)
    if local is None or etree.QName(root).localname != local:
        raise NotUbl(f"not a UBL invoice or credit note ({etree.QName(root).text})")
    customization = _text(root, f"{{{CBC}}}CustomizationID")
    document_type = f"{namespace}::{local}##{customization}::2.1"
    process = _text(root, f"{{{CBC}}}ProfileID")
    country = _text(root, f"{{{CAC}}}AccountingSupplierParty/{{{CAC}}}Party/"
                          f"{{{CAC}}}PostalAddress/{{{CAC}}}Country/{{{CBC}}}IdentificationCode")

    sbd = etree.Element(f"{{{SBDH}}}StandardBusinessDocument", nsmap={None: SBDH})
    header = etree.SubElement(sbd, f"{{{SBDH}}}StandardBusinessDocumentHeader")

    def add(parent: etree._Element, name: str, text: str = "", **attributes: str
            ) -> etree._Element:
        element = etree.SubElement(parent, f"{{{SBDH}}}{name}", **attributes)
        if text:
            element.text = text
        return element

    add(header, "HeaderVersion", "1.0")
    add(add(header, "Sender"), "Identifier", _endpoint(root, "AccountingSupplierParty"),
        Authority=ACTOR_SCHEME)
    add(add(header, "Receiver"), "Identifier", _endpoint(root, "AccountingCustomerParty"),
        Authority=ACTOR_SCHEME)
    identification = add(header, "DocumentIdentification")
    add(identification, "Standard", namespace)
    add(identification, "TypeVersion", "2.1")
    add(identification, "InstanceIdentifier", instance)
    add(identification, "Type", local)
    add(identification, "CreationDateAndTime",
        (now or datetime.now(UTC)).isoformat(timespec="seconds"))
    scope = add(header, "BusinessScope")
    for kind, value, scheme in (("DOCUMENTID", document_type, "busdox-docid-qns"),
                                ("PROCESSID", process, "cenbii-procid-ubl"),
                                ("COUNTRY_C1", country, "")):
        entry = add(scope, "Scope")
        add(entry, "Type", kind)
        add(entry, "InstanceIdentifier", value)
        if scheme:
            add(entry, "Identifier", scheme)
    sbd.append(root)
    return etree.tostring(sbd, xml_declaration=True, encoding="UTF-8")
