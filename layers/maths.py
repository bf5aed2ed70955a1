"""The maths helpers shared by the layers, the losses and generation: one stable softmax."""

from __future__ import annotations

import numpy as np


def softmax(z: np.ndarray, axis: int = -1) -> np.ndarray:
    """exp(z - max z) / sum exp(z - max z) along ``axis`` (stable: exp never overflows), in z's dtype."""
    return _normalized_exp(z - z.max(axis=axis, keepdims=True), axis)


def softmax_(z: np.ndarray, axis: int = -1) -> np.ndarray:
    """``softmax(z)`` written over z itself (the same bits), for an array the caller owns; returns z."""
    z -= z.max(axis=axis, keepdims=True)
    return _normalized_exp(z, axis)


def _normalized_exp(e: np.ndarray, axis: int) -> np.ndarray:
    np.exp(e, out=e)
    e /= e.sum(axis=axis, keepdims=True)
    return e
