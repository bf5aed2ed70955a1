"""The state of a chain (``ChainState``), and how an undeclared transform's state of any form is kept as data.

A declared transform's state is one model-shaped record per state array. An undeclared one
(optax's kind) keeps, per parameter, whatever its ``init`` gave: None, a number, a string, an
array, or a tuple, list or dict (str keys) of them. It is kept in a form a model file holds
(``stored``): arrays as records, so checkpoints save and resume it; ``restored`` gives it back
(fresh writable arrays, a list as a tuple, a NumPy scalar as a 0-d array).
"""

from __future__ import annotations

import attrs
import numpy as np

from lamina.layers.records.parameter import param
from lamina.layers.records.pickling import BuiltOnLoad
from lamina.layers.records.registry import register


def frozen(array: np.ndarray) -> np.ndarray:
    """A fresh array made read-only in place: a record takes it without a copy, and nobody can own it."""
    array.setflags(write=False)
    return array


def _is_count(instance, attribute, value) -> None:
    if type(value) is not int or value < 0:
        raise ValueError(f"ChainState: step must be an int >= 0, got {value!r}")


def _is_states(instance, attribute, value) -> None:
    if type(value) is not tuple or not all(type(s) is tuple for s in value):
        raise ValueError(f"ChainState: states must be a tuple of tuples of records, got {str(value)[:80]}")


@register
@attrs.frozen
class ChainState(BuiltOnLoad):
    """The number of updates done, and per stateful transform (in chain order) its state.

    A declared transform's entry is one model-shaped record per state array; an undeclared one's is
    ``(FreeStates(...),)``.
    """

    step: int = attrs.field(default=0, validator=_is_count)
    states: tuple = attrs.field(default=(), validator=_is_states)
    # the executor's plan for the records it was made for (never saved, never compared, never pickled)
    plan: object = attrs.field(default=None, init=False, eq=False, repr=False)


def with_plan(step: int, states: tuple, plan) -> ChainState:
    """ChainState(step, states) carrying ``plan``, built without running the validators again (they held)."""
    state = object.__new__(ChainState)
    object.__setattr__(state, "step", step)
    object.__setattr__(state, "states", states)
    object.__setattr__(state, "plan", plan)
    return state


@register
@attrs.frozen
class FreeStates:
    """An undeclared transform's state of each parameter (named_parameters order), as ``stored`` keeps it."""

    values: tuple


@register
@attrs.frozen
class StoredArray:
    """A float32 or float64 array of a free state."""

    value: np.ndarray = param()


@register
@attrs.frozen
class StoredNumbers:
    """Any other array of a free state (a count, a mask): its entries, shape and dtype."""

    entries: tuple
    shape: tuple
    dtype: str


@register
@attrs.frozen
class StoredDict:
    """A dict of a free state: its str keys and their values, in order."""

    keys: tuple
    values: tuple


def stored(value, where: str):
    """``value`` in the form a model file holds; a TypeError naming ``where`` for what no file can hold."""
    if value is None or type(value) in (bool, int, float, str):
        return value
    if isinstance(value, np.generic):
        value = np.asarray(value)
    if isinstance(value, np.ndarray):
        if value.dtype.char in "fd" and value.dtype.isnative:
            return StoredArray(value=frozen(np.array(value)))
        if value.dtype.kind in "biuf":
            return StoredNumbers(entries=tuple(value.ravel().tolist()), shape=value.shape,
                                 dtype=value.dtype.str)
    elif type(value) in (tuple, list):
        return tuple(stored(v, f"{where}[{i}]") for i, v in enumerate(value))
    elif type(value) is dict and all(type(k) is str for k in value):
        values = tuple(stored(v, f"{where}[{k!r}]") for k, v in value.items())
        return StoredDict(keys=tuple(value), values=values)
    raise TypeError(f"{where} is a {type(value).__name__}; a transform's state is None, a number, a str, an "
                    f"array, or a tuple, list or dict (str keys) of them")


def restored(node):
    """The state ``stored`` kept, with fresh writable arrays (the transform may overwrite them)."""
    if type(node) is tuple:
        return tuple(restored(v) for v in node)
    if type(node) is StoredArray:
        return np.array(node.value)
    if type(node) is StoredNumbers:
        return np.array(node.entries, dtype=np.dtype(node.dtype)).reshape(node.shape)
    if type(node) is StoredDict:
        return {k: restored(v) for k, v in zip(node.keys, node.values)}
    return node
