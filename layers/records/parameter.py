"""The array fields of a record: ``param()`` (trainable), ``buffer()`` (updated by training, not by an
optimizer) and ``constant()`` (fixed).

Both are stored read-only and compare by value. A writable array handed to a constructor is
copied; a read-only one is taken as it is. Inside ``owning()`` (the training loop, which owns
the arrays it trains) a writable array is taken as a read-only view without a copy, and the loop
reaches the writable array behind it through ``owned_buffer``; no layer ever sees the
difference.
"""

from __future__ import annotations

import contextvars

import attrs
import numpy as np

KIND = "lamina.kind"
OPTIONAL = "lamina.optional"
FLOAT_DTYPES = (np.dtype(np.float32), np.dtype(np.float64))
_OWNING = contextvars.ContextVar("lamina_owning", default=False)


def frozen_array(value) -> np.ndarray:
    """The value as a read-only float32/float64 array: a writable array is copied (viewed, inside ``owning()``), a read-only one kept."""
    array = value if type(value) is np.ndarray else np.asarray(value)
    if array.dtype.char not in "fd" or not array.dtype.isnative:  # native float32, float64
        raise TypeError(f"a parameter or buffer must be a float32 or float64 array, got dtype {array.dtype}")
    if array.flags.writeable:
        array = array.view() if _OWNING.get() else array.copy()
        array.setflags(write=False)
    return array


class owning:
    """``with owning():`` records built inside take writable arrays as read-only views (no copy): for the training loop only."""

    __slots__ = ("_token",)

    def __enter__(self):
        self._token = _OWNING.set(True)
        return self

    def __exit__(self, *exc):
        _OWNING.reset(self._token)


def owned_buffer(array: np.ndarray) -> np.ndarray | None:
    """The writable C-contiguous array behind a read-only view taken inside ``owning()`` (all of it), or None."""
    base = array.base
    if type(base) is np.ndarray and base.shape == array.shape and base.dtype == array.dtype:
        flags = base.flags
        if flags.writeable and flags.c_contiguous and array.flags.c_contiguous:
            return base
    return None


def array_repr(array: np.ndarray) -> str:
    """An array as its dtype and shape: 'float32(784, 128)'."""
    if array is None:
        return "None"
    return f"{array.dtype}{tuple(array.shape)}"


def _frozen_or_none(value):
    return None if value is None else frozen_array(value)


def _array_field(kind: str, kwargs: dict):
    optional = kwargs.pop("optional", False)
    metadata = {**kwargs.pop("metadata", {}), KIND: kind, OPTIONAL: optional}
    return attrs.field(converter=_frozen_or_none if optional else frozen_array,
                       eq=attrs.cmp_using(eq=np.array_equal), hash=False,
                       repr=array_repr, metadata=metadata, **kwargs)


def param(**kwargs):
    """A trainable array field: read-only, compared with ``np.array_equal``, shown as dtype and shape;
    ``optional=True`` lets it hold None (no such parameter: a bias left out)."""
    return _array_field("param", kwargs)


def buffer(**kwargs):
    """A non-trainable array field that training updates (running statistics): saved, never stepped by an optimizer.

    In the record ``backward`` returns, a buffer field holds the buffer's new value.
    """
    return _array_field("buffer", kwargs)


def constant(**kwargs):
    """A fixed array field (a mask, a sinusoidal table): never trained or updated, saved in model files."""
    return _array_field("constant", kwargs)


def field_kind(field: attrs.Attribute) -> str | None:
    """'param', 'buffer', 'constant' or None (any other field: static configuration)."""
    return field.metadata.get(KIND)


def is_param(field: attrs.Attribute) -> bool:
    return field.metadata.get(KIND) == "param"


def is_array_field(field: attrs.Attribute) -> bool:
    return KIND in field.metadata


def is_optional(field: attrs.Attribute) -> bool:
    """Whether an array field may hold None (``param(optional=True)``)."""
    return field.metadata.get(OPTIONAL, False)
