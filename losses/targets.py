"""Checks shared by the losses: predictions (n, k) and targets (labels or arrays)."""

from __future__ import annotations

import numpy as np

from lamina.layers.errors import ShapeError
from lamina.layers.records.finite import first_nonfinite_row


def check_pred(pred, loss: str, *, vector_ok: bool = False, any_rank: bool = False) -> np.ndarray:
    """The prediction as a float array (n, k), or also (n,) with ``vector_ok``, or (n, ..., k) with
    ``any_rank``; no axis empty."""
    pred = np.asarray(pred)
    if pred.dtype.kind != "f":
        raise TypeError(f"{loss}: predictions must be a float array, got dtype {pred.dtype}")
    if not (pred.ndim == 2 or vector_ok and pred.ndim == 1 or any_rank and pred.ndim > 2) or pred.size == 0:
        expected = "predictions (n,) or (n, k)" if vector_ok else "predictions (n, ..., k)" if any_rank else \
            "predictions (n, k)"
        raise ShapeError(loss, f"{expected} with n, k >= 1", str(pred.shape))
    return pred


def _index(position) -> str:
    return ", ".join(str(int(i)) for i in position)


def check_labels(labels, shape, n_classes: int, loss: str, ignore_index: int | None = None) -> np.ndarray:
    """Int class labels of ``shape`` ((n,) for an int n; (n, ...) for sequences) in [0, n_classes), or equal
    to ``ignore_index``; a ValueError naming the first bad label and its position."""
    labels = np.asarray(labels)
    shape = (shape,) if isinstance(shape, (int, np.integer)) else tuple(shape)
    if labels.shape != shape:
        raise ValueError(f"{loss}: expected {int(np.prod(shape))} labels of shape {shape} for predictions of "
                         f"shape {(*shape, n_classes)} (one label per position), got shape {labels.shape}")
    if labels.dtype.kind not in "iu":
        kind = "bool" if labels.dtype.kind == "b" else str(labels.dtype)
        raise ValueError(f"{loss}: labels must be integers in [0, {n_classes}), got {kind} "
                         f"(labels[{_index((0,) * labels.ndim)}] is {labels.flat[0].item()!r})")
    if np.minimum.reduce(labels, axis=None) < 0 or np.maximum.reduce(labels, axis=None) >= n_classes:
        bad = (labels < 0) | (labels >= n_classes)
        if ignore_index is not None:
            bad &= labels != ignore_index
        if bad.any():
            position = np.unravel_index(np.argmax(bad), labels.shape)
            also = "" if ignore_index is None else f" or ignore_index {ignore_index}"
            raise ValueError(f"{loss}: labels must be in [0, {n_classes}){also}, but "
                             f"labels[{_index(position)}] is {int(labels[position])}")
    return labels


def check_finite_rows(array: np.ndarray, what: str) -> None:
    """ValueError naming the first row of ``array`` with NaN or inf."""
    row = first_nonfinite_row(array)
    if row is not None:
        raise ValueError(f"{what} row {row} holds NaN or inf; expected finite values")


def check_array_target(target: np.ndarray, pred: np.ndarray, loss: str, *,
                       labels_ok: bool = True) -> np.ndarray:
    """A finite float target of the prediction's shape, cast to its dtype."""
    target = np.asarray(target)
    if target.dtype.kind != "f":
        raise TypeError(f"{loss}: a target array must be float, got dtype {target.dtype}")
    if target.shape != pred.shape:
        labels = f" or int labels ({pred.shape[0]},)" if labels_ok else ""
        raise ShapeError(loss, f"a target of the prediction's shape {pred.shape}{labels}", f"{target.shape}",
                         source="the target")
    target = target.astype(pred.dtype, copy=False)
    if not np.isfinite(np.add.reduce(target, axis=None)):
        check_finite_rows(target, f"{loss}: target")
    return target


def check_binary_target(target, pred: np.ndarray, loss: str) -> np.ndarray:
    """Targets of the prediction's shape in [0, 1] (0/1 as bool, int or float, or probabilities), in its
    dtype."""
    target = np.asarray(target)
    if target.shape != pred.shape:
        raise ShapeError(loss, f"a target of the prediction's shape {pred.shape}", f"{target.shape}",
                         source="the target")
    if target.dtype.kind not in "biuf":
        raise TypeError(f"{loss}: targets must be 0/1 (bool, int or float) or probabilities, got dtype "
                        f"{target.dtype}")
    if target.dtype.kind != "b" and not (np.minimum.reduce(target, axis=None) >= 0
                                         and np.maximum.reduce(target, axis=None) <= 1):  # NaN fails too
        i = np.unravel_index(np.argmax(~((target >= 0) & (target <= 1))), target.shape)
        index = ", ".join(str(int(j)) for j in i)
        raise ValueError(f"{loss}: targets must be in [0, 1] (0/1 or probabilities), but target[{index}] is "
                         f"{target[i].item()!r}")
    return target.astype(pred.dtype, copy=False)
