"""PDF/A-3 + CII XML -> a Factur-X / ZUGFeRD PDF: the same invoice for eyes and for machines.

Factur-X embeds the CII invoice (`cii.render_cii`) in the archived PDF/A-3 as the file
`factur-x.xml`, tied to the document by the catalog's `/AF` array with an
`/AFRelationship` (`/Data`: the XML carries the same data as the pages; `/Alternative` when
it is the legally binding form), and announces itself in the XMP metadata with the Factur-X
extension schema (`fx:DocumentType`, `fx:DocumentFileName`, `fx:Version`,
`fx:ConformanceLevel`) plus the PDF/A extension-schema description PDF/A requires for any
non-standard XMP property.

Why not `facturx.generate_from_binary`: it writes the PDF to a temporary file, stamps the
wall clock into the attachment and the XMP (so the same invoice would not give the same
bytes twice) and pulls in pypdf and requests at run time. Renderers here do no I/O and are
reproducible, so this module does the same few steps with pikepdf (already a dependency),
taking the attachment's date from the PDF's own metadata. The tests read the result back
with the `factur-x` package to prove the two agree.

The objects are appended to the PDF as an incremental update (`pdf_update`): the print
PDF's bytes stay as rendered and the XML's stream, its file specification, the new XMP and
the catalog follow them. pikepdf's whole-file rewrite (qpdf resolves and writes every
object: about 10 ms a document) remains for a file the update cannot extend safely.
"""

from __future__ import annotations

import hashlib
import io
import zlib

import pikepdf
from lxml import etree
from pikepdf import AttachedFileSpec, Name

from server.channels.einvoice.cii import NS_RSM
from server.channels.einvoice.pdf_update import IncrementalUpdate, NotAppendable, PdfValue, Ref

FILENAME = "factur-x.xml"
DESCRIPTION = "Factur-X invoice (CII, EN 16931)"
XML_MEDIA_TYPE = "text/xml"
FX_NS = "urn:factur-x:pdfa:CrossIndustryDocument:invoice:1p0#"
FX_VERSION = "1.0"
EN16931_LEVEL = "EN 16931"
RELATIONSHIPS = {"Data": Name.Data, "Alternative": Name.Alternative, "Source": Name.Source}

NS_X = "adobe:ns:meta/"
NS_RDF = "http://www.w3.org/1999/02/22-rdf-syntax-ns#"
NS_PDFAID = "http://www.aiim.org/pdfa/ns/id/"
NS_PDFA_EXT = "http://www.aiim.org/pdfa/ns/extension/"
NS_PDFA_SCHEMA = "http://www.aiim.org/pdfa/ns/schema#"
NS_PDFA_PROPERTY = "http://www.aiim.org/pdfa/ns/property#"

MEDIA_TYPE = "application/pdf"
CII_ROOT = f"{{{NS_RSM}}}CrossIndustryInvoice"

_FX_PROPERTIES = (
    ("DocumentFileName", "The name of the embedded XML document"),
    ("DocumentType", "The type of the hybrid document in capital letters, e.g. INVOICE"),
    ("Version", "The version of the standard applying to the embedded XML document"),
    ("ConformanceLevel", "The conformance level of the embedded XML document"),
)


def embed_facturx(
    pdf: bytes,
    cii_xml: bytes,
    *,
    parsed: etree._Element | None = None,
    level: str = EN16931_LEVEL,
    relationship: str = "Data",
) -> bytes:
    """Return `pdf` with `cii_xml` embedded as Factur-X.

    `pdf` must already be PDF/A-3 (WeasyPrint's `pdf_variant="pdf/a-3b"`): Factur-X is
    defined only on PDF/A-3, and claiming it on another PDF would be false. Raises
    `ValueError` otherwise, or for an unknown `relationship`.

    `parsed`: the tree `cii_xml` was serialized from (`cii.cii_tree`, `cii.cii_bytes`), so
    the XML is not parsed again (a tenth of a Factur-X's cost). The caller vouches that the
    two are one document: comparing them would cost what it spares, so only a tree that is
    no CII document at all (its root not `rsm:CrossIndustryInvoice`) is refused
    (`ValueError`). The bytes are what is embedded, whatever the tree; the tree is read
    only for the invoice's issue date, the attachment's date when the PDF has none.
    Without `parsed`, bytes that are not XML are refused (`lxml.etree.XMLSyntaxError`)
    before the PDF is touched.
    """
    if relationship not in RELATIONSHIPS:
        raise ValueError(f"relationship must be one of {sorted(RELATIONSHIPS)}")
    if parsed is None:
        cii = etree.fromstring(cii_xml)  # refuse bytes that are not XML before the PDF
    elif parsed.tag == CII_ROOT:
        cii = parsed
    else:
        raise ValueError(f"parsed must be the CII document's root {CII_ROOT}, not {parsed.tag}")

    try:
        # the update touches no page: qpdf need not push the page tree's inherited
        # attributes (/Resources, /MediaBox) down into every page object, which it does at
        # open by default (a tenth of the open's CPU for a 2-page card invoice)
        with pikepdf.open(io.BytesIO(pdf), attempt_recovery=False,
                          inherit_page_attributes=False) as doc:
            return _appended(pdf, doc, cii, cii_xml, level, relationship)
    except (NotAppendable, pikepdf.PdfError):
        # a file the update cannot extend safely (see pdf_update), or one qpdf must repair
        return _rewritten(pdf, cii, cii_xml, level, relationship)


