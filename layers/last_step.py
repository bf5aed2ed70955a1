"""LastStep: the last step of a sequence, (n, t, f) -> (n, f), for sequence classification."""

from __future__ import annotations

import attrs
import numpy as np

from lamina.layers.errors import ShapeError, format_shape
from lamina.layers.layer import Layer
from lamina.layers.mode import Mode
from lamina.layers.records.registry import register


@register
@attrs.frozen
class LastStep(Layer):
    """y = x[:, -1]: (n, t, ...) -> (n, ...)."""

    def output_shape(self, input_shape):
        """(t, f) -> (f,); a shape without a time axis is a ShapeError."""
        if input_shape is None:
            return None
        if len(input_shape) < 2 or input_shape[0] == 0:
            raise ShapeError(repr(self), "sequences (n, t, f) with t >= 1", format_shape(tuple(input_shape)))
        return tuple(input_shape[1:])

    def forward(self, x: np.ndarray, mode: Mode):
        """x (n, t, f) -> y (n, f); the cache is x's shape and dtype."""
        if x.ndim < 3 or x.shape[1] == 0:
            self.output_shape(x.shape[1:])
        return x[:, -1], (x.shape, x.dtype)

    def backward(self, cache, dy: np.ndarray, mode: Mode):
        """dy (n, f) -> dx (n, t, f): dy at the last step, zeros before it."""
        shape, dtype = cache
        if dy.shape != (shape[0], *shape[2:]):
            raise ShapeError(f"{self!r}.backward", f"an output gradient of shape {(shape[0], *shape[2:])}",
                             f"one of shape {dy.shape}")
        if not mode.input_grad:
            return None, self
        dx = np.zeros(shape, np.result_type(dtype, dy.dtype))
        dx[:, -1] = dy
        return dx, self
