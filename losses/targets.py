"""Checks shared by the losses: predictions (n, k) and targets (labels or arrays)."""

from __future__ import annotations

import numpy as np

from lamina.layers.errors import ShapeError


def check_pred(pred, loss: str) -> np.ndarray:
    """The prediction as a 2-D float array (n, k) with n, k >= 1."""
    pred = np.asarray(pred)
    if pred.dtype.kind != "f":
        raise TypeError(f"{loss}: predictions must be a float array, got dtype {pred.dtype}")
    if pred.ndim != 2 or pred.shape[0] == 0 or pred.shape[1] == 0:
        raise ShapeError(loss, "predictions (n, k) with n, k >= 1", str(pred.shape))
    return pred


def check_labels(labels, n_samples: int, n_classes: int, loss: str) -> np.ndarray:
    """Int class labels (n,) in [0, n_classes); ValueError naming the first bad label and its index."""
    labels = np.asarray(labels)
    if labels.ndim != 1 or len(labels) != n_samples:
        raise ValueError(f"{loss}: expected {n_samples} labels of shape ({n_samples},) for "
                         f"{n_samples} predictions, got shape {labels.shape}")
    if labels.dtype.kind not in "iu":
        kind = "bool" if labels.dtype.kind == "b" else str(labels.dtype)
        raise ValueError(f"{loss}: labels must be integers in [0, {n_classes}), got {kind} "
                         f"(labels[0] is {labels[0].item()!r})")
    if labels.min() < 0 or labels.max() >= n_classes:
        i = int(np.argmax((labels < 0) | (labels >= n_classes)))
        raise ValueError(f"{loss}: labels must be in [0, {n_classes}), but labels[{i}] is {int(labels[i])}")
    return labels


def check_finite_rows(array: np.ndarray, what: str) -> None:
    """ValueError naming the first row of ``array`` with NaN or inf."""
    bad = ~np.isfinite(array.reshape(len(array), -1)).all(axis=1)
    if bad.any():
        raise ValueError(f"{what} row {int(np.argmax(bad))} holds NaN or inf; expected finite values")


def check_array_target(target: np.ndarray, pred: np.ndarray, loss: str) -> np.ndarray:
    """A float target of the prediction's shape, cast to its dtype."""
    if target.dtype.kind != "f":
        raise TypeError(f"{loss}: a target array must be float, got dtype {target.dtype}")
    if target.shape != pred.shape:
        raise ShapeError(loss, f"a target of the prediction's shape {pred.shape} or int labels "
                               f"({pred.shape[0]},)", f"{target.shape}", source="the target")
    target = target.astype(pred.dtype, copy=False)
    if not np.isfinite(target.sum()):
        check_finite_rows(target, f"{loss}: target")
    return target
