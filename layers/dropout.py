"""Dropout: inverted dropout, as ``torch.nn.Dropout(p=rate)``."""

from __future__ import annotations

import attrs
import numpy as np

from lamina.layers.errors import LayerError
from lamina.layers.layer import Layer
from lamina.layers.mode import Mode
from lamina.layers.records.registry import register
from lamina.layers.settings import converter, fraction_right_open


@register
@attrs.frozen
class Dropout(Layer):
    """Training: y = x * keep / (1 - rate), keep ~ Bernoulli(1 - rate) per element; inference: y = x. Any
    shape."""

    rate: float = attrs.field(default=0.5, converter=converter(fraction_right_open, "Dropout", "rate"))

    def output_shape(self, input_shape):
        return input_shape

    def forward(self, x: np.ndarray, mode: Mode):
        """x (n, ...) -> y (n, ...); the cache is the scaled mask keep / (1 - rate), or None where y = x."""
        if not mode.train or self.rate == 0:
            return x, None
        if mode.rng is None:
            raise LayerError(repr(self), "training draws a random mask, but the mode has no rng: pass "
                                         "layers.Mode(train=True, rng=np.random.default_rng(seed))")
        # what rng.random draws
        dtype = x.dtype if x.dtype in (np.float32, np.float64) else np.dtype(np.float64)
        keep = mode.rng.random(x.shape, dtype=dtype) >= self.rate
        mask = keep * dtype.type(1 / (1 - self.rate))
        return x * mask, mask

    def backward(self, mask, dy: np.ndarray, mode: Mode):
        """dy -> dx = dy * mask (dy where y = x); Dropout has no parameters, so its gradients are itself."""
        if not mode.input_grad:
            return None, self
        return (dy if mask is None else dy * mask), self
