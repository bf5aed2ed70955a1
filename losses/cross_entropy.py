"""SoftmaxCrossEntropy: softmax and cross-entropy fused, mean over the batch."""

from __future__ import annotations

import math

import attrs
import numpy as np

from lamina.losses.targets import check_array_target, check_finite_rows, check_labels, check_pred


@attrs.frozen
class SoftmaxCrossEntropy:
    """L = -(1/n) sum_i sum_j t_ij log softmax(z_i)_j, for logits z (n, k) and labels (n,) or probabilities (n, k).

    d L / d z = (softmax(z) * sum_j t_ij - t) / n, which is (p - onehot) / n for labels.
    """

    def forward(self, pred, target, *, check: bool = True):
        """(logits (n, k), target) -> (value as a Python float, cache)."""
        z = check_pred(pred, "SoftmaxCrossEntropy") if check else pred
        target = np.asarray(target)
        n, k = z.shape
        shifted = z - np.maximum.reduce(z, axis=1, keepdims=True)  # z - max_j z_ij
        if target.ndim == 1:  # class labels
            if check:
                target = check_labels(target, n, k, "SoftmaxCrossEntropy")
            rows = np.arange(n)
            picked = shifted[rows, target]  # (z - max z) at each row's label
        else:
            if check:
                target = check_array_target(target, z, "SoftmaxCrossEntropy")
            rows = None
        # labels need shifted only at the picked entries (taken): e goes into its place
        e = np.exp(shifted, out=shifted if rows is not None else None)
        total = np.add.reduce(e, axis=1, keepdims=True)  # sum_j e_ij
        # log softmax = shifted - log total; never (max + log total) - z, which rounds away a small loss
        log_total = np.log(total)  # (n, 1)
        if rows is not None:
            value = float(np.add.reduce(log_total[:, 0] - picked)) / n
        else:
            value = float(-np.sum(target * (shifted - log_total)) / n)
        if check and not math.isfinite(value):
            check_finite_rows(z, "SoftmaxCrossEntropy: predictions")
        return value, (e, total, target, rows)

    def backward(self, cache) -> np.ndarray:
        """d L / d logits, (n, k): softmax(z) = e / total, made here in one pass."""
        e, total, target, rows = cache
        n = e.shape[0]
        if rows is not None:
            d = np.divide(e, total * n)  # p / n
            d[rows, target] -= 1 / n
            return d
        return (e / total * target.sum(axis=1, keepdims=True) - target) / n
