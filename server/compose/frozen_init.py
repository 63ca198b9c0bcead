"""A frozen dataclass's `__init__`, made to set its fields directly: for the values built many
times per document (an invoice's lines: `invoice.LineInput`, `en16931.InvoiceLine`).

A frozen dataclass cannot assign `self.x = x` (its `__setattr__` raises), so the `__init__`
that `dataclasses` writes sets every field through `object.__setattr__(self, "x", x)`: an
attribute lookup on `object`, a wrapper call and an argument tuple per field. A card
invoice composes some 70 lines of 23-25 fields, and those calls were 1.2M of its 16M
instructions (callgrind, load_tests/count_compose.py). `fast_frozen_init` replaces the
`__init__` with one of the same signature (the same parameters in the same order, the same
defaults, each default the very object `dataclasses` keeps) that stores the fields as
`object.__setattr__` would: into the instance's `__dict__` (one `dict.update`) for a
class with a dict, through each field's slot descriptor (`__set__`, what
`object.__setattr__` calls for a slot) for a class with `__slots__`.

Only a class this is exact for is accepted, `TypeError` otherwise (at import, never at a
call): a frozen dataclass without `__post_init__`, `InitVar`s, `default_factory`,
`init=False` or keyword-only fields. The original `__init__` stays as
`__dataclass_init__` for the tests (tests/unit/test_frozen_init.py: the same instances,
equal, hashed, printed and refused alike, for generated values).
"""

from __future__ import annotations

import dataclasses
from typing import Any, TypeVar

T = TypeVar("T", bound=type)


def fast_frozen_init(cls: T) -> T:
    """`cls` with an `__init__` that sets its fields directly (see the module docstring)."""
    params = getattr(cls, dataclasses._PARAMS, None)  # type: ignore[attr-defined]
    if params is None or not params.frozen:
        raise TypeError(f"{cls.__name__}: not a frozen dataclass")
    if hasattr(cls, "__post_init__"):
        raise TypeError(f"{cls.__name__}: has __post_init__")
    fields = list(getattr(cls, dataclasses._FIELDS).values())  # type: ignore[attr-defined]
    names: list[str] = []
    namespace: dict[str, Any] = {}
    signature: list[str] = []
    for f in fields:
        if f._field_type is not dataclasses._FIELD:  # type: ignore[attr-defined]
            raise TypeError(f"{cls.__name__}.{f.name}: an InitVar or ClassVar")
        if not f.init or f.kw_only or f.default_factory is not dataclasses.MISSING:
            raise TypeError(f"{cls.__name__}.{f.name}: init=False, kw_only or a factory")
        names.append(f.name)
        if f.default is dataclasses.MISSING:
            signature.append(f.name)
        else:
            namespace[f"_default_{f.name}"] = f.default
            signature.append(f"{f.name}=_default_{f.name}")
    slotted = "__slots__" in cls.__dict__
    if slotted:
        body = []
        for name in names:
            if name not in cls.__dict__:  # a slot of a base class
                raise TypeError(f"{cls.__name__}.{name}: inherited")
            namespace[f"_set_{name}"] = cls.__dict__[name].__set__  # the slot's descriptor
            body.append(f"    _set_{name}(self, {name})")
    else:
        body = ["    self.__dict__.update({"
                + ", ".join(f"{name!r}: {name}" for name in names) + "})"]
    source = f"def __init__(self, {', '.join(signature)}):\n" + ("\n".join(body) or "    pass")
    exec(source, namespace)  # noqa: S102 - our own text, from the class's field names
    init = namespace["__init__"]
    init.__qualname__ = f"{cls.__qualname__}.__init__"
    init.__module__ = cls.__module__
    init.__annotations__ = dict(cls.__init__.__annotations__)  # the same signature, typed
    cls.__dataclass_init__ = cls.__init__  # type: ignore[attr-defined]
    cls.__init__ = init  # type: ignore[misc]
    return cls
