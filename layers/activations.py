"""Element-wise activations: ReLU, Sigmoid, Tanh (no parameters, any shape)."""

from __future__ import annotations

import attrs
import numpy as np


class _Elementwise:
    """Shared plumbing: the output shape is the input shape; the cache is the output y."""

    def output_shape(self, input_shape):
        return input_shape

    def __call__(self, x: np.ndarray) -> np.ndarray:
        return self.apply(x)

    def forward(self, x: np.ndarray):
        y = self.apply(x)
        return y, y

    def backward(self, y: np.ndarray, dy: np.ndarray, *, input_grad: bool = True):
        if dy.shape != y.shape:
            raise ValueError(f"{self!r}.backward: the output gradient has shape {dy.shape}, "
                             f"the output had {y.shape}")
        return (self.derivative(y, dy) if input_grad else None), self


@attrs.frozen
class ReLU(_Elementwise):
    """y = max(x, 0)."""

    def apply(self, x):
        return np.maximum(x, 0)

    def forward(self, x: np.ndarray):
        y = np.maximum(x, 0)
        return y, y

    def derivative(self, y, dy):
        """dx = dy where y > 0, else 0."""
        return dy * (y > 0)


@attrs.frozen
class Sigmoid(_Elementwise):
    """y = 1 / (1 + exp(-x)), computed from exp(-|x|) so it never overflows."""

    def apply(self, x):
        e = np.exp(-np.abs(x))
        return np.where(x >= 0, 1, e) / (1 + e)

    def derivative(self, y, dy):
        """dx = dy * y * (1 - y)."""
        return dy * y * (1 - y)


@attrs.frozen
class Tanh(_Elementwise):
    """y = tanh(x)."""

    def apply(self, x):
        return np.tanh(x)

    def derivative(self, y, dy):
        """dx = dy * (1 - y**2)."""
        return dy * (1 - y * y)
