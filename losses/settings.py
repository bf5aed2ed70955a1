"""The settings of a loss (weights, smoothing, delta): converted and checked once, when the loss is built."""

from __future__ import annotations

import attrs
import numpy as np

from lamina.layers.settings import fraction_closed, validator


def fraction(name: str):
    """An attrs validator: a number in [0, 1] (``layers.settings.fraction_closed``)."""
    return validator(fraction_closed, name=name)


def weights(name: str, *, number_ok: bool, some_positive: bool):
    """An attrs field for optional weights: None, a float (if ``number_ok``) or a read-only float64 array
    (k,).

    Every weight must be finite and >= 0 (and, with ``some_positive``, not all 0). The field compares by value
    and is left out of the hash.
    """
    def validate(instance, attribute, value):
        loss = type(instance).__name__
        if value is None:
            return
        is_vector = isinstance(value, np.ndarray) and value.ndim == 1 and len(value) > 0
        if not (is_vector or number_ok and isinstance(value, float)):
            what = ("a number or a 1-D sequence of numbers" if number_ok
                    else "a 1-D sequence of numbers, one per class")
            raise ValueError(f"{loss}: {name} must be {what}, got {value!r}")
        array = np.atleast_1d(value)
        bad = ~(np.isfinite(array) & (array >= 0))
        if bad.any():
            where = f"{name}[{int(np.argmax(bad))}]" if np.ndim(value) else name
            raise ValueError(f"{loss}: {name} must be finite and >= 0, but {where} is "
                             f"{array[np.argmax(bad)]}")
        if some_positive and not array.any():
            raise ValueError(f"{loss}: {name} are all 0; at least one must be > 0")

    return attrs.field(default=None, converter=_as_weights, validator=validate,
                       eq=attrs.cmp_using(eq=_same_weights), hash=False)


def _as_weights(value):
    """None, a float, or a read-only float64 copy of an array; anything else is left for the validator to
    refuse."""
    if value is None or isinstance(value, (bool, np.bool_)):
        return value
    try:
        array = np.asarray(value)
    except (TypeError, ValueError):  # ragged nested sequences
        return value
    if array.dtype.kind not in "iuf":
        return value
    if array.ndim == 0:
        return float(array)
    array = array.astype(np.float64)  # a copy: the caller's array stays theirs
    array.flags.writeable = False
    return array


def _same_weights(a, b) -> bool:
    if a is None or b is None:
        return a is b
    return np.shape(a) == np.shape(b) and bool(np.array_equal(a, b))
