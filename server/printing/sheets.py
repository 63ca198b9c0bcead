"""Sheet planning: a mail piece's pages and its print options -> the sides of its sheets.

A print shop's line prints simplex (one side per sheet) or duplex (two). A document asks
for less or more than its line does, and the imposer (`server.printing.marks`), the queue
(`server.printing.queue`, envelope choice) and the batch (`server.printing.batches`:
sheet sequence numbers, postage weight, manifest, DPart tree) must all count the same
sheets, so they all ask this module.

What a document can ask for (`SheetRules`, from the layout's `[print]` section and the
data through the Composition's `PrintOptions`):

* ``duplex = false``: simplex sheets even on a duplex line: every page is a sheet front
  and its back stays blank (a letter whose back must not show through, a form to sign);
* ``front_pages``: pages that must start on a sheet front (a tear-off giro slip: tearing
  it off must cut nothing but the slip);
* ``blank_back_pages``: pages whose back must stay blank (the same slip: its back is torn
  off with it). Such a page is a front by definition.

Page numbers are 1-based; negative numbers count from the end (-1 = the last page), since
the page count is known only after rendering.

On a simplex line every page is a front of its own sheet whatever the rules say; on a
duplex line the pages fill the sides in order, and a blank side is inserted before a page
that must be a front but would land on a back, after a page whose back must stay blank,
and after the piece's last page when it ends on a front (a sheet never carries two
customers' pages). A blank is therefore always a back: every front carries a page, which
is where the inserter marks go.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from server.compose.model import PrintOptions

BLANK = None  # a side left blank in `SheetPlan.sides`


@dataclass(frozen=True, slots=True)
class SheetRules:
    """What one document asks of its sheets (see the module docstring).

    `duplex` True means "as the line prints" (both sides on a duplex line); False asks
    for simplex sheets. Pages are 1-based, negative from the end.
    """

    duplex: bool = True
    front_pages: tuple[int, ...] = ()
    blank_back_pages: tuple[int, ...] = ()

    def __post_init__(self) -> None:
        for name in ("front_pages", "blank_back_pages"):
            if any(not isinstance(p, int) or isinstance(p, bool) or p == 0
                   for p in getattr(self, name)):
                raise ValueError(f"{name}: page numbers are 1-based, or negative from the "
                                 f"end (-1 = last); 0 is neither")

    def to_text(self) -> str:
        """A compact form for the print queue's row: 'duplex;front=-1;blank_back=-1'."""
        parts = ["duplex" if self.duplex else "simplex"]
        if self.front_pages:
            parts.append("front=" + ",".join(map(str, self.front_pages)))
        if self.blank_back_pages:
            parts.append("blank_back=" + ",".join(map(str, self.blank_back_pages)))
        return ";".join(parts)

    @classmethod
    def from_text(cls, text: str) -> SheetRules:
        """The inverse of `to_text`; an empty text is the default (as the line prints)."""
        if not text:
            return cls()
        head, *rest = text.split(";")
        if head not in ("duplex", "simplex"):
            raise ValueError(f"sheet rules {text!r}: must start with duplex or simplex")
        pages: dict[str, tuple[int, ...]] = {"front": (), "blank_back": ()}
        for part in rest:
            key, _, values = part.partition("=")
            if key not in pages:
                raise ValueError(f"sheet rules {text!r}: unknown {key!r}")
            pages[key] = tuple(int(v) for v in values.split(",") if v)
        return cls(head == "duplex", pages["front"], pages["blank_back"])


def sheet_rules(options: PrintOptions) -> SheetRules:
    """A Composition's print options, as the sheet rules the print queue carries."""
    return SheetRules(duplex=options.duplex, front_pages=tuple(options.front_pages),
                      blank_back_pages=tuple(options.blank_back_pages))


@dataclass(frozen=True, slots=True)
class SheetPlan:
    """The sides of one piece's sheets, in print order: a 1-based page number of the piece's
    own PDF, or `BLANK` for an inserted blank side. Duplex: sides 0, 2, 4... are fronts."""

    sides: tuple[int | None, ...]
    duplex: bool  # two sides per sheet (the line is duplex), whatever the document asked

    @property
    def sheets(self) -> int:
        return len(self.sides) // 2 if self.duplex else len(self.sides)

    @property
    def front_sides(self) -> tuple[int, ...]:
        """0-based indices into `sides` of every sheet's front (where the marks go)."""
        return tuple(range(0, len(self.sides), 2 if self.duplex else 1))

    @property
    def blank_sides(self) -> tuple[int, ...]:
        """0-based indices into `sides` of the inserted blank sides."""
        return tuple(i for i, side in enumerate(self.sides) if side is BLANK)

    def side_of(self, page: int) -> int:
        """The 0-based side a page of the piece lands on."""
        return self.sides.index(page)


def _resolve(pages: Iterable[int], count: int) -> set[int]:
    """1-based and from-the-end page numbers -> 1-based ones; pages past the end are
    ignored (a rule for a page a short document does not have)."""
    out = set()
    for page in pages:
        number = page if page > 0 else count + 1 + page
        if 1 <= number <= count:
            out.add(number)
    return out


def plan_sheets(pages: int, line_duplex: bool, rules: SheetRules = SheetRules()) -> SheetPlan:
    """The sides of a piece of `pages` pages on a simplex (`line_duplex` False) or duplex
    line. Raises ValueError for a piece without pages."""
    if pages < 1:
        raise ValueError(f"pages: a mail piece has at least one page, not {pages}")
    if not line_duplex:
        return SheetPlan(tuple(range(1, pages + 1)), duplex=False)
    blank_backs = _resolve(rules.blank_back_pages, pages)
    fronts = _resolve(rules.front_pages, pages) | blank_backs
    sides: list[int | None] = []
    for page in range(1, pages + 1):
        on_back = len(sides) % 2 == 1
        if on_back and (not rules.duplex or page in fronts):
            sides.append(BLANK)
        sides.append(page)
        if not rules.duplex or page in blank_backs:
            sides.append(BLANK)
    if len(sides) % 2:
        sides.append(BLANK)  # the next piece starts on a new sheet
    return SheetPlan(tuple(sides), duplex=True)
