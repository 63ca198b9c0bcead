"""WeasyPrint's empty structure elements -> none (PDF/UA-1, ISO 14289-1 §7.1).

WeasyPrint 70 makes a structure element for every box it tags, whether or not the box draws
any tagged content. A box that draws nothing but a CSS background, which WeasyPrint paints
as an artifact, so becomes an element with no kids: the Fjordbank logo beside the wordmark,
decoration in the newest layouts (e.g. b2b-invoice 2.5.0 on, welcome-letter 2.3.0: a box
painted with the logo, since an `<img>` is always a `/Figure`), is an empty `/Span` in the
masthead, and so is welcome-letter 2.3.0's campaign icon; an empty `<div>` is an empty
`/Div`. An element that marks no content gives assistive technology
nothing to read, only a group to step into: the structure tree should hold the document's
content and nothing else. This step, run on the tagged PDF before it is identified as
PDF/UA-1 (server/channels/pdf_ua.py), after the table tags are settled
(server/channels/table_tags.py), removes every element without kids, and every element
left without kids by that, from the structure tree. It keeps:

* table cells (`/TD`, `/TH`): an empty cell holds its place in its row, so the cells after
  it stay under their column's header (a layout table's cells are `/Div`s by now and go);
* an element with an `/ID`, which an `/IDTree` or a cell's `/Headers` may name.

Only the structure tree changes: no page content, no marked-content id (an element without
kids has none, so the `/ParentTree` never names one). Typst writes no empty elements.
"""

from __future__ import annotations

import pikepdf

CELLS = {pikepdf.Name("/TD"), pikepdf.Name("/TH")}


def drop_empty_elements(pdf: pikepdf.Pdf) -> int:
    """Remove the structure elements that mark nothing (see the module), in place.
    -> how many were removed. A PDF without a structure tree is left as it is."""
    root = pdf.Root.get("/StructTreeRoot")
    if root is None:
        return 0
    return _prune(root)


def _is_element(kid: object) -> bool:
    # a structure element, not a marked-content id (an integer) nor a marked-content or
    # object reference (/MCR, /OBJR: no /S)
    return isinstance(kid, pikepdf.Dictionary) and "/S" in kid


def _is_empty(element: pikepdf.Dictionary) -> bool:
    kids = element.get("/K")
    return kids is None or (isinstance(kids, pikepdf.Array) and len(kids) == 0)


def _prune(parent: pikepdf.Dictionary) -> int:
    """Remove `parent`'s empty element kids, depth first -> how many elements went."""
    kids = parent.get("/K")
    if kids is None:
        return 0
    listed = isinstance(kids, pikepdf.Array)
    removed, kept = 0, []
    for kid in kids if listed else [kids]:
        if _is_element(kid):
            removed += _prune(kid)
            if _is_empty(kid) and kid.get("/S") not in CELLS and "/ID" not in kid:
                removed += 1
                continue
        kept.append(kid)
    if len(kept) < (len(kids) if listed else 1):
        if not kept:
            del parent["/K"]
        elif listed:
            parent.K = pikepdf.Array(kept)
        else:
            parent.K = kept[0]
    return removed
