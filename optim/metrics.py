"""Accuracy, as the targets decide it: argmax for class labels and probability targets, ``logit > 0`` for 0/1
targets under binary cross-entropy, none for real-valued targets."""

from __future__ import annotations

import numpy as np

from lamina import losses


def _argmax_labels(pred, yb):
    return int(np.count_nonzero(pred.argmax(axis=-1) == yb)), yb.size


def _counted_labels(ignore_index: int):
    """The rule for labels some of which are ``ignore_index``: over the counted positions only."""
    def rule(pred, yb):
        counted = yb != ignore_index
        return int(np.count_nonzero((pred.argmax(axis=-1) == yb) & counted)), int(np.count_nonzero(counted))
    return rule


def _argmax_probabilities(pred, yb):
    return int(np.count_nonzero(pred.argmax(axis=-1) == yb.argmax(axis=-1))), yb.size // yb.shape[-1]


def _thresholded(pred, yb):
    return int(np.count_nonzero((pred > 0) == (yb > 0.5))), yb.size


def accuracy_rule(loss, y: np.ndarray):
    """``(pred, yb) -> (right, count)`` for these targets under ``loss``, or None when no accuracy applies (a
    tuple of targets: each part's own, ``part_rules``)."""
    if type(y) is tuple:
        return None
    binary = getattr(losses, "BinaryCrossEntropy", None)
    if binary is not None and isinstance(loss, binary):
        return _thresholded if np.isin(y, (0, 1)).all() else None
    if y.dtype.kind in "iu":  # labels (n,), or (n, ...) over sequences
        ignore_index = loss.ignore_index if isinstance(loss, losses.SoftmaxCrossEntropy) else None
        return _argmax_labels if ignore_index is None else _counted_labels(ignore_index)
    if y.ndim >= 2 and y.shape[-1] > 1 and y.dtype.kind == "f":
        if (y >= 0).all() and np.allclose(y.sum(axis=-1), 1, atol=1e-3):
            return _argmax_probabilities
    return None


def part_rules(loss, y) -> list | None:
    """Each part's accuracy rule for a tuple of targets under ``losses.Multi`` (None where none applies); None
    for one array of targets."""
    if type(y) is not tuple:
        return None
    return [accuracy_rule(part, target) for part, target in zip(loss.losses, y)]
