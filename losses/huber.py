"""Huber: squared error near zero, absolute error beyond delta; mean over all elements."""

from __future__ import annotations

import attrs
import numpy as np

from lamina.layers.settings import positive_number, validator
from lamina.losses.targets import check_array_target, check_pred


@attrs.frozen
class Huber:
    """L = mean h(d) over all elements, d = pred - target, h(d) = d^2 / 2 if |d| <= delta else delta (|d| -
    delta / 2).

    d L / d pred = clip(d, -delta, delta) / N, N the number of elements (torch.nn.functional.huber_loss).
    """

    delta: float = attrs.field(default=1.0, validator=validator(positive_number))

    def forward(self, pred, target):
        """(pred (n,) or (n, k), float target of its shape) -> (value as a Python float, cache)."""
        pred = check_pred(pred, "Huber", vector_ok=True)
        d = pred - check_array_target(target, pred, "Huber", labels_ok=False)
        a = np.abs(d)
        h = np.where(a <= self.delta, d * d / 2, self.delta * (a - self.delta / 2))
        return float(np.mean(h)), d

    def backward(self, d: np.ndarray) -> np.ndarray:
        """d L / d pred, the prediction's shape."""
        return np.clip(d, -self.delta, self.delta) / d.size