def _rewritten(pdf: bytes, cii: etree._Element, cii_xml: bytes, level: str,
               relationship: str) -> bytes:
    """`pdf` with the Factur-X objects added, the whole file written anew by pikepdf."""
    with pikepdf.open(io.BytesIO(pdf)) as doc:
        metadata, stamp = _facturx_metadata(doc, cii, level)
        spec = AttachedFileSpec(
            doc,
            cii_xml,
            description=DESCRIPTION,
            filename=FILENAME,
            mime_type=XML_MEDIA_TYPE,
            creation_date=stamp,
            mod_date=stamp,
            relationship=RELATIONSHIPS[relationship],
        )
        doc.attachments[FILENAME] = spec  # pikepdf also lists it in the catalog's /AF
        doc.Root.Metadata = doc.make_stream(metadata, Type=Name.Metadata, Subtype=Name.XML)
        out = io.BytesIO()
        doc.save(out, deterministic_id=True)
        return out.getvalue()


def _facturx_metadata(doc: pikepdf.Pdf, cii: etree._Element, level: str) -> tuple[bytes, str]:
    """The document's XMP packet with the Factur-X properties added, and the date for the
    attachment (the PDF's own, else the invoice's issue date). `ValueError` when the
    document is no PDF/A-3."""
    prefix, xmp, suffix = _read_xmp(doc)
    if xmp is None or _pdfa_part(xmp) != "3":
        raise ValueError("Factur-X needs a PDF/A-3 document (pdfaid:part 3 in its XMP)")
    info = doc.docinfo
    stamp = str(info.get("/ModDate", info.get("/CreationDate", ""))) or _issue_stamp(cii)
    _add_facturx_xmp(xmp, level)
    return prefix + etree.tostring(xmp, encoding="UTF-8") + suffix, stamp


def _appended(pdf: bytes, doc: pikepdf.Pdf, cii: etree._Element, cii_xml: bytes, level: str,
              relationship: str) -> bytes:
    """`pdf` with the Factur-X objects appended as an incremental update: the XML as an
    embedded file stream (Flate, with its size, MD5 and dates: ISO 32000-1 §7.11.4), its
    file specification (/F, /UF, /AFRelationship: ISO 19005-3 §6.8), the new XMP in place
    of the old, and the catalog with /AF and the /EmbeddedFiles name tree. The objects are
    those pikepdf's `AttachedFileSpec` makes; `NotAppendable` when the catalog has
    attachments of its own (the whole-file path merges them)."""
    root = doc.Root
    names = root.get("/Names")
    if "/AF" in root or (names is not None and "/EmbeddedFiles" in names):
        raise NotAppendable("the document has attachments already")
    old_metadata = root.get("/Metadata")
    metadata, stamp = _facturx_metadata(doc, cii, level)
    update = IncrementalUpdate(pdf, doc)

    xml, spec = update.new(), update.new()
    update.put_stream(xml, {
        "/Type": Name.EmbeddedFile,
        "/Subtype": Name("/" + XML_MEDIA_TYPE),
        "/Params": {"/CheckSum": pikepdf.String(hashlib.md5(cii_xml).digest()),
                    "/CreationDate": stamp, "/ModDate": stamp, "/Size": len(cii_xml)},
        "/Filter": Name.FlateDecode,
    }, zlib.compress(cii_xml))
    update.put(spec, {
        "/Type": Name.Filespec, "/F": FILENAME, "/UF": FILENAME, "/Desc": DESCRIPTION,
        "/EF": {"/F": xml, "/UF": xml}, "/AFRelationship": RELATIONSHIPS[relationship],
    })
    metadata_ref = (Ref(*old_metadata.objgen) if old_metadata is not None
                    and old_metadata.is_indirect else update.new())
    update.put_stream(metadata_ref, {"/Type": Name.Metadata, "/Subtype": Name.XML}, metadata)

    embedded = {"/EmbeddedFiles": {"/Names": [FILENAME, spec]}}
    catalog: dict[str, PdfValue] = {key: value for key, value in root.items()
                                  if key not in ("/AF", "/Metadata", "/Names")}
    catalog["/Metadata"] = metadata_ref
    catalog["/AF"] = [spec]
    if names is None:
        catalog["/Names"] = embedded
    elif names.is_indirect:  # the name dictionary is redefined with the files added
        update.put(Ref(*names.objgen), {**dict(names.items()), **embedded})
        catalog["/Names"] = names
    else:
        catalog["/Names"] = {**dict(names.items()), **embedded}
    update.put(Ref(*root.objgen), catalog)
    return update.write()


