"""A new element of an e-invoice's XML (CII, UBL) as a copy of an element lxml made once.

`etree.SubElement(parent, "{namespace}tag")` checks the tag's name and parses the
namespace's URI for every element it makes: a third of its instructions (callgrind: 11.6 K
per element made by SubElement, 7.6 K per copy appended; a card invoice's CII has some 670
elements, issue 14). `child` makes each (namespace, tag, attributes) once per thread with
SubElement, under a root of its own namespace, and every element after that as a copy of
it, appended to `parent`. lxml still makes, names, escapes and writes everything: on
append it binds the copy to the declaration of the same namespace URI that the document
it joins already has (the e-invoice's root declares every namespace it uses), so the
element is written with the document's own prefix, the bytes SubElement gave
(tests/unit/test_einvoice_prototypes.py).

Per thread (`threading.local`): lxml documents are not shared between threads here.
"""

from __future__ import annotations

import threading
from collections.abc import Callable

from lxml import etree

__all__ = ["child"]

_Key = tuple[str, str, tuple[tuple[str, str], ...]]


class _Prototypes(threading.local):
    """This thread's prototypes: per namespace a root holding them, and per (namespace,
    tag, attributes) the bound `__copy__` of its prototype."""

    def __init__(self) -> None:
        self.roots: dict[str, etree._Element] = {}
        self.copies: dict[_Key, Callable[[], etree._Element]] = {}

    def copy_of(self, key: _Key) -> Callable[[], etree._Element]:
        namespace, tag, attributes = key
        root = self.roots.get(namespace)
        if root is None:
            root = self.roots[namespace] = etree.Element(f"{{{namespace}}}prototypes")
        prototype = etree.SubElement(root, f"{{{namespace}}}{tag}", dict(attributes))
        copy = self.copies[key] = prototype.__copy__
        return copy


_PROTOTYPES = _Prototypes()


def child(parent: etree._Element, namespace: str, tag: str,
          *attributes: tuple[str, str]) -> etree._Element:
    """A new element `{namespace}tag` with `attributes` (name, value), appended to
    `parent`: what `etree.SubElement(parent, "{namespace}tag", dict(attributes))` makes."""
    key = (namespace, tag, attributes)
    copy = _PROTOTYPES.copies.get(key) or _PROTOTYPES.copy_of(key)
    element = copy()
    parent.append(element)
    return element
