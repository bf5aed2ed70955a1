"""Checks of targets against a model, done once before training or evaluation (never per layer per batch)."""

from __future__ import annotations

import numpy as np

from lamina.data.checks import check_inputs, first_nonfinite_row  # noqa: F401 (re-exported)
from lamina.losses.targets import check_labels

def check_targets(y, n: int, n_outputs: int | None, name: str = "y", who: str = "fit") -> np.ndarray:
    """y as labels (n,) in [0, n_outputs) or a float array with n rows, all finite."""
    y = np.asarray(y)
    if y.ndim == 0 or len(y) != n:
        got = f"{len(y)} targets" if y.ndim else "a scalar"
        raise ValueError(f"{name} must have one target per sample: x has {n} samples, {name} has {got}")
    if y.ndim == 1:  # class labels; a regression target has shape (n, 1)
        if y.dtype.kind == "f":
            raise ValueError(f"{who}: {name} is 1-D float (shape {y.shape}); class labels must be integers, and a "
                             f"regression target has shape (n, k): use {name}[:, None] for one output")
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
