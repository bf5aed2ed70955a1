"""Checks of a whole data set's inputs, done once (before training, evaluation or batching)."""

from __future__ import annotations

import numpy as np

from lamina.layers.errors import ShapeError
from lamina.layers.records.finite import first_nonfinite_row


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
