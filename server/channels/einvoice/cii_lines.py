"""An invoice's header and lines (BG-25) -> the start of its CII document (root, context,
`ExchangedDocument`, the transaction with its `IncludedSupplyChainTradeLineItem`s), made by
one parse of their XML text instead of one lxml call per element.

`cii.cii_tree` built the document element by element; a card invoice's 5-60 lines are some
twenty elements each, and every `etree.SubElement` is a Python call that parses the tag's
namespace, looks the namespace up through the element's ancestors and makes a Python proxy:
the lines were two thirds of the CII's cost (issue 14). `document_start` writes the same
elements as XML text, the values escaped, and has libxml2 parse it in one call; `cii_tree`
adds the agreement, delivery and settlement to the parsed transaction as before. The tree
is then the one `cii._document_start` and `cii._line` build element by element: the same
elements in the same order, empty containers kept (`<ram:X/>` as `cii._line`'s
`el` leaves them), absent or blank values left out by the same test (`text.strip()`), the
attributes in the same order, only the truthy ones.

A text the parser refuses (a character XML cannot hold, which lxml refuses as a value too)
makes `document_start` return None: `cii_tree` then builds the document element by element,
as before, so such data fails exactly as it did. tests/unit/test_cii_lines.py holds the two
builds' bytes equal for generated headers and lines of every optional part. (A CII whose
text already has been written is still never parsed back: `facturx.embed_facturx(...,
parsed=tree)`.)
"""

from __future__ import annotations

from datetime import date

from lxml import etree

from server.channels.einvoice.ubl import money_text, plain_number
from server.compose.en16931 import AllowanceCharge, Invoice, InvoiceLine, LineAllowanceCharge

_NAMESPACES = (
    'xmlns:rsm="urn:un:unece:uncefact:data:standard:CrossIndustryInvoice:100" '
    'xmlns:ram="urn:un:unece:uncefact:data:standard:'
    'ReusableAggregateBusinessInformationEntity:100" '
    'xmlns:udt="urn:un:unece:uncefact:data:standard:UnqualifiedDataType:100" '
    'xmlns:qdt="urn:un:unece:uncefact:data:standard:QualifiedDataType:100"')


def document_start(invoice: Invoice, guideline: str) -> etree._Element | None:
    """The CII document's root with its context, its header (`rsm:ExchangedDocument`) and
    its transaction holding the lines, as `cii.cii_tree` builds them before the agreement,
    parsed from their text in one call (nothing moved between documents afterwards); the
    transaction is its last child. None when the parser refuses the text."""
    note = ""
    if invoice.note:
        note = (f"<ram:IncludedNote>{_ram('Content', invoice.note)}"
                f"{_ram('SubjectCode', invoice.note_subject)}</ram:IncludedNote>")
    try:
        text = "".join([
            f"<rsm:CrossIndustryInvoice {_NAMESPACES}><rsm:ExchangedDocumentContext>"
            "<ram:GuidelineSpecifiedDocumentContextParameter>", _ram("ID", guideline),
            "</ram:GuidelineSpecifiedDocumentContextParameter></rsm:ExchangedDocumentContext>"
            "<rsm:ExchangedDocument>", _ram("ID", invoice.number),
            _ram("TypeCode", invoice.type_code), _date("IssueDateTime", invoice.issue_date),
            note, "</rsm:ExchangedDocument><rsm:SupplyChainTradeTransaction>",
            *[_line(line, invoice.currency) for line in invoice.lines],
            "</rsm:SupplyChainTradeTransaction></rsm:CrossIndustryInvoice>"])
        return etree.fromstring(text.encode("utf-8"))  # UTF-8: libxml2's own
    except (etree.XMLSyntaxError, ValueError):  # ValueError: UnicodeEncodeError (a surrogate)
        return None


def _text(value: str) -> str:
    """Element text as the parser reads back `value` (a CR escaped, or it reads as LF)."""
    return (value.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
            .replace("\r", "&#13;"))


def _attribute(value: str) -> str:
    """A double-quoted attribute value the parser reads back as `value` (no whitespace
    normalised away)."""
    return (_text(value).replace('"', "&quot;").replace("\t", "&#9;")
            .replace("\n", "&#10;"))


def _ram(tag: str, text: str | None, *attrs: tuple[str, str | None]) -> str:
    """`cii._Writer.ram`: nothing for an absent or blank value; the truthy attributes."""
    if text is None or not text.strip():
        return ""
    if not attrs:
        return f"<ram:{tag}>{_text(text)}</ram:{tag}>"
    shown = "".join([f' {key}="{_attribute(value)}"' for key, value in attrs if value])
    return f"<ram:{tag}{shown}>{_text(text)}</ram:{tag}>"


_VAT = "<ram:TypeCode>VAT</ram:TypeCode>"  # _ram("TypeCode", "VAT")
_OBJECT = "<ram:TypeCode>130</ram:TypeCode>"  # _ram("TypeCode", "130")


def _date(tag: str, value: date) -> str:
    """`ram:<tag>` holding `cii._Writer.date`'s udt:DateTimeString (format 102)."""
    return (f'<ram:{tag}><udt:DateTimeString format="102">{value.strftime("%Y%m%d")}'
            f"</udt:DateTimeString></ram:{tag}>")


