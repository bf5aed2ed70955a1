"""MSE: mean squared error over all elements."""

from __future__ import annotations

import attrs
import numpy as np

from lamina.losses.targets import check_array_target, check_labels, check_pred


@attrs.frozen
class MSE:
    """L = (1/(n k)) sum (pred - target)^2; int labels (n,) stand for their one-hot rows.  d L / d pred = 2
    (pred - target) / (n k)."""

    def forward(self, pred, target):
        """(pred (n, k), target (n, k) or labels (n,)) -> (value as a Python float, cache)."""
        pred = check_pred(pred, "MSE")
        target = np.asarray(target)
        if target.ndim == 1:  # int labels stand for their one-hot rows
            labels = check_labels(target, pred.shape[0], pred.shape[1], "MSE")
            diff = pred.copy()
            diff[np.arange(len(labels)), labels] -= 1
        else:
            diff = pred - check_array_target(target, pred, "MSE")
        return float(np.mean(diff * diff)), diff

    def backward(self, diff: np.ndarray) -> np.ndarray:
        """d L / d pred, the prediction's shape."""
        return diff * (2 / diff.size)
