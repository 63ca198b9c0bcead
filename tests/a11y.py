"""Basic machine checks of an HTML page's accessibility (WCAG 2.1: 3.1.1 language of page,
1.3.1 info and relationships, 3.3.2 labels or instructions, 2.4.2 page titled), for the
survey response page and e-mails. Not a full audit: what a parser can prove."""

from __future__ import annotations

from dataclasses import dataclass, field
from html.parser import HTMLParser


@dataclass
class _Element:
    tag: str
    attrs: dict[str, str]
    text: str = ""
    children: list[_Element] = field(default_factory=list)
    parent: _Element | None = None


class _Tree(HTMLParser):
    VOID = {"meta", "input", "br", "img", "link", "hr"}

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.root = _Element("#root", {})
        self.current = self.root
        self.all: list[_Element] = []

    def handle_starttag(self, tag, attrs):
        element = _Element(tag, {k: v or "" for k, v in attrs}, parent=self.current)
        self.current.children.append(element)
        self.all.append(element)
        if tag not in self.VOID:
            self.current = element

    def handle_endtag(self, tag):
        node = self.current
        while node is not None and node.tag != tag:
            node = node.parent
        if node is not None and node.parent is not None:
            self.current = node.parent

    def handle_data(self, data):
        node = self.current
        while node is not None:
            node.text += data
            node = node.parent


def parse(html: str) -> _Tree:
    tree = _Tree()
    tree.feed(html)
    return tree


def problems(html: str, *, lang: str | None = None) -> list[str]:
    """What fails the checks (empty: passes)."""
    tree = parse(html)
    found: list[str] = []
    htmls = [e for e in tree.all if e.tag == "html"]
    if not htmls or not htmls[0].attrs.get("lang"):
        found.append("<html> has no lang")
    elif lang and htmls[0].attrs["lang"] != lang:
        found.append(f"<html lang={htmls[0].attrs['lang']!r}>, expected {lang!r}")
    titles = [e for e in tree.all if e.tag == "title"]
    if not titles or not titles[0].text.strip():
        found.append("no <title>")
    if any(e.tag == "script" for e in tree.all):
        found.append("a <script>")
    labels = {e.attrs.get("for"): e.text.strip() for e in tree.all if e.tag == "label"}
    fields = [e for e in tree.all if e.tag in ("input", "textarea", "select")
              and e.attrs.get("type") not in ("hidden", "submit")]
    for e in fields:
        if not e.attrs.get("id") or not labels.get(e.attrs["id"]):
            found.append(f"<{e.tag} name={e.attrs.get('name')!r}> has no label")
    for e in tree.all:
        if e.tag == "input" and e.attrs.get("type") == "radio":
            node = e.parent
            while node is not None and node.tag != "fieldset":
                node = node.parent
            legend = next((c for c in node.children if c.tag == "legend"), None) if node else None
            if legend is None or not legend.text.strip():
                found.append(f"radio {e.attrs.get('id')!r} is not in a fieldset with a legend")
    for e in tree.all:
        if e.tag == "img" and "alt" not in e.attrs:
            found.append("<img> without alt")
        if e.tag == "table" and e.attrs.get("role") != "presentation" and not any(
                c.tag in ("th", "thead") for c in _walk(e)):
            found.append("a layout <table> without role=presentation")
    return found


def _walk(element: _Element):
    for child in element.children:
        yield child
        yield from _walk(child)
