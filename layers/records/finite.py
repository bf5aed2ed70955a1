"""The one scan for NaN and inf: the first bad row of an array, the first bad array of a record."""

from __future__ import annotations

import math

import numpy as np

from lamina.layers.records.tree import named_buffers, named_parameters

ROWS_PER_SCAN = 4096
"""The exact scan reads this many rows at a time, so its memory stays flat (a memmap is read in pieces)."""


def first_nonfinite_row(x: np.ndarray) -> int | None:
    """The index of the first row of x (n, ...) holding NaN or inf, or None (always None for integers).

    One BLAS pass first (the column sums ones @ x are finite unless x holds NaN or inf, or a sum
    overflows), then, only when that is not finite, an exact scan in chunks of rows.
    """
    if x.dtype.kind != "f":
        return None
    with np.errstate(over="ignore", invalid="ignore"):
        column_sums = np.ones(len(x), x.dtype) @ x.reshape(len(x), -1)
    if np.isfinite(column_sums).all():
        return None
    for start in range(0, len(x), ROWS_PER_SCAN):
        chunk = np.asarray(x[start:start + ROWS_PER_SCAN])
        bad = ~np.isfinite(chunk.reshape(len(chunk), -1)).all(axis=1)
        if bad.any():
            return start + int(np.argmax(bad))
    return None  # the float sum overflowed on finite data


def first_nonfinite(record) -> str | None:
    """The path of the first parameter, then buffer, of a record (in forward order) holding NaN or inf, or
    None."""
    for path, array in (*named_parameters(record), *named_buffers(record)):
        if not np.isfinite(array).all():
            return path
    return None


def all_finite(arrays) -> bool:
    """Whether every array holds only finite values: one BLAS dot per array (``vdot(a, a)`` is finite unless
    ``a`` holds NaN or inf, or the sum of squares overflows, which an exact scan then settles)."""
    for a in arrays:
        if not math.isfinite(np.vdot(a, a)) and not np.isfinite(a).all():
            return False
    return True
