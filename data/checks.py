"""Checks of a whole data set's inputs, done once (before training, evaluation or batching)."""

from __future__ import annotations

import numpy as np

from lamina.layers.errors import ShapeError

ROWS_PER_SCAN = 4096


def first_nonfinite_row(x: np.ndarray) -> int | None:
    """The first row holding NaN or inf, or None.

    One BLAS pass first (the column sums ones @ x are finite unless x holds NaN or inf, or a sum
    overflows), then an exact scan in chunks (memory stays flat).
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


def check_inputs(x, name: str = "x") -> np.ndarray:
    """x as an array (n, ...) of numbers with n >= 1 samples and >= 1 feature, all finite."""
    if not isinstance(x, np.ndarray):
        x = np.asarray(x)
    if x.dtype.kind not in "fiu":
        raise TypeError(f"{name} must be an array of floats or integers, got dtype {x.dtype}")
    if x.ndim < 2:
        raise ShapeError(name, "a 2-D array (n_samples, n_features)", str(x.shape), source=f"the data {name}")
    if x.shape[0] == 0 or x[0].size == 0:
        raise ShapeError(name, "at least one sample and one feature", str(x.shape), source=f"the data {name}")
    row = first_nonfinite_row(x)
    if row is not None:
        raise ValueError(f"{name} row {row} holds NaN or inf; expected finite values")
    return x
