"""L1: mean absolute error over all elements."""

from __future__ import annotations

import attrs
import numpy as np

from lamina.losses.targets import check_array_target, check_pred


@attrs.frozen
class L1:
    """L = mean |pred - target| over all elements.  d L / d pred = sign(pred - target) / N, 0 where they are
    equal."""

    def forward(self, pred, target):
        """(pred (n,) or (n, k), float target of its shape) -> (value as a Python float, cache)."""
        pred = check_pred(pred, "L1", vector_ok=True)
        d = pred - check_array_target(target, pred, "L1", labels_ok=False)
        return float(np.mean(np.abs(d))), d

    def backward(self, d: np.ndarray) -> np.ndarray:
        """d L / d pred, the prediction's shape (torch's l1_loss gradient: 0 at zero error)."""
        return np.sign(d) / d.size
