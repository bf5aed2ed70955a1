"""SoftmaxCrossEntropy: softmax and cross-entropy fused, mean over the batch."""

from __future__ import annotations

import attrs
import numpy as np

from lamina.losses.targets import check_array_target, check_finite_rows, check_labels, check_pred, is_labels


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
        shifted = z - z.max(axis=1, keepdims=True)
        e = np.exp(shifted)
        total = e.sum(axis=1, keepdims=True)
        p = np.divide(e, total, out=e)  # e is ours: softmax in its place
        # log softmax = shifted - log total; never (max + log total) - z, which rounds away a small loss
        log_total = np.log(total)  # (n, 1)
        if is_labels(target):
            if check:
                target = check_labels(target, n, k, "SoftmaxCrossEntropy")
            rows = np.arange(n)
            value = float(np.add.reduce(log_total[:, 0] - shifted[rows, target])) / n
        else:
            if check:
                target = check_array_target(target, z, "SoftmaxCrossEntropy")
            value = float(-np.sum(target * (shifted - log_total)) / n)
        if check and not np.isfinite(value):
            check_finite_rows(z, "SoftmaxCrossEntropy: predictions")
        return value, (p, target)

    def backward(self, cache) -> np.ndarray:
        """d L / d logits, (n, k)."""
        p, target = cache
        n = p.shape[0]
        if target.ndim == 1:
            d = p / n
            d[np.arange(n), target] -= 1 / n
            return d
        return (p * target.sum(axis=1, keepdims=True) - target) / n
