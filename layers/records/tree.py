"""Walking records: a model is a tree whose leaves are its array fields (params and buffers).

A field is walked when it is an array field (``param()`` or ``buffer()``), a record (an attrs
instance), or a non-empty tuple of records (``Sequence.layers``). Fields with ``init=False``
are derived by the constructor and never walked. Paths name places the way Python would reach
them: ``layers[2].weight``. Everything that combines or transforms gradients sees params only;
``named_buffers`` / ``map_buffers`` / ``update_buffers`` reach buffers.
"""

from __future__ import annotations

import functools
from typing import Callable, Iterator

import attrs
import numpy as np

from lamina.layers.errors import StructureError
from lamina.layers.records.parameter import field_kind


@functools.lru_cache(maxsize=None)
def _plan(cls: type) -> tuple[tuple[str, str, str | None], ...]:
    """(name, init alias, 'param' | 'buffer' | None) of each init field of a record class, looked up once per class."""
    return tuple((f.name, f.alias, field_kind(f)) for f in attrs.fields(cls) if f.init)


ARRAYS = ("param", "buffer", "constant")
"""The kinds of array field; ``map_arrays`` (a cast, a copy) reaches all three."""


def _kind(value, array_kind: str | None) -> str | None:
    if array_kind is not None:
        return array_kind
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
    """(name, alias, kind, value) for each walked field: kind is 'param', 'buffer', 'record' or 'records'."""
    for name, alias, array_kind in _plan(type(record)):
        value = getattr(record, name)
        kind = _kind(value, array_kind)
        if kind is not None:
            yield name, alias, kind, value


def _named(record, kind: str, path: str) -> Iterator[tuple[str, np.ndarray]]:
    """(path, array) of the ``kind`` arrays ('param', 'buffer', or 'array' for both) in field order."""
    for name, _, walked, value in _walked(record):
        name = _join(path, name)
        if walked == kind or (kind == "array" and walked in ARRAYS):
            yield name, value
        elif walked == "record":
            yield from _named(value, kind, name)
        elif walked == "records":
            for i, child in enumerate(value):
                yield from _named(child, kind, f"{name}[{i}]")


def named_parameters(record, path: str = "") -> Iterator[tuple[str, np.ndarray]]:
    """(path, array) for every parameter, in field order (forward order for a Sequence)."""
    return _named(record, "param", path)


def named_buffers(record, path: str = "") -> Iterator[tuple[str, np.ndarray]]:
    """(path, array) for every buffer (running statistics), in field order."""
    return _named(record, "buffer", path)


def parameters(record) -> list[np.ndarray]:
    """Every parameter array of a record, in forward order."""
    return [array for _, array in _named(record, "param", "")]


def buffers(record) -> list[np.ndarray]:
    """Every buffer array of a record, in forward order."""
    return [array for _, array in _named(record, "buffer", "")]


def count_parameters(record) -> int:
    return sum(array.size for array in parameters(record))


def structure(record) -> tuple:
    """Classes, field names, and array shapes and dtypes: equal structures can be combined element by element."""
    spec = [type(record)]
    for name, _, kind, value in _walked(record):
        if kind in ARRAYS:
            spec.append((name, kind, value.shape, value.dtype))
        elif kind == "record":
            spec.append((name, structure(value)))
        else:
            spec.append((name, tuple(structure(child) for child in value)))
    return tuple(spec)


def check_same_structure(a, b, path: str = "", names: tuple[str, str] = ("model", "gradients")) -> None:
    """Raise ``StructureError`` naming the first place where record trees ``a`` and ``b`` differ."""
    if structure(a) == structure(b):
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
        if kind in ARRAYS:
            if not isinstance(y, np.ndarray) or x.shape != y.shape or x.dtype != y.dtype:
                got = f"{y.dtype}{y.shape}" if isinstance(y, np.ndarray) else type(y).__name__
                raise StructureError(f"at {name}: the {names[0]} has {x.dtype}{x.shape}, the {names[1]} has {got}")
        elif kind == "record":
            if y is None or not attrs.has(type(y)):
                raise StructureError(f"at {name}: the {names[0]} has {type(x).__name__}, "
                                     f"the {names[1]} has {type(y).__name__}")
            _find_difference(x, y, name, names)
        else:
            if not isinstance(y, tuple) or len(x) != len(y):
                got = f"{len(y)} layers" if isinstance(y, tuple) else type(y).__name__
                raise StructureError(f"at {name}: the {names[0]} has {len(x)} layers, the {names[1]} has {got}")
            for i, (u, v) in enumerate(zip(x, y)):
                _find_difference(u, v, f"{name}[{i}]", names)
    for name, _, kind, y in _walked(b):  # a field walked in b but not in a (None against a record)
        x = getattr(a, name)
        if _kind(x, None) is None and kind in ("record", "records"):
            raise StructureError(f"at {_join(path, name)}: the {names[0]} has {type(x).__name__}, "
                                 f"the {names[1]} has {type(y).__name__}")


def replace_arrays(record, arrays: Iterator[np.ndarray], kind: str = "param"):
    """The record rebuilt through its constructors with its ``kind`` arrays taken in order from ``arrays``.

    A record whose arrays all come back as the very same objects is returned as it is.
    """
    changes, same = {}, True
    for _, alias, walked, value in _walked(record):
        if walked == kind or (kind == "array" and walked in ARRAYS):
            new = next(arrays)
        elif walked == "record":
            new = replace_arrays(value, arrays, kind)
        elif walked == "records":
            new = tuple(replace_arrays(child, arrays, kind) for child in value)
            same = same and all(n is c for n, c in zip(new, value))
            changes[alias] = new
            continue
        else:
            continue
        same = same and new is value
        changes[alias] = new
    return record if same else attrs.evolve(record, **changes)


def replace_parameters(record, arrays: Iterator[np.ndarray]):
    """The record with its parameters taken in order from ``arrays``."""
    return replace_arrays(record, arrays, "param")


def map_parameters(fn: Callable[..., np.ndarray], record, *others):
    """A new record with ``fn(p, *q)`` in place of each parameter ``p`` (``q`` from ``others`` at the same path)."""
    for other in others:
        check_same_structure(record, other)
    columns = [parameters(record), *(parameters(o) for o in others)]
    return replace_arrays(record, iter([fn(*row) for row in zip(*columns)]), "param")


def map_buffers(fn: Callable[..., np.ndarray], record, *others):
    """A new record with ``fn(b, *c)`` in place of each buffer ``b`` (``c`` from ``others`` at the same path)."""
    for other in others:
        check_same_structure(record, other)
    columns = [buffers(record), *(buffers(o) for o in others)]
    return replace_arrays(record, iter([fn(*row) for row in zip(*columns)]), "buffer")


def map_arrays(fn: Callable[[np.ndarray], np.ndarray], record):
    """A new record with ``fn(a)`` in place of every parameter and buffer ``a``, rebuilt once (a cast of the whole model)."""
    return replace_arrays(record, iter([fn(a) for _, a in _named(record, "array", "")]), "array")


def update_buffers(model, grads):
    """``model`` with its buffers taken from ``grads`` (the record ``backward`` returned: its buffer fields hold the new values)."""
    check_same_structure(model, grads)
    return replace_arrays(model, iter(buffers(grads)), "buffer")
