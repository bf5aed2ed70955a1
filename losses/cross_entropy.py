"""SoftmaxCrossEntropy: softmax and cross-entropy fused, mean over every position; smoothing, class weights,
ignore_index."""

from __future__ import annotations

import attrs
import numpy as np

from lamina.losses.settings import fraction, weights
from lamina.losses.targets import check_array_target, check_labels, check_pred
from lamina.layers.settings import is_int


def _check_ignore_index(loss, attribute, value) -> None:
    if value is not None and not is_int(value):
        raise ValueError(f"SoftmaxCrossEntropy: ignore_index must be None or an int (a label to skip), "
                         f"got {value!r}")


@attrs.frozen
class SoftmaxCrossEntropy:
    """L = -(1/D) sum_i sum_j s_ij log softmax(z_i)_j, for logits z (n, ..., k) and labels (n, ...) or
    probabilities t (n, ..., k); i runs over every position (the class axis is the last one).

    The weights s, with smoothing eps and class weights w (all 1 when None), and the divisor D:
      labels y:       s_ij = w_j ((1 - eps) [j = y_i] + eps / k),   D = sum_i w_(y_i)
      probabilities:  s_ij = w_j ((1 - eps) t_ij + eps / k),        D = number of positions
    d L / d z = (softmax(z) * sum_j s_ij - s) / D, which is (p - onehot) / n for plain labels.
    Positions whose label is ``ignore_index`` are left out of both sums (loss 0, zero gradient when all are).
    As torch.nn.functional.cross_entropy(z, target, weight=w, label_smoothing=eps, ignore_index=...) with the
    class axis moved to 1.
    """

    label_smoothing: float = attrs.field(default=0.0, validator=fraction("label_smoothing"))
    class_weights: np.ndarray | None = weights("class_weights", number_ok=False, some_positive=True)
    ignore_index: int | None = attrs.field(default=None, validator=_check_ignore_index)

    def forward(self, pred, target):
        """(logits (n, ..., k), labels (n, ...) or probabilities (n, ..., k)) -> (value, a float; cache)."""
        z = check_pred(pred, "SoftmaxCrossEntropy", any_rank=True)
        target = np.asarray(target)
        shape, k = z.shape, z.shape[-1]
        if target.ndim == z.ndim:
            target = check_array_target(target, z, "SoftmaxCrossEntropy").reshape(-1, k)
            counted = None
        else:
            target = check_labels(target, shape[:-1], k, "SoftmaxCrossEntropy", self.ignore_index).reshape(-1)
            counted = None if self.ignore_index is None else target != self.ignore_index
        z = z.reshape(-1, k)
        if counted is not None and counted.all():
            counted = None
        if counted is not None:
            z, target = z[counted], target[counted]
        if len(z) == 0:  # every position ignored
            return 0.0, (None, shape, z.dtype, counted)
        plain = self.label_smoothing == 0 and self.class_weights is None   # (the fast path on z transposed)
        value, cache = _plain_forward(z, target) if plain else self._forward_rows(z, target)
        return value, (cache, shape, z.dtype, counted)

    def backward(self, cache) -> np.ndarray:
        """d L / d logits, (n, ..., k); zero at ignored positions."""
        rows, shape, dtype, counted = cache
        if rows is None:
            return np.zeros(shape, dtype)
        plain = self.label_smoothing == 0 and self.class_weights is None
        d = _plain_backward(rows) if plain else _weighted_backward(rows)
        if counted is not None:
            full = np.zeros((len(counted), shape[-1]), d.dtype)
            full[counted] = d
            d = full
        return d.reshape(shape)

    def _forward_rows(self, z: np.ndarray, target: np.ndarray):
        """The loss over rows with smoothing or weights: z (m, k), labels (m,) or probabilities (m, k) ->
        (value, cache of the rows)."""
        n, k = z.shape
        s, divisor = self._target_weights(target, n, k, z.dtype)
        log_p = z - z.max(axis=1, keepdims=True)
        e = np.exp(log_p)
        total = e.sum(axis=1, keepdims=True)
        log_p -= np.log(total)
        value = float(-np.sum(s * log_p)) / divisor
        return value, (e / total, s, divisor)

    def _target_weights(self, target: np.ndarray, n: int, k: int, dtype):
        """(s (n, k), D): what each log-probability counts for, and the divisor of the sum (see the class)."""
        eps, w = self.label_smoothing, self.class_weights
        if w is not None:
            if len(w) != k:
                raise ValueError(f"SoftmaxCrossEntropy: class_weights has {len(w)} entries, one per class, "
                                 f"but the predictions {(n, k)} have {k} classes")
            w = w.astype(dtype, copy=False)
        if target.ndim == 2:  # probabilities
            s = target * (1 - eps) + eps / k
            return (s if w is None else s * w), n
        rows = np.arange(n)
        s = np.full((n, k), eps / k, dtype=dtype)
        s[rows, target] += 1 - eps
        if w is None:
            return s, n
        divisor = float(np.sum(w[target]))
        if divisor == 0:
            raise ValueError("SoftmaxCrossEntropy: every label in this batch has class weight 0, so the "
                             "weighted mean is 0 / 0")
        return s * w, divisor


def _weighted_backward(cache) -> np.ndarray:
    """d L / d logits over rows, (m, k), with smoothing or weights."""
    p, s, divisor = cache
    return (p * s.sum(axis=1, keepdims=True) - s) / divisor


def _plain_forward(z: np.ndarray, target: np.ndarray):
    """The plain loss (no smoothing, no weights), on z transposed, (k, n).

    The max and the sum over the k classes of each sample are then a few vector operations across the batch,
    not n short reductions (slow in NumPy).
    """
    n = len(z)
    rows = np.arange(n) if target.ndim == 1 else None
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
    return value, (e, total, target, rows)


def _plain_backward(cache) -> np.ndarray:
    """d L / d logits, (n, k), made in one pass from softmax(z) = e / total (a view of a (k, n) array)."""
    e, total, target, rows = cache
    n = e.shape[1]
    if rows is not None:
        d = np.divide(e, total * n)  # p / n, (k, n)
        d[target, rows] -= 1 / n
        return d.T
    return ((e / total * target.sum(axis=1) - target.T) / n).T
