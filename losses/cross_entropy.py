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
        """(logits (n, k), target) -> (value as a Python float, cache).

        Works on z transposed, (k, n): the max and the sum over the k classes of each sample are
        then a few vector operations across the batch, not n short reductions (slow in NumPy).
        """
        z = check_pred(pred, "SoftmaxCrossEntropy") if check else pred
        target = np.asarray(target)
        n, k = z.shape
        if target.ndim == 1:  # class labels
            if check:
                target = check_labels(target, n, k, "SoftmaxCrossEntropy")
            rows = np.arange(n)
        else:
            if check:
                target = check_array_target(target, z, "SoftmaxCrossEntropy")
            rows = None
        shifted = z.T.copy()  # (k, n), ours
        shifted -= np.maximum.reduce(shifted, axis=0)  # z - max_j z_ij
        if rows is not None:
            picked = shifted[target, rows]  # (z - max z) at each sample's label
        # labels need shifted only at the picked entries (taken): e goes into its place
        e = np.exp(shifted, out=shifted if rows is not None else None)
        total = np.add.reduce(e, axis=0)  # (n,): sum_j e_ij
        # log softmax = shifted - log total; never (max + log total) - z, which rounds away a small loss
        log_total = np.log(total)
        if rows is not None:
            value = float(np.add.reduce(log_total - picked)) / n
        else:
            value = float(-np.sum(target.T * (shifted - log_total)) / n)
        if check and not math.isfinite(value):
            check_finite_rows(z, "SoftmaxCrossEntropy: predictions")
        return value, (e, total, target, rows)

    def backward(self, cache) -> np.ndarray:
        """d L / d logits, (n, k), made here in one pass from softmax(z) = e / total (a view of a (k, n) array)."""
        e, total, target, rows = cache
        n = e.shape[1]
        if rows is not None:
            d = np.divide(e, total * n)  # p / n, (k, n)
            d[target, rows] -= 1 / n
            return d.T
        return ((e / total * target.sum(axis=1) - target.T) / n).T
