"""BinaryCrossEntropy: sigmoid and binary cross-entropy fused, from logits, mean over all elements."""

from __future__ import annotations

import attrs
import numpy as np

from lamina.losses.settings import weights
from lamina.losses.targets import check_binary_target, check_pred


@attrs.frozen
class BinaryCrossEntropy:
    """L = -mean[pw t log sigmoid(z) + (1 - t) log(1 - sigmoid(z))] = mean[pw t softplus(-z) + (1 - t)
    softplus(z)].

    Logits z (n,) or (n, k), targets t of z's shape in [0, 1]; the mean is over all n k elements.
    softplus(x) = log(1 + e^x) = max(x, 0) + log1p(e^-|x|), exact for any z.
    ``pos_weight`` pw (a number, or one per output (k,)) weighs the positive term; None is 1.
    d L / d z = ((1 - t) sigmoid(z) - pw t sigmoid(-z)) / N, which is (sigmoid(z) - t) / N for pw = 1.
    As torch.nn.functional.binary_cross_entropy_with_logits(z, t, pos_weight=pw).
    """

    pos_weight: float | np.ndarray | None = weights("pos_weight", number_ok=True, some_positive=False)

    def forward(self, pred, target):
        """(logits (n,) or (n, k), targets of their shape) -> (value as a Python float, cache)."""
        z = check_pred(pred, "BinaryCrossEntropy", vector_ok=True)
        t = check_binary_target(target, z, "BinaryCrossEntropy")
        pw = self._pos_weight(z)
        e = np.exp(-np.abs(z))  # in (0, 1]: never overflows
        log1p_e = np.log1p(e)
        softplus_z = np.maximum(z, 0) + log1p_e  # -log(1 - sigmoid(z))
        softplus_minus_z = np.maximum(-z, 0) + log1p_e  # -log sigmoid(z)
        value = float(np.mean(pw * t * softplus_minus_z + (1 - t) * softplus_z))
        return value, (z, t, e, pw)

    def backward(self, cache) -> np.ndarray:
        """d L / d logits, the prediction's shape."""
        z, t, e, pw = cache
        sigmoid_z = np.where(z >= 0, 1, e) / (1 + e)
        # 1 - sigmoid(z), exact where sigmoid(z) rounds to 1
        sigmoid_minus_z = np.where(z >= 0, e, 1) / (1 + e)
        return ((1 - t) * sigmoid_z - pw * t * sigmoid_minus_z) / z.size

    def _pos_weight(self, z: np.ndarray):
        """pos_weight in z's dtype, checked against the number of outputs: a number (1.0 for None) or (k,)."""
        pw = self.pos_weight
        if pw is None:
            return 1.0
        if isinstance(pw, float):
            return pw
        outputs = z.shape[1] if z.ndim == 2 else 1
        if len(pw) != outputs:
            raise ValueError(f"BinaryCrossEntropy: pos_weight has {len(pw)} entries, one per output, but the "
                             f"predictions {z.shape} have {outputs} output{'s' if outputs > 1 else ''}")
        return pw.astype(z.dtype, copy=False)
