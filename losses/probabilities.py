"""softmax and sigmoid: probabilities from logits."""

from __future__ import annotations

import numpy as np


def softmax(logits: np.ndarray, axis: int = -1) -> np.ndarray:
    """exp(z - max z) / sum exp(z - max z) along ``axis``: (n, k) -> (n, k) rows summing to 1."""
    logits = np.asarray(logits)
    e = np.exp(logits - logits.max(axis=axis, keepdims=True))
    return e / e.sum(axis=axis, keepdims=True)


def sigmoid(logits: np.ndarray) -> np.ndarray:
    """1 / (1 + exp(-z)), element-wise, any shape: exp(z) / (1 + exp(z)) for z < 0, so exp never overflows."""
    z = np.asarray(logits)
    e = np.exp(-np.abs(z))  # in (0, 1]
    return np.where(z >= 0, 1, e) / (1 + e)