def _issue_stamp(cii: etree._Element) -> str:
    """The invoice issue date (CII BT-2, format 102) as a PDF date, for the file's dates."""
    for el in cii.iter("{*}IssueDateTime"):
        text = "".join(el.itertext()).strip()
        if len(text) == 8 and text.isdigit():
            return f"D:{text}000000Z"
    return ""


def _read_xmp(doc: pikepdf.Pdf) -> tuple[bytes, etree._Element | None, bytes]:
    """The XMP packet as (xpacket header, x:xmpmeta element, xpacket trailer)."""
    stream = doc.Root.get("/Metadata")
    if stream is None:
        return b"", None, b""
    raw = stream.read_bytes()
    start = raw.find(b"<x:xmpmeta")
    end = raw.rfind(b"</x:xmpmeta>")
    if start < 0 or end < 0:
        return b"", None, b""
    end += len(b"</x:xmpmeta>")
    return raw[:start], etree.fromstring(raw[start:end]), raw[end:]


def _pdfa_part(xmp: etree._Element) -> str | None:
    for desc in xmp.iter(f"{{{NS_RDF}}}Description"):
        part = desc.get(f"{{{NS_PDFAID}}}part")
        if part is None:
            el = desc.find(f"{{{NS_PDFAID}}}part")
            part = el.text if el is not None else None
        if part:
            return part.strip()
    return None


def _add_facturx_xmp(xmp: etree._Element, level: str) -> None:
    """Add the fx: properties and their PDF/A extension schema description (once)."""
    rdf = xmp.find(f"{{{NS_RDF}}}RDF")
    if rdf is None:
        raise ValueError("XMP metadata without rdf:RDF")
    for desc in list(rdf):
        if desc.nsmap.get("fx") == FX_NS or any(
            etree.QName(child).namespace == FX_NS for child in desc
        ):
            rdf.remove(desc)

    fx = etree.SubElement(rdf, f"{{{NS_RDF}}}Description", nsmap={"fx": FX_NS})
    fx.set(f"{{{NS_RDF}}}about", "")
    for name, value in (
        ("DocumentType", "INVOICE"),
        ("DocumentFileName", FILENAME),
        ("Version", FX_VERSION),
        ("ConformanceLevel", level),
    ):
        etree.SubElement(fx, f"{{{FX_NS}}}{name}").text = value

    ext = etree.SubElement(
        rdf,
        f"{{{NS_RDF}}}Description",
        nsmap={
            "pdfaExtension": NS_PDFA_EXT,
            "pdfaSchema": NS_PDFA_SCHEMA,
            "pdfaProperty": NS_PDFA_PROPERTY,
        },
    )
    ext.set(f"{{{NS_RDF}}}about", "")
    bag = etree.SubElement(etree.SubElement(ext, f"{{{NS_PDFA_EXT}}}schemas"), f"{{{NS_RDF}}}Bag")
    schema = etree.SubElement(bag, f"{{{NS_RDF}}}li")
    schema.set(f"{{{NS_RDF}}}parseType", "Resource")
    etree.SubElement(schema, f"{{{NS_PDFA_SCHEMA}}}schema").text = "Factur-X PDFA Extension Schema"
    etree.SubElement(schema, f"{{{NS_PDFA_SCHEMA}}}namespaceURI").text = FX_NS
    etree.SubElement(schema, f"{{{NS_PDFA_SCHEMA}}}prefix").text = "fx"
    seq = etree.SubElement(
        etree.SubElement(schema, f"{{{NS_PDFA_SCHEMA}}}property"), f"{{{NS_RDF}}}Seq"
    )
    for name, description in _FX_PROPERTIES:
        prop = etree.SubElement(seq, f"{{{NS_RDF}}}li")
        prop.set(f"{{{NS_RDF}}}parseType", "Resource")
        etree.SubElement(prop, f"{{{NS_PDFA_PROPERTY}}}name").text = name
        etree.SubElement(prop, f"{{{NS_PDFA_PROPERTY}}}valueType").text = "Text"
        etree.SubElement(prop, f"{{{NS_PDFA_PROPERTY}}}category").text = "external"
        etree.SubElement(prop, f"{{{NS_PDFA_PROPERTY}}}description").text = description
