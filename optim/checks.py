"""Checks of a whole data set, done once before training or evaluation (never per layer per batch)."""

from __future__ import annotations

import numpy as np

from lamina.layers.errors import ShapeError
from lamina.losses.targets import check_labels

ROWS_PER_SCAN = 4096


def first_nonfinite_row(x: np.ndarray) -> int | None:
    """The first row holding NaN or inf, or None; a fast sum first, then an exact scan in chunks (memory stays flat)."""
    if x.dtype.kind != "f":
        return None
    with np.errstate(over="ignore", invalid="ignore"):
        if np.isfinite(x.sum(dtype=x.dtype)):
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


def check_targets(y, n: int, n_outputs: int | None, name: str = "y", who: str = "fit") -> np.ndarray:
    """y as labels (n,) in [0, n_outputs) or a float array with n rows, all finite."""
    y = np.asarray(y)
    if y.ndim == 0 or len(y) != n:
        got = f"{len(y)} targets" if y.ndim else "a scalar"
        raise ValueError(f"{name} must have one target per sample: x has {n} samples, {name} has {got}")
    if y.ndim == 1:  # class labels; a regression target has shape (n, 1)
        if n_outputs is None:
            raise ValueError(f"{name} holds class labels, but the model's number of outputs is unknown")
        return check_labels(y, n, n_outputs, who if name == "y" else f"{who}: {name}")
    if y.dtype.kind != "f":
        raise TypeError(f"{name} must be int class labels (n,) or a float array, got dtype {y.dtype} "
                        f"with shape {y.shape}")
    row = first_nonfinite_row(y if y.ndim > 1 else y[:, None])
    if row is not None:
        raise ValueError(f"{name} row {row} holds NaN or inf; expected finite values")
    return y


def is_classification(y: np.ndarray) -> bool:
    """Targets that are integer class labels (n,)."""
    return y.ndim == 1 and y.dtype.kind in "iu"
