"""Element-wise activations: ReLU, Sigmoid, Tanh (no parameters, any shape)."""

from __future__ import annotations

import attrs
import numpy as np


def _dtype(y, dy) -> np.dtype:
    """The dtype of dx: NumPy's for y and dy (looked up only when they differ)."""
    return dy.dtype if dy.dtype == y.dtype else np.result_type(y, dy)


class _Elementwise:
    """Shared plumbing: the output shape is the input shape; the cache is the output y.

    ``overwrite=True`` (given by a Sequence when the layer before made x and keeps no reference
    to it, see layers/protocol.py) writes y into x's buffer instead of a new array.
    """

    def output_shape(self, input_shape):
        return input_shape

    def __call__(self, x: np.ndarray, *, overwrite: bool = False) -> np.ndarray:
        return self.apply(x, out=x if overwrite else None)

    def forward(self, x: np.ndarray, *, overwrite: bool = False):
        y = self.apply(x, out=x if overwrite else None)
        return y, y

    def backward(self, y: np.ndarray, dy: np.ndarray, *, input_grad: bool = True):
        if dy.shape != y.shape:
            raise ValueError(f"{self!r}.backward: the output gradient has shape {dy.shape}, "
                             f"the output had {y.shape}")
        return (self.derivative(y, dy) if input_grad else None), self


@attrs.frozen
class ReLU(_Elementwise):
    """y = max(x, 0)."""

    def apply(self, x, out=None):
        return np.maximum(x, 0, out=out)

    def derivative(self, y, dy):
        """dx = dy where y > 0, else 0."""
        dx = (y > 0).astype(_dtype(y, dy))
        dx *= dy
        return dx


@attrs.frozen
class Sigmoid(_Elementwise):
    """y = 1 / (1 + exp(-x)), computed from exp(-|x|) so it never overflows."""

    def apply(self, x, out=None):
        e = np.exp(-np.abs(x))
        numerator = np.where(x >= 0, 1, e)  # read x before out (which may be x) is written
        e += 1
        return np.divide(numerator, e, out=out)

    def derivative(self, y, dy):
        """dx = dy * y * (1 - y)."""
        dx = np.subtract(1, y, dtype=_dtype(y, dy))
        dx *= y
        dx *= dy
        return dx


@attrs.frozen
class Tanh(_Elementwise):
    """y = tanh(x)."""

    def apply(self, x, out=None):
        return np.tanh(x, out=out)

    def derivative(self, y, dy):
        """dx = dy * (1 - y**2)."""
        dx = np.multiply(y, y, dtype=_dtype(y, dy))
        np.subtract(1, dx, out=dx)
        dx *= dy
        return dx
