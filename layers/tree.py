"""Walking records: a model is a tree whose leaves are the parameter fields.

A field is walked when it is a parameter (declared with ``param()``), a record (an attrs
instance), or a non-empty tuple of records (that is how a ``Sequence`` is walked). Fields with
``init=False`` are derived by the constructor and never walked. Paths name places the way
Python would reach them: ``layers[2].weight``.
"""

from __future__ import annotations

import functools
from typing import Callable, Iterator

import attrs
import numpy as np

from lamina.layers.errors import StructureError
from lamina.layers.parameter import is_param


@functools.lru_cache(maxsize=None)
def _plan(cls: type) -> tuple[tuple[str, str, bool], ...]:
    """(name, init alias, is parameter) of each init field of a record class, looked up once per class."""
    return tuple((f.name, f.alias, is_param(f)) for f in attrs.fields(cls) if f.init)


def _kind(value, param: bool) -> str | None:
    if param:
        return "param"
    cls = type(value)
    if cls is tuple:
        if value and all(hasattr(type(v), "__attrs_attrs__") for v in value):
            return "records"
        return None
    if hasattr(cls, "__attrs_attrs__"):
        return "record"
    return None


def _join(path: str, name: str) -> str:
    return f"{path}.{name}" if path else name


def _walked(record):
    """(name, alias, kind, value) for each walked field: kind is 'param', 'record' or 'records'."""
    for name, alias, param in _plan(type(record)):
        value = getattr(record, name)
        kind = _kind(value, param)
        if kind is not None:
            yield name, alias, kind, value


def named_parameters(record, path: str = "") -> Iterator[tuple[str, np.ndarray]]:
    """(path, array) for every parameter, in field order (forward order for a Sequence)."""
    for name, _, kind, value in _walked(record):
        name = _join(path, name)
        if kind == "param":
            yield name, value
        elif kind == "record":
            yield from named_parameters(value, name)
        else:
            for i, child in enumerate(value):
                yield from named_parameters(child, f"{name}[{i}]")


def flatten(record) -> tuple[list[np.ndarray], tuple]:
    """(parameter arrays in forward order, structure): equal structures mean same classes, shapes and dtypes."""
    leaves: list[np.ndarray] = []
    return leaves, _structure(record, leaves)


def _structure(record, leaves: list) -> tuple:
    """The structure of ``record`` (class, then per walked field), appending its parameters to ``leaves``."""
    spec = [type(record)]
    for name, _, param in _plan(type(record)):
        value = getattr(record, name)
        if param:
            leaves.append(value)
            spec.append((value.shape, value.dtype))
            continue
        kind = _kind(value, False)
        if kind == "record":
            spec.append(_structure(value, leaves))
        elif kind == "records":
            spec.append(tuple([_structure(child, leaves) for child in value]))
    return tuple(spec)


def parameters(record) -> list[np.ndarray]:
    """Every parameter array of a record, in forward order."""
    return flatten(record)[0]


def count_parameters(record) -> int:
    return sum(array.size for array in parameters(record))


def check_same_structure(a, b, path: str = "", names: tuple[str, str] = ("model", "gradients")) -> None:
    """Raise ``StructureError`` naming the first place where record trees ``a`` and ``b`` differ."""
    if flatten(a)[1] == flatten(b)[1]:
        return
    _find_difference(a, b, path, names)
    raise StructureError(f"at {path or 'the top'}: the {names[0]} and the {names[1]} "
                         f"differ in a field that is not walked")


def _find_difference(a, b, path, names) -> None:
    """Raise ``StructureError`` at the first walked place where ``a`` and ``b`` differ; return if there is none."""
    where = path or "the top"
    if type(a) is not type(b):
        raise StructureError(f"at {where}: the {names[0]} has {type(a).__name__}, "
                             f"the {names[1]} has {type(b).__name__}")
    for name, _, kind, x in _walked(a):
        y = getattr(b, name)
        name = _join(path, name)
        if kind == "param":
            if not isinstance(y, np.ndarray) or x.shape != y.shape or x.dtype != y.dtype:
                got = f"{y.dtype}{y.shape}" if isinstance(y, np.ndarray) else type(y).__name__
                raise StructureError(f"at {name}: the {names[0]} has {x.dtype}{x.shape}, the {names[1]} has {got}")
        elif kind == "record":
            _find_difference(x, y, name, names)
        else:
            if not isinstance(y, tuple) or len(x) != len(y):
                got = f"{len(y)} layers" if isinstance(y, tuple) else type(y).__name__
                raise StructureError(f"at {name}: the {names[0]} has {len(x)} layers, the {names[1]} has {got}")
            for i, (u, v) in enumerate(zip(x, y)):
                _find_difference(u, v, f"{name}[{i}]", names)


def replace_parameters(record, arrays: Iterator[np.ndarray]):
    """The record rebuilt through its constructors with the parameters taken in order from ``arrays``.

    A record whose parameters all come back as the very same arrays is returned as it is.
    """
    changes, same = {}, True
    for _, alias, kind, value in _walked(record):
        if kind == "param":
            new = next(arrays)
        elif kind == "record":
            new = replace_parameters(value, arrays)
        else:
            new = tuple(replace_parameters(child, arrays) for child in value)
            same = same and all(n is c for n, c in zip(new, value))
            changes[alias] = new
            continue
        same = same and new is value
        changes[alias] = new
    return record if same else attrs.evolve(record, **changes)


def map_parameters(fn: Callable[..., np.ndarray], record, *others):
    """A new record with ``fn(p, *q)`` in place of each parameter ``p`` (``q`` from ``others`` at the same path)."""
    for other in others:
        check_same_structure(record, other)
    columns = [parameters(record), *(parameters(o) for o in others)]
    return replace_parameters(record, iter([fn(*row) for row in zip(*columns)]))
