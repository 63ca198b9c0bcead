"""A tagged PDF/A-3 from WeasyPrint -> the same PDF identified as PDF/UA-1 too.

WeasyPrint writes one variant per document: `pdf/a-3a` gives a tagged PDF/A-3 (structure
tree, `/MarkInfo`, `/Lang`, `/ViewerPreferences /DisplayDocTitle`, alt text on figures,
`/TH` cells), `pdf/ua-1` gives the same tags without
PDF/A. An archived invoice needs both (PDF/UA-1 must ride on PDF/A-2 or -3, never -1), so
the engine renders `pdf/a-3a` and this step adds what ISO 14289-1 §5 asks of the file
itself: `pdfuaid:part = 1` in the XMP metadata, with the PDF/A extension-schema
description PDF/A needs for any property outside its predefined schemas (ISO 19005-3
§6.6.2.3). Typst does both in one pass (`pdf_standards=["a-3a", "ua-1"]`).

Before that, `settle_table_tags` (server/channels/table_tags.py) gives WeasyPrint's table
tags the structure the HTML table model means: header cells get their `/Scope`, and tables
without header cells (the Fjordbank masthead, signatures, campaign area, giro slip parties:
layout, not data) become `/Div`s; then `drop_empty_elements` (server/channels/empty_tags.py)
takes out the elements that mark nothing (the empty `/Span` of a logo drawn as an artifact).

What WeasyPrint 70 cannot do, so no post-step here pretends it can:

* running headers and footers (CSS margin boxes) are tagged as `/Span`s outside the
  document's structure tree, not as pagination artifacts;
* an `<img>` is always a `/Figure`: a decorative image cannot be an artifact.

The Typst templates have none of these limits (`grid` for layout, `table.header`, page
furniture as artifacts), which is one reason the volume layouts moved to Typst.
"""

from __future__ import annotations

import io

import pikepdf
from lxml import etree

from server.channels.empty_tags import drop_empty_elements
from server.channels.table_tags import settle_table_tags

NS_RDF = "http://www.w3.org/1999/02/22-rdf-syntax-ns#"
NS_PDFUAID = "http://www.aiim.org/pdfua/ns/id/"
NS_PDFA_EXT = "http://www.aiim.org/pdfa/ns/extension/"
NS_PDFA_SCHEMA = "http://www.aiim.org/pdfa/ns/schema#"
NS_PDFA_PROPERTY = "http://www.aiim.org/pdfa/ns/property#"


def identify_pdf_ua(pdf: bytes, part: int = 1) -> bytes:
    """Return `pdf` with its table tags settled (`settle_table_tags`), its empty structure
    elements dropped (`drop_empty_elements`) and `pdfuaid:part` (ISO 14289-`part`) declared
    in its XMP metadata.

    `pdf` must be tagged (`/MarkInfo /Marked true` and a `/StructTreeRoot`): declaring
    PDF/UA on an untagged file would be false. Raises `ValueError` otherwise. The file
    is saved with a deterministic `/ID`, so the same input gives the same bytes.
    """
    with pikepdf.open(io.BytesIO(pdf)) as doc:
        marked = doc.Root.get("/MarkInfo", {}).get("/Marked", False)
        if not marked or "/StructTreeRoot" not in doc.Root:
            raise ValueError("PDF/UA needs a tagged PDF (MarkInfo/Marked and a structure tree)")
        settle_table_tags(doc)
        drop_empty_elements(doc)
        stream = doc.Root.get("/Metadata")
        raw = stream.read_bytes() if stream is not None else b""
        start, end = raw.find(b"<x:xmpmeta"), raw.rfind(b"</x:xmpmeta>")
        if start < 0 or end < 0:
            raise ValueError("PDF/UA identification needs the file's XMP metadata")
        end += len(b"</x:xmpmeta>")
        xmp = etree.fromstring(raw[start:end])
        rdf = xmp.find(f"{{{NS_RDF}}}RDF")
        if rdf is None:
            raise ValueError("XMP metadata without rdf:RDF")
        _add_pdfuaid(rdf, part)
        doc.Root.Metadata = doc.make_stream(
            raw[:start] + etree.tostring(xmp, encoding="UTF-8") + raw[end:],
            Type=pikepdf.Name.Metadata, Subtype=pikepdf.Name.XML)
        out = io.BytesIO()
        doc.save(out, deterministic_id=True)
        return out.getvalue()


def _add_pdfuaid(rdf: etree._Element, part: int) -> None:
    identification = etree.SubElement(rdf, f"{{{NS_RDF}}}Description",
                                      nsmap={"pdfuaid": NS_PDFUAID})
    identification.set(f"{{{NS_RDF}}}about", "")
    etree.SubElement(identification, f"{{{NS_PDFUAID}}}part").text = str(part)

    ext = etree.SubElement(rdf, f"{{{NS_RDF}}}Description", nsmap={
        "pdfaExtension": NS_PDFA_EXT, "pdfaSchema": NS_PDFA_SCHEMA,
        "pdfaProperty": NS_PDFA_PROPERTY})
    ext.set(f"{{{NS_RDF}}}about", "")
    bag = etree.SubElement(etree.SubElement(ext, f"{{{NS_PDFA_EXT}}}schemas"), f"{{{NS_RDF}}}Bag")
    schema = etree.SubElement(bag, f"{{{NS_RDF}}}li")
    schema.set(f"{{{NS_RDF}}}parseType", "Resource")
    etree.SubElement(schema, f"{{{NS_PDFA_SCHEMA}}}schema").text = "PDF/UA Identification schema"
    etree.SubElement(schema, f"{{{NS_PDFA_SCHEMA}}}namespaceURI").text = NS_PDFUAID
    etree.SubElement(schema, f"{{{NS_PDFA_SCHEMA}}}prefix").text = "pdfuaid"
    seq = etree.SubElement(etree.SubElement(schema, f"{{{NS_PDFA_SCHEMA}}}property"),
                           f"{{{NS_RDF}}}Seq")
    prop = etree.SubElement(seq, f"{{{NS_RDF}}}li")
    prop.set(f"{{{NS_RDF}}}parseType", "Resource")
    for name, value in (("name", "part"), ("valueType", "Integer"), ("category", "internal"),
                        ("description", "Part number of ISO 14289 (PDF/UA)")):
        etree.SubElement(prop, f"{{{NS_PDFA_PROPERTY}}}{name}").text = value
