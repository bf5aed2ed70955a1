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
        shift = z.max(axis=1, keepdims=True)
        e = np.exp(z - shift)
        total = e.sum(axis=1, keepdims=True)
        p = e / total
        log_normalizer = shift + np.log(total)  # log sum_j exp z_ij, (n, 1)
        if is_labels(target):
            if check:
                target = check_labels(target, n, k, "SoftmaxCrossEntropy")
            rows = np.arange(n)
            value = float(np.mean(log_normalizer[:, 0] - z[rows, target]))
        else:
            if check:
                target = check_array_target(target, z, "SoftmaxCrossEntropy")
            value = float(-np.sum(target * (z - log_normalizer)) / n)
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
