"""Walking records: a model is a tree whose leaves are its array fields (params and buffers); the one tree
walker.

A field is walked when it is an array field (``param()`` or ``buffer()``; an optional one holding
None is skipped), a record (an attrs instance), or a non-empty tuple of records
(``Sequence.layers``). Fields with ``init=False`` are derived by the constructor and never walked.
Paths name places the way Python would reach them: ``layers[2].weight``. Everything that combines
or transforms gradients sees params only; ``named_buffers`` / ``map_buffers`` / ``update_buffers``
reach buffers.

Sharing: one record object at several paths is one set of params. The walks below visit a record
once, under its first path in field order; ``replace_arrays`` (and so ``map_parameters``) puts one
new record at every path of it; ``fold_gradients`` sums the gradient parts of each shared record.
"""

from __future__ import annotations

import functools
import weakref
from typing import Callable, Iterator

import attrs
import numpy as np

from lamina.layers.errors import StructureError
from lamina.layers.records.parameter import field_kind


@functools.lru_cache(maxsize=None)
def _plan(cls: type) -> tuple[tuple[str, str, str | None], ...]:
    """(name, init alias, 'param' | 'buffer' | None) of each init field of a record class, looked up once per
    class."""
    return tuple((f.name, f.alias, field_kind(f)) for f in attrs.fields(cls) if f.init)


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
        if value is None:
            continue
        kind = _kind(value, array_kind)
        if kind is not None:
            yield name, alias, kind, value


ARRAYS = ("param", "buffer", "constant")
"""The kinds of array field; ``map_arrays`` (a cast, a copy) reaches all three."""


def _matches(walked: str, kind: str) -> bool:
    return walked == kind or (kind == "array" and walked in ARRAYS)


def _named(record, kind: str, path: str, seen: set | None = None) -> Iterator[tuple[str, np.ndarray]]:
    """(path, array) of the ``kind`` arrays ('param', 'buffer', or 'array' for both) in field order, each
    record
    visited once (``seen``: the ids of the records met so far)."""
    seen = set() if seen is None else seen
    seen.add(id(record))
    arrays = ARRAYS if kind == "array" else (kind,)
    for name, _, walked, value in _walked(record):
        name = _join(path, name)
        if walked in arrays:
            yield name, value
        elif walked == "record":
            if id(value) not in seen:
                yield from _named(value, kind, name, seen)
        elif walked == "records":
            for i, child in enumerate(value):
                if id(child) not in seen:
                    yield from _named(child, kind, f"{name}[{i}]", seen)


def records(record, path: str = "") -> Iterator[tuple[str, object]]:
    """(path, record) for the record and every record inside it, at every path (a shared one at each of its
    paths)."""
    yield path, record
    for name, _, walked, value in _walked(record):
        if walked == "record":
            yield from records(value, _join(path, name))
        elif walked == "records":
            for i, child in enumerate(value):
                yield from records(child, f"{_join(path, name)}[{i}]")


def holds_arrays(record) -> bool:
    return next(_named(record, "array", ""), None) is not None


_SHARED: dict[int, tuple] = {}   # id -> (weak reference, shared(record)): records never change


def shared(record) -> dict[str, str]:
    """{later path: first path} of every record with params or buffers placed at several paths (its first use
    in field order), the outermost shared record only (what it holds is shared with it). Found once per record
    object (records never change); the dict is the cache's own: read it, do not change it."""
    hit = _SHARED.get(id(record))
    if hit is not None and hit[0]() is record:
        return hit[1]
    found = _shared(record)
    try:
        ref = weakref.ref(record, lambda _, key=id(record): _SHARED.pop(key, None))
    except TypeError:  # (a record without a weak reference slot: found again next time)
        return found
    _SHARED[id(record)] = (ref, found)
    return found


def _shared(record) -> dict[str, str]:
    first, out = {}, {}
    for path, child in records(record):
        if any(path.startswith(later) and path[len(later)] in ".[" for later in out):
            continue
        if id(child) in first:
            if holds_arrays(child):
                out[path] = first[id(child)]
        else:
            first[id(child)] = path
    return out


