"""Check a PDF the way an archive and an accessibility audit would, independent of how
Kanal made it.

* `pdf_ua_findings`: the `pdfua` package (pikepdf based, the machine-checkable subset of
  PDF/UA-1 / ISO 14289-1 and WCAG 2.1 that needs no JVM; pinned in constraints.txt) runs
  every rule it has; a rule that could not run counts as a finding, except UA-14-001
  (non-empty headings), which pdfua 0.1.3 cannot evaluate on pikepdf 10 (it asks an
  Array for `.is_integer` and pikepdf raises ValueError, not AttributeError): that rule
  is checked here instead, by walking the structure tree the same way.
* `pdf_a_problems`: the PDF/A-3 essentials of ISO 19005-3 an archive relies on: XMP
  identification (`pdfaid:part` 3 and a conformance level; `pdfuaid:part` 1 when PDF/UA is
  claimed), an output intent (GTS_PDFA1 with its ICC profile), every font embedded, no
  encryption, and every attached file tied to the document (`/AF`, `/AFRelationship`,
  `/F` and `/UF`, ISO 19005-3 §6.8 and ISO 14289-1 §7.11).

This is not a conformance certificate (veraPDF is the reference; it needs a JVM, which CI
does not have): it is the set of checks a regression in either engine would trip.
"""

from __future__ import annotations

import io
import tempfile
from pathlib import Path

import pikepdf
from lxml import etree
from pdfua import Validator

NS = {"rdf": "http://www.w3.org/1999/02/22-rdf-syntax-ns#",
      "pdfaid": "http://www.aiim.org/pdfa/ns/id/",
      "pdfuaid": "http://www.aiim.org/pdfua/ns/id/"}
BROKEN_RULES = {"UA-14-001"}  # pdfua 0.1.3 on pikepdf 10: checked by `_empty_headings`
HEADINGS = {f"/H{n}" for n in range(1, 7)} | {"/H"}


def pdf_ua_findings(pdf: bytes) -> list[str]:
    """Every pdfua finding as "RULE page: message", plus rules it could not evaluate."""
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "document.pdf"
        path.write_bytes(pdf)
        report = Validator().validate(str(path))
    found = [f"{f.rule_id} {f.location.describe()}: {f.message}" for f in report.findings]
    for outcome in report.outcomes:
        if outcome.skipped_reason and outcome.rule_id not in BROKEN_RULES:
            found.append(f"{outcome.rule_id} not evaluated: {outcome.skipped_reason}")
    with pikepdf.open(io.BytesIO(pdf)) as doc:
        found += _empty_headings(doc)
    return found


def _empty_headings(doc: pikepdf.Pdf) -> list[str]:
    """UA-14-001 (ISO 14289-1 §7.4): a heading element must mark some content."""
    def marks_content(node: object) -> bool:
        if isinstance(node, int) and not isinstance(node, bool):
            return True  # an MCID
        if isinstance(node, pikepdf.Array):
            return any(marks_content(item) for item in node)
        if isinstance(node, pikepdf.Dictionary):
            if node.get("/Type") == pikepdf.Name.MCR:
                return True
            return "/K" in node and marks_content(node.K)
        return False

    problems = []
    stack = [doc.Root.get("/StructTreeRoot")]
    while stack:
        node = stack.pop()
        if isinstance(node, pikepdf.Array):
            stack.extend(node)
        elif isinstance(node, pikepdf.Dictionary):
            if str(node.get("/S", "")) in HEADINGS and not marks_content(node.get("/K")):
                problems.append(f"UA-14-001: empty heading {node.S}")
            if "/K" in node:
                stack.append(node.K)
    return problems


