"""Clipping by the global norm, as ``torch.nn.utils.clip_grad_norm_``: a whole-tree transform."""

from __future__ import annotations

import math
from typing import ClassVar

import attrs
import numpy as np

from lamina.optim import hyper
from lamina.optim.transform import TreeTransform


def squared_norm(g: np.ndarray) -> float:
    """Σ g², as a Python float: BLAS's dot in g's dtype, redone in float64 if float32 overflowed."""
    flat = g.reshape(-1)
    with np.errstate(over="ignore"):
        square = float(np.dot(flat, flat))
    if not math.isfinite(square) and flat.dtype != np.float64 and np.isfinite(flat).all():
        wide = flat.astype(np.float64)
        square = float(np.dot(wide, wide))
    return square


def global_norm(arrays) -> float:
    """√(Σ ||a||²) over all ``arrays``: the L2 norm of them all as one vector."""
    return math.sqrt(sum(squared_norm(a) for a in arrays))


@attrs.frozen(repr=False)
class ClipByGlobalNorm(TreeTransform):
    """g *= min(1, max_norm / (norm + 1e-6)), norm the global L2 norm of all the gradients it sees."""

    name: ClassVar[str] = "clip_by_global_norm"
    max_norm: float = attrs.field(validator=hyper.positive)

    def update(self, grads: list, params: list, step: int) -> list:
        coefficient = self.max_norm / (global_norm(grads) + 1e-6)
        if coefficient < 1:  # (torch multiplies by 1.0 otherwise, which changes nothing)
            for g in grads:
                g *= coefficient
        return grads


clip_by_global_norm = ClipByGlobalNorm