def check_same_sharing(model, other, names: tuple[str, str] = ("model", "checkpoint")) -> None:
    """ValueError naming the first path where two models of one structure share differently (e.g. on
    resume)."""
    mine, theirs = shared(model), shared(other)
    for path in sorted(set(mine) | set(theirs)):
        if mine.get(path) != theirs.get(path):
            def says(s, name):
                return f"the {name} shares it with {s[path]}" if path in s else \
                    f"the {name} does not share it"
            raise ValueError(f"at {path}: {says(mine, names[0])}, but {says(theirs, names[1])}")


def check_sharing(record, who: str = "") -> None:
    """ValueError when a record holding buffers (running statistics) sits at several paths: it cannot be
    shared."""
    for later, path in shared(record).items():
        child = dict(records(record))[path]
        if next(_named(child, "buffer", ""), None) is not None:
            at = f"{who}: " if who else ""
            raise ValueError(f"{at}the same {type(child).__name__} record is at {path or 'the top'} and at "
                             f"{later}, but a record with buffers (running statistics) cannot be shared; "
                             f"build one record per place (e.g. BatchNorm.init twice)")


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
    """Classes, field names, and array shapes and dtypes: equal structures can be combined element by
    element."""
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
    """Raise ``StructureError`` at the first walked place where ``a`` and ``b`` differ; return if there is
    none."""
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
                raise StructureError(f"at {name}: the {names[0]} has {x.dtype}{x.shape}, the {names[1]} has "
                                     f"{got}")
        elif kind == "record":
            if y is None or not attrs.has(type(y)):
                raise StructureError(f"at {name}: the {names[0]} has {type(x).__name__}, "
                                     f"the {names[1]} has {type(y).__name__}")
            _find_difference(x, y, name, names)
        else:
            if not isinstance(y, tuple) or len(x) != len(y):
                got = f"{len(y)} layers" if isinstance(y, tuple) else type(y).__name__
                raise StructureError(f"at {name}: the {names[0]} has {len(x)} layers, the {names[1]} has "
                                     f"{got}")
            for i, (u, v) in enumerate(zip(x, y)):
                _find_difference(u, v, f"{name}[{i}]", names)
    for name, _, kind, y in _walked(b):  # a field walked in b but not in a (None against a record)
        x = getattr(a, name)
        if _kind(x, None) is None and kind in ("record", "records"):
            raise StructureError(f"at {_join(path, name)}: the {names[0]} has {type(x).__name__}, "
                                 f"the {names[1]} has {type(y).__name__}")


def replace_arrays(record, arrays: Iterator[np.ndarray], kind: str = "param"):
    """The record rebuilt through its constructors with its ``kind`` arrays taken in order from ``arrays``.

    A record whose arrays all come back as the very same objects is returned as it is; a record at
    several paths (shared) takes its arrays once and comes back as one new record at all of them.
    """
    return _replace(record, arrays, kind, {})


def _replace(record, arrays, kind: str, memo: dict):
    done = memo.get(id(record))
    if done is not None:
        return done[1]
    changes, same = {}, True
    for _, alias, walked, value in _walked(record):
        if _matches(walked, kind):
            new = next(arrays)
        elif walked == "record":
            new = _replace(value, arrays, kind, memo)
        elif walked == "records":
            new = tuple(_replace(child, arrays, kind, memo) for child in value)
            same = same and all(n is c for n, c in zip(new, value))
            changes[alias] = new
            continue
        else:
            continue
        same = same and new is value
        changes[alias] = new
    new_record = record if same else attrs.evolve(record, **changes)
    memo[id(record)] = (record, new_record)  # (the record is kept alive, so its id stays its own)
    return new_record


def replace_parameters(record, arrays: Iterator[np.ndarray]):
    """The record with its parameters taken in order from ``arrays``."""
    return replace_arrays(record, arrays, "param")


def map_parameters(fn: Callable[..., np.ndarray], record, *others):
    """A new record with ``fn(p, *q)`` in place of each parameter ``p`` (``q`` from ``others`` at the same
    path)."""
    return _map_kind(fn, record, others, parameters, "param")


def map_buffers(fn: Callable[..., np.ndarray], record, *others):
    """A new record with ``fn(b, *c)`` in place of each buffer ``b`` (``c`` from ``others`` at the same
    path)."""
    return _map_kind(fn, record, others, buffers, "buffer")


def _map_kind(fn, record, others: tuple, arrays: Callable, kind: str):
    """``fn`` over the arrays of one ``kind`` (read by ``arrays``), row by row across record and others."""
    for other in others:
        check_same_structure(record, other)
    columns = [arrays(record), *(arrays(o) for o in others)]
    return replace_arrays(record, iter([fn(*row) for row in zip(*columns)]), kind)


