"""WeasyPrint's table tags -> the table structure the HTML means (PDF/UA-1 §7.5).

WeasyPrint 70 tags every HTML `<table>` as a data `/Table` and gives its `/TH` cells no
`/Scope`, so a PDF/UA checker cannot tell what a header cell heads (pdfua UA-15-003,
Matterhorn 15-003), and tables used only to place things side by side (the Fjordbank
masthead, the signatures, the campaign area, the giro slip's parties) read as data tables
without headers. This step, run on the tagged PDF before it is identified as PDF/UA-1
(server/channels/pdf_ua.py), gives the structure tree what the HTML table model says:

* a table without any header cell is a layout table: the Matterhorn protocol's remedy is
  to tag it as something other than a table, so the table, its row groups, rows and cells
  become `/Div`s in the same order (their content, and so the reading order, unchanged);
* a header cell gets the scope HTML gives an `auto`-scoped `<th>` (HTML §4.9.12): in a row
  without data cells it heads its column (`/Scope /Column`), else its row (`/Scope /Row`).

Only the structure tree changes: no page content, no marked-content id, no other tag.
Typst needs none of this (`grid` for layout, `table.header` for headers).
"""

from __future__ import annotations

from collections.abc import Iterator

import pikepdf

TABLE, ROW, HEADER, DATA, DIV = (pikepdf.Name(n) for n in ("/Table", "/TR", "/TH", "/TD", "/Div"))
ROW_GROUPS = {pikepdf.Name(n) for n in ("/THead", "/TBody", "/TFoot")}
TABLE_OWNER = pikepdf.Name("/Table")  # attribute owner /O of the table attributes


def settle_table_tags(pdf: pikepdf.Pdf) -> int:
    """Scope every `/TH` and retag every table without one as `/Div`s, in place.
    -> how many tables were retagged as layout. A PDF without a structure tree is left as
    it is."""
    root = pdf.Root.get("/StructTreeRoot")
    if root is None:
        return 0
    layout = 0
    for table in list(_elements(root, TABLE)):
        rows = list(_rows(table))
        cells = [[cell for cell in _kids(row) if cell.get("/S") in (HEADER, DATA)]
                 for row in rows]
        if not any(cell.get("/S") == HEADER for row in cells for cell in row):
            _retag_as_div(table, rows, cells)
            layout += 1
            continue
        for row in cells:
            scope = "/Row" if any(cell.get("/S") == DATA for cell in row) else "/Column"
            for cell in row:
                if cell.get("/S") == HEADER:
                    _table_attributes(cell)[pikepdf.Name("/Scope")] = pikepdf.Name(scope)
    return layout


def _kids(element: pikepdf.Dictionary) -> Iterator[pikepdf.Dictionary]:
    """The structure elements directly under `element` (not its marked-content ids nor its
    marked-content and object references)."""
    kids = element.get("/K")
    if kids is None:
        return
    for kid in kids if isinstance(kids, pikepdf.Array) else [kids]:
        if isinstance(kid, pikepdf.Dictionary) and "/S" in kid:
            yield kid


def _elements(node: pikepdf.Dictionary, role: pikepdf.Name) -> Iterator[pikepdf.Dictionary]:
    """Every element of `role` under `node`, depth first (a table inside a table too)."""
    for kid in _kids(node):
        if kid.get("/S") == role:
            yield kid
        yield from _elements(kid, role)


def _rows(table: pikepdf.Dictionary) -> Iterator[pikepdf.Dictionary]:
    for kid in _kids(table):
        if kid.get("/S") == ROW:
            yield kid
        elif kid.get("/S") in ROW_GROUPS:
            yield from (row for row in _kids(kid) if row.get("/S") == ROW)


def _table_attributes(cell: pikepdf.Dictionary) -> pikepdf.Dictionary:
    """The cell's attribute dictionary owned by `/Table` (made when it has none)."""
    attributes = cell.get("/A")
    for candidate in (attributes if isinstance(attributes, pikepdf.Array) else [attributes]):
        if isinstance(candidate, pikepdf.Dictionary) and candidate.get("/O") == TABLE_OWNER:
            return candidate
    owned = pikepdf.Dictionary(O=TABLE_OWNER)
    if attributes is None:
        cell.A = owned
    elif isinstance(attributes, pikepdf.Array):
        attributes.append(owned)
    else:
        cell.A = pikepdf.Array([attributes, owned])
    return owned


def _retag_as_div(table: pikepdf.Dictionary, rows: list[pikepdf.Dictionary],
                  cells: list[list[pikepdf.Dictionary]]) -> None:
    groups = [kid for kid in _kids(table) if kid.get("/S") in ROW_GROUPS]
    for element in [table, *groups, *rows, *(cell for row in cells for cell in row)]:
        element.S = DIV
        _drop_table_attributes(element)


def _drop_table_attributes(element: pikepdf.Dictionary) -> None:
    """A `/Div` has no table attributes (`/ColSpan`, `/Headers`: ISO 32000-1 §14.8.5.7)."""
    attributes = element.get("/A")
    if attributes is None:
        return
    kept = [a for a in (attributes if isinstance(attributes, pikepdf.Array) else [attributes])
            if not (isinstance(a, pikepdf.Dictionary) and a.get("/O") == TABLE_OWNER)]
    if not kept:
        del element.A
    else:
        element.A = kept[0] if len(kept) == 1 else pikepdf.Array(kept)
