"""The maths helpers shared by the layers, the losses and generation: one stable softmax, one ReLU."""

from __future__ import annotations

import functools

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


def relu(x: np.ndarray, out: np.ndarray | None = None) -> np.ndarray:
    """max(x, 0) element by element, in x's dtype (NaN stays NaN, -0.0 becomes 0.0), into ``out`` if given.

    The 0 is a row of x's last axis when that axis is long: np.maximum runs its vectorised loop on two
    arrays, not on an array and a scalar (the same bits either way).
    """
    n = x.shape[-1] if x.ndim else 0
    zero = _zero_row(n, x.dtype) if n >= 16 else x.dtype.type(0)
    return np.maximum(x, zero, out=out)


@functools.lru_cache(maxsize=32)
def _zero_row(n: int, dtype: np.dtype) -> np.ndarray:
    z = np.zeros(n, dtype)
    z.setflags(write=False)
    return z
