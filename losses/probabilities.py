"""softmax and sigmoid: probabilities from logits."""

from __future__ import annotations

import numpy as np

from lamina.layers.maths import softmax as stable_softmax


def softmax(logits: np.ndarray, axis: int = -1) -> np.ndarray:
    """exp(z - max z) / sum exp(z - max z) along ``axis``: (n, ..., k) -> the same, summing to 1 along it."""
    logits = np.asarray(logits)
    return stable_softmax(logits if logits.dtype.kind == "f" else logits.astype(np.float64), axis)


def sigmoid(logits: np.ndarray) -> np.ndarray:
    """1 / (1 + exp(-z)), element-wise, any shape: exp(z) / (1 + exp(z)) for z < 0, so exp never overflows."""
    z = np.asarray(logits)
    e = np.exp(-np.abs(z))  # in (0, 1]
    return np.where(z >= 0, 1, e) / (1 + e)