def xmp_identification(pdf: bytes) -> dict[str, str]:
    """pdfaid:part/conformance and pdfuaid:part from the XMP (attribute or element form)."""
    with pikepdf.open(io.BytesIO(pdf)) as doc:
        stream = doc.Root.get("/Metadata")
        raw = stream.read_bytes() if stream is not None else b""
    start, end = raw.find(b"<x:xmpmeta"), raw.rfind(b"</x:xmpmeta>")
    if start < 0 or end < 0:
        return {}
    xmp = etree.fromstring(raw[start:end + len(b"</x:xmpmeta>")])
    found = {}
    for prefix, name in (("pdfaid", "part"), ("pdfaid", "conformance"), ("pdfuaid", "part")):
        key = f"{{{NS[prefix]}}}{name}"
        for desc in xmp.iter(f"{{{NS['rdf']}}}Description"):
            value = desc.get(key)
            element = desc.find(key)
            value = value if value is not None else (
                element.text if element is not None else None)
            if value:
                found[f"{prefix}:{name}"] = value.strip()
    return found


def pdf_a_problems(pdf: bytes, *, ua: bool) -> list[str]:
    """What keeps `pdf` from the PDF/A-3 essentials (and PDF/UA-1 identification if `ua`)."""
    problems = []
    ident = xmp_identification(pdf)
    if ident.get("pdfaid:part") != "3":
        problems.append(f"XMP pdfaid:part is {ident.get('pdfaid:part')!r}, not '3'")
    if ident.get("pdfaid:conformance") not in ("A", "B", "U"):
        problems.append(f"XMP pdfaid:conformance {ident.get('pdfaid:conformance')!r}")
    if ua and ident.get("pdfuaid:part") != "1":
        problems.append(f"XMP pdfuaid:part is {ident.get('pdfuaid:part')!r}, not '1'")
    with pikepdf.open(io.BytesIO(pdf)) as doc:
        if doc.is_encrypted or "/Encrypt" in doc.trailer:
            problems.append("the file is encrypted")
        intents = [i for i in doc.Root.get("/OutputIntents", [])
                   if i.get("/S") == pikepdf.Name.GTS_PDFA1 and "/DestOutputProfile" in i]
        if not intents:
            problems.append("no GTS_PDFA1 output intent with an ICC profile")
        problems += [f"font {name} is not embedded" for name in _unembedded_fonts(doc)]
        problems += _attachment_problems(doc)
    return problems


def _unembedded_fonts(doc: pikepdf.Pdf) -> list[str]:
    missing: set[str] = set()
    seen: set[tuple[int, int]] = set()

    def visit(resources: object) -> None:
        if not isinstance(resources, pikepdf.Dictionary):
            return
        for font in resources.get("/Font", {}).values():
            if font.objgen in seen:
                continue
            seen.add(font.objgen)
            if font.get("/Subtype") == pikepdf.Name.Type3:
                visit(font.get("/Resources"))
                continue
            target = font.DescendantFonts[0] if "/DescendantFonts" in font else font
            descriptor = target.get("/FontDescriptor", {})
            if not any(k in descriptor for k in ("/FontFile", "/FontFile2", "/FontFile3")):
                missing.add(str(font.get("/BaseFont", "?")))
        for xobject in resources.get("/XObject", {}).values():
            if xobject.objgen not in seen and xobject.get("/Subtype") == pikepdf.Name.Form:
                seen.add(xobject.objgen)
                visit(xobject.get("/Resources"))

    for page in doc.pages:
        visit(page.obj.get("/Resources"))
    return sorted(missing)


def _attachment_problems(doc: pikepdf.Pdf) -> list[str]:
    problems = []
    associated = {spec.objgen for spec in doc.Root.get("/AF", [])}
    for name, attached in doc.attachments.items():
        spec = attached.obj
        if "/AFRelationship" not in spec:
            problems.append(f"attachment {name}: no /AFRelationship")
        if spec.objgen not in associated:
            problems.append(f"attachment {name}: not in the catalog's /AF")
        if "/F" not in spec or "/UF" not in spec:
            problems.append(f"attachment {name}: needs /F and /UF")
    return problems
