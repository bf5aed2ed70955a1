"""``param()``: the attrs field for a parameter array (read-only, compared by value)."""

from __future__ import annotations

import attrs
import numpy as np

PARAM = "lamina.param"
FLOAT_DTYPES = (np.dtype(np.float32), np.dtype(np.float64))


def frozen_array(value) -> np.ndarray:
    """The parameter as a read-only float32/float64 array: a writable array is copied, a read-only one kept."""
    array = value if type(value) is np.ndarray else np.asarray(value)
    if array.dtype.char not in "fd" or not array.dtype.isnative:  # native float32, float64
        raise TypeError(f"a parameter must be a float32 or float64 array, got dtype {array.dtype}")
    if array.flags.writeable:
        array = array.copy()
        array.setflags(write=False)
    return array


def frozen_view(array: np.ndarray) -> np.ndarray:
    """A read-only view of a freshly computed array, for a record to take without a copy.

    The array behind it stays writable: whoever the record is later donated to (``fit``, which
    updates its own model in place) reaches it through ``buffer_of``.
    """
    view = array.view()
    view.setflags(write=False)
    return view


def buffer_of(array: np.ndarray) -> np.ndarray | None:
    """The writable array behind a ``frozen_view`` (the whole of it), or None."""
    base = array.base
    if type(base) is np.ndarray and base.shape == array.shape and base.dtype == array.dtype:
        flags = base.flags
        if flags.writeable and flags.c_contiguous and array.flags.c_contiguous:
            return base
    return None


def array_repr(array: np.ndarray) -> str:
    """An array as its dtype and shape: 'float32(784, 128)'."""
    return f"{array.dtype}{tuple(array.shape)}"


def param(**kwargs):
    """A parameter field: read-only array, compared with ``np.array_equal``, shown as dtype and shape."""
    metadata = {**kwargs.pop("metadata", {}), PARAM: True}
    return attrs.field(
        converter=frozen_array,
        eq=attrs.cmp_using(eq=np.array_equal),
        hash=False,
        repr=array_repr,
        metadata=metadata,
        **kwargs,
    )


def is_param(field: attrs.Attribute) -> bool:
    return field.metadata.get(PARAM, False)
