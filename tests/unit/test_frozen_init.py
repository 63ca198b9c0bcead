"""`fast_frozen_init` (server/compose/frozen_init.py) makes the instances the dataclass's own
`__init__` makes: for generated arguments (positional, keyword, defaults left out) the two
give equal values with the same fields, repr and hash, both still frozen; they refuse the
same calls with TypeError; the signature is the same; and a class it cannot be exact for is
refused when decorated."""

from __future__ import annotations

import dataclasses
import inspect
from dataclasses import FrozenInstanceError, InitVar, dataclass, field
from decimal import Decimal

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from server.compose import en16931, invoice, model
from server.compose.frozen_init import fast_frozen_init

# every class given the fast __init__ (it keeps the dataclass's own as __dataclass_init__)
CLASSES = tuple(cls for module in (en16931, invoice, model) for cls in vars(module).values()
                if isinstance(cls, type) and "__dataclass_init__" in vars(cls))
assert {"InvoiceLine", "LineInput", "Composition", "Invoice"} <= {c.__name__ for c in CLASSES}
_VALUES = st.one_of(st.none(), st.text(max_size=5), st.decimals(allow_nan=False, places=2),
                    st.tuples(st.integers()), st.just(()))


@st.composite
def calls(draw: st.DrawFn, cls: type) -> tuple[list, dict]:
    """Arguments for `cls`: the required ones, some defaults given, positionally or not."""
    fields = dataclasses.fields(cls)
    required = [f for f in fields if f.default is dataclasses.MISSING]
    given_ = required + [f for f in fields[len(required):] if draw(st.booleans())]
    values = {f.name: draw(_VALUES) for f in given_}
    positional = draw(st.integers(0, len(required)))
    names = [f.name for f in fields]
    args = [values[name] for name in names[:positional]]
    kwargs = {k: v for k, v in values.items() if k not in names[:positional]}
    return args, kwargs


def _original(cls: type, args: list, kwargs: dict):
    made = object.__new__(cls)
    cls.__dataclass_init__(made, *args, **kwargs)
    return made


@pytest.mark.parametrize("cls", CLASSES, ids=lambda c: c.__name__)
@settings(max_examples=300, deadline=None)
@given(data=st.data())
def test_the_same_instance_as_the_dataclass_init(cls, data) -> None:
    args, kwargs = data.draw(calls(cls))
    fast, slow = cls(*args, **kwargs), _original(cls, args, kwargs)
    assert fast == slow
    assert repr(fast) == repr(slow)
    for f in dataclasses.fields(cls):
        assert getattr(fast, f.name) is getattr(slow, f.name)
    if "__slots__" not in cls.__dict__:
        assert vars(fast) == vars(slow) and list(vars(fast)) == list(vars(slow))
    try:
        expected = hash(slow)
    except TypeError:
        with pytest.raises(TypeError):
            hash(fast)
    else:
        assert hash(fast) == expected
    first = dataclasses.fields(cls)[0].name
    with pytest.raises(FrozenInstanceError):
        setattr(fast, first, "x")
    assert dataclasses.replace(fast, **{first: "9"}) == dataclasses.replace(slow, **{first: "9"})


@pytest.mark.parametrize("cls", CLASSES, ids=lambda c: c.__name__)
def test_the_same_signature_and_refusals(cls) -> None:
    fast, slow = inspect.signature(cls.__init__), inspect.signature(cls.__dataclass_init__)
    assert [(p.name, p.kind, p.default) for p in fast.parameters.values()] == \
        [(p.name, p.kind, p.default) for p in slow.parameters.values()]
    assert cls.__init__.__annotations__ == cls.__dataclass_init__.__annotations__
    for args, kwargs in [((), {}), ((), {"no_such_field": 1}), (tuple(range(60)), {})]:
        with pytest.raises(TypeError):
            cls(*args, **kwargs)
        with pytest.raises(TypeError):
            _original(cls, list(args), kwargs)
    required = [f.name for f in dataclasses.fields(cls) if f.default is dataclasses.MISSING]
    with pytest.raises(TypeError):  # a value given twice
        cls(*range(len(required)), **{required[0]: 1})


def test_a_class_it_cannot_be_exact_for_is_refused() -> None:
    @dataclass
    class Mutable:
        a: int

    @dataclass(frozen=True)
    class Factory:
        a: list = field(default_factory=list)

    @dataclass(frozen=True)
    class Post:
        a: int

        def __post_init__(self) -> None:
            pass

    @dataclass(frozen=True)
    class WithInitVar:
        a: int
        b: InitVar[int] = 0

    @dataclass(frozen=True, kw_only=True)
    class KeywordOnly:
        a: int

    @dataclass(frozen=True)
    class NotInInit:
        a: int
        b: Decimal = field(default=Decimal(0), init=False)

    @dataclass(frozen=True, slots=True)
    class Base:
        a: int

    @dataclass(frozen=True, slots=True)
    class Inherits(Base):  # `a` is Base's slot, not its own
        b: int

    for cls in (Mutable, Factory, Post, WithInitVar, KeywordOnly, NotInInit, Inherits, int):
        with pytest.raises(TypeError):
            fast_frozen_init(cls)