def _line(line: InvoiceLine, currency: str) -> str:
    """`cii._line` as text."""
    out = ["<ram:IncludedSupplyChainTradeLineItem><ram:AssociatedDocumentLineDocument>",
           _ram("LineID", line.id)]
    if line.note:
        out.append(f"<ram:IncludedNote>{_ram('Content', line.note)}</ram:IncludedNote>")
    out.append("</ram:AssociatedDocumentLineDocument><ram:SpecifiedTradeProduct>")
    if line.standard_item_id:
        out.append(_ram("GlobalID", line.standard_item_id.value,
                        ("schemeID", line.standard_item_id.scheme)))
    out += (_ram("SellerAssignedID", line.seller_item_id),
            _ram("BuyerAssignedID", line.buyer_item_id), _ram("Name", line.name),
            _ram("Description", line.description))
    for attr in line.attributes:
        out.append(f"<ram:ApplicableProductCharacteristic>{_ram('Description', attr.name)}"
                   f"{_ram('Value', attr.value)}</ram:ApplicableProductCharacteristic>")
    for cls in line.classifications:
        code = _ram("ClassCode", cls.value, ("listID", cls.scheme),
                    ("listVersionID", cls.version))
        out.append(f"<ram:DesignatedProductClassification>{code}"
                   "</ram:DesignatedProductClassification>")
    if line.origin_country:
        out.append(f"<ram:OriginTradeCountry>{_ram('ID', line.origin_country)}"
                   "</ram:OriginTradeCountry>")
    out.append("</ram:SpecifiedTradeProduct><ram:SpecifiedLineTradeAgreement>")
    if line.order_line_reference:
        out.append(f"<ram:BuyerOrderReferencedDocument>"
                   f"{_ram('LineID', line.order_line_reference)}"
                   "</ram:BuyerOrderReferencedDocument>")
    basis = (_ram("BasisQuantity", plain_number(line.base_quantity), ("unitCode", line.unit_code))
             if line.base_quantity is not None else "")
    if line.gross_price is not None:
        out += ("<ram:GrossPriceProductTradePrice>",
                _ram("ChargeAmount", plain_number(line.gross_price)), basis)
        if line.price_discount:
            out += ("<ram:AppliedTradeAllowanceCharge>", _indicator(False),
                    _ram("ActualAmount", plain_number(line.price_discount)),
                    "</ram:AppliedTradeAllowanceCharge>")
        out.append("</ram:GrossPriceProductTradePrice>")
    out += ("<ram:NetPriceProductTradePrice>", _ram("ChargeAmount", plain_number(line.unit_price)),
            basis, "</ram:NetPriceProductTradePrice></ram:SpecifiedLineTradeAgreement>"
            "<ram:SpecifiedLineTradeDelivery>",
            _ram("BilledQuantity", plain_number(line.quantity), ("unitCode", line.unit_code)),
            "</ram:SpecifiedLineTradeDelivery><ram:SpecifiedLineTradeSettlement>"
            "<ram:ApplicableTradeTax>", _VAT,
            _ram("CategoryCode", line.vat_category))
    if line.vat_category != "O" and line.vat_rate is not None:
        out.append(_ram("RateApplicablePercent", plain_number(line.vat_rate)))
    out.append("</ram:ApplicableTradeTax>")
    if line.period_start or line.period_end:
        out.append("<ram:BillingSpecifiedPeriod>")
        if line.period_start:
            out.append(_date("StartDateTime", line.period_start))
        if line.period_end:
            out.append(_date("EndDateTime", line.period_end))
        out.append("</ram:BillingSpecifiedPeriod>")
    for ac in line.allowances_charges:
        out.append(_allowance_charge(ac, currency))
    out += ("<ram:SpecifiedTradeSettlementLineMonetarySummation>",
            _ram("LineTotalAmount", money_text(line.net_amount, currency)),
            "</ram:SpecifiedTradeSettlementLineMonetarySummation>")
    if line.object_id:
        out += ("<ram:AdditionalReferencedDocument>",
                _ram("IssuerAssignedID", line.object_id.value), _OBJECT,
                _ram("ReferenceTypeCode", line.object_id.scheme),
                "</ram:AdditionalReferencedDocument>")
    if line.accounting_reference:
        out.append(f"<ram:ReceivableSpecifiedTradeAccountingAccount>"
                   f"{_ram('ID', line.accounting_reference)}"
                   "</ram:ReceivableSpecifiedTradeAccountingAccount>")
    out.append("</ram:SpecifiedLineTradeSettlement></ram:IncludedSupplyChainTradeLineItem>")
    return "".join(out)


def _indicator(value: bool) -> str:
    """`cii._indicator`."""
    return (f"<ram:ChargeIndicator><udt:Indicator>{'true' if value else 'false'}"
            "</udt:Indicator></ram:ChargeIndicator>")


def _allowance_charge(ac: AllowanceCharge | LineAllowanceCharge, currency: str) -> str:
    """`cii._allowance_charge` (a line's: BG-27/28)."""
    out = ["<ram:SpecifiedTradeAllowanceCharge>", _indicator(ac.is_charge)]
    if ac.percent is not None:
        out.append(_ram("CalculationPercent", plain_number(ac.percent)))
    if ac.base_amount is not None:
        out.append(_ram("BasisAmount", money_text(ac.base_amount, currency)))
    out += (_ram("ActualAmount", money_text(ac.amount, currency)),
            _ram("ReasonCode", ac.reason_code), _ram("Reason", ac.reason))
    if isinstance(ac, AllowanceCharge):
        out += ("<ram:CategoryTradeTax>", _VAT,
                _ram("CategoryCode", ac.vat_category))
        if ac.vat_category != "O" and ac.vat_rate is not None:
            out.append(_ram("RateApplicablePercent", plain_number(ac.vat_rate)))
        out.append("</ram:CategoryTradeTax>")
    out.append("</ram:SpecifiedTradeAllowanceCharge>")
    return "".join(out)
