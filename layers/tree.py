"""Walking records: a model is a tree whose leaves are the parameter fields.

A field is walked when it is a parameter (declared with ``param()``), a record (an attrs
instance), or a non-empty tuple of records (that is how a ``Sequence`` is walked). Paths name
places the way Python would reach them: ``layers[2].weight``.
"""

from __future__ import annotations

from typing import Callable, Iterator

import attrs
import numpy as np

from lamina.layers.errors import StructureError
from lamina.layers.param import is_param


def is_record(value) -> bool:
    return attrs.has(type(value))


def _join(path: str, name: str) -> str:
    return f"{path}.{name}" if path else name


def _walked_fields(record):
    """(field, kind) for each walked field of a record: kind is 'param', 'record' or 'records'."""
    for field in attrs.fields(type(record)):
        if not field.init:  # derived by the constructor, never walked
            continue
        value = getattr(record, field.name)
        if is_param(field):
            yield field, "param"
        elif is_record(value):
            yield field, "record"
        elif isinstance(value, tuple) and value and all(is_record(v) for v in value):
            yield field, "records"


def named_parameters(record, path: str = "") -> Iterator[tuple[str, np.ndarray]]:
    """(path, array) for every parameter, in field order (forward order for a Sequence)."""
    for field, kind in _walked_fields(record):
        value = getattr(record, field.name)
        name = _join(path, field.name)
        if kind == "param":
            yield name, value
        elif kind == "record":
            yield from named_parameters(value, name)
        else:
            for i, child in enumerate(value):
                yield from named_parameters(child, f"{name}[{i}]")


def parameters(record) -> list[np.ndarray]:
    """Every parameter array of a record, in forward order."""
    return [array for _, array in named_parameters(record)]


def count_parameters(record) -> int:
    return sum(array.size for array in parameters(record))


def check_same_structure(a, b, path: str = "", names: tuple[str, str] = ("model", "gradients")) -> None:
    """Raise ``StructureError`` naming the first place where record trees ``a`` and ``b`` differ."""
    where = path or "the top"
    if type(a) is not type(b):
        raise StructureError(f"at {where}: the {names[0]} has {type(a).__name__}, "
                             f"the {names[1]} has {type(b).__name__}")
    for field, kind in _walked_fields(a):
        x, y = getattr(a, field.name), getattr(b, field.name)
        name = _join(path, field.name)
        if kind == "param":
            if not isinstance(y, np.ndarray) or x.shape != y.shape or x.dtype != y.dtype:
                got = f"{y.dtype}{y.shape}" if isinstance(y, np.ndarray) else type(y).__name__
                raise StructureError(f"at {name}: the {names[0]} has {x.dtype}{x.shape}, the {names[1]} has {got}")
        elif kind == "record":
            check_same_structure(x, y, name, names)
        else:
            if not isinstance(y, tuple) or len(x) != len(y):
                got = f"{len(y)} layers" if isinstance(y, tuple) else type(y).__name__
                raise StructureError(f"at {name}: the {names[0]} has {len(x)} layers, the {names[1]} has {got}")
            for i, (u, v) in enumerate(zip(x, y)):
                check_same_structure(u, v, f"{name}[{i}]", names)


def replace_parameters(record, arrays: Iterator[np.ndarray]):
    """The record rebuilt through its constructors with the parameters taken in order from ``arrays``."""
    changes = {}
    for field, kind in _walked_fields(record):
        value = getattr(record, field.name)
        if kind == "param":
            new = next(arrays)
        elif kind == "record":
            new = replace_parameters(value, arrays)
        else:
            new = tuple(replace_parameters(child, arrays) for child in value)
        changes[field.alias] = new
    return attrs.evolve(record, **changes) if changes else record


def map_parameters(fn: Callable[..., np.ndarray], record, *others):
    """A new record with ``fn(p, *q)`` in place of each parameter ``p`` (``q`` from ``others`` at the same path)."""
    for other in others:
        check_same_structure(record, other)
    columns = [parameters(record), *(parameters(o) for o in others)]
    return replace_parameters(record, iter([fn(*row) for row in zip(*columns)]))