def map_arrays(fn: Callable[[np.ndarray], np.ndarray], record):
    """A new record with ``fn(a)`` in place of every parameter and buffer ``a``, rebuilt once (a cast of the
    whole model)."""
    return replace_arrays(record, iter([fn(a) for _, a in _named(record, "array", "")]), "array")


def update_buffers(model, grads):
    """``model`` with its buffers taken from ``grads`` (the record ``backward`` returned: its buffer fields
    hold the new values)."""
    check_same_structure(model, grads)
    return replace_arrays(model, iter(buffers(grads)), "buffer")


def _direct_params(record) -> tuple:
    return tuple((name, alias) for name, alias, kind in _plan(type(record)) if kind == "param")


def fold_gradients(model, grads):
    """The gradients with the parts of each shared record summed into one record placed at every path of it.

    ``grads`` is the record ``model.backward`` returned (each use's part at that use's path); a
    model without sharing gets ``grads`` back as they are, and folded gradients fold to themselves
    (parts that are one object already are taken once).
    """
    if not shared(model):
        return grads
    check_same_structure(model, grads)
    parts: dict[int, dict[int, object]] = {}
    for (_, m), (_, g) in zip(records(model), records(grads)):
        if _direct_params(m):
            parts.setdefault(id(m), {})[id(g)] = g
    return _fold(model, grads, parts, {})


def _fold(model, grads, parts: dict, memo: dict):
    done = memo.get(id(model))
    if done is not None:
        return done
    changes, same = {}, True
    own = list(parts.get(id(model), {}).values())
    if len(own) > 1:
        same = False
        for name, alias in _direct_params(model):
            total = sum((getattr(part, name) for part in own[1:]), getattr(own[0], name))
            total.setflags(write=False)   # fresh: the record takes it without a copy
            changes[alias] = total
    for name, alias, walked, value in _walked(model):
        given = getattr(grads, name)
        if walked == "record":
            changes[alias] = _fold(value, given, parts, memo)
            same = same and changes[alias] is given
        elif walked == "records":
            changes[alias] = tuple(_fold(m, g, parts, memo) for m, g in zip(value, given))
            same = same and all(a is b for a, b in zip(changes[alias], given))
    folded = grads if same else attrs.evolve(grads, **changes)
    memo[id(model)] = folded
    return folded


def array_steps(record) -> tuple:
    """('param' | 'buffer', (field name or tuple index, ...)) for each array of the record, in the order of
    ``named_parameters`` and ``named_buffers`` interleaved as met (a shared record once): how to reach them
    again in a record of the same structure with ``arrays_along``, without walking it."""
    steps: list = []
    _steps(record, (), steps, set())
    return tuple(steps)


def _steps(record, path: tuple, steps: list, seen: set) -> None:
    seen.add(id(record))
    for name, _, walked, value in _walked(record):
        if walked in ("param", "buffer"):
            steps.append((walked, path + (name,)))
        elif walked == "record":
            if id(value) not in seen:
                _steps(value, path + (name,), steps, seen)
        elif walked == "records":
            for i, child in enumerate(value):
                if id(child) not in seen:
                    _steps(child, path + (name, i), steps, seen)


def arrays_along(record, steps: tuple) -> list[np.ndarray]:
    """The arrays ``steps`` (from ``array_steps`` of a record of this structure) reach in ``record``, in
    order."""
    out = []
    for _, path in steps:
        value = record
        for key in path:
            value = getattr(value, key) if type(key) is str else value[key]
        out.append(value)
    return out


def first_paths(record, path: str = "") -> dict[int, str]:
    """id -> the first path (in field order) of the record and of every record inside it."""
    first: dict[int, str] = {}
    for at, child in records(record, path):
        first.setdefault(id(child), at)
    return first


def count_first_uses(record, path: str, first: dict[int, str]) -> int:
    """The parameters of ``record`` (at ``path``) whose records have their first use inside it (``first``:
    ``first_paths`` of the whole model): a summary's row count, shared records counted at their first row."""
    total = 0
    for at, child in records(record, path):
        if first.get(id(child)) == at:
            total += sum(getattr(child, name).size for name, _ in _direct_params(child)
                         if getattr(child, name) is not None)
    return total
