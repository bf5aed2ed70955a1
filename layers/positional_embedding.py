"""PositionalEmbedding: a learned vector per position added to a sequence (GPT-2's ``wpe``)."""

from __future__ import annotations

import attrs
import numpy as np

from lamina.layers.errors import ShapeError, format_shape
from lamina.layers.initializers import check_rng, normal
from lamina.layers.layer import Layer
from lamina.layers.mode import Mode
from lamina.layers.records.parameter import param
from lamina.layers.records.registry import register
from lamina.layers.settings import positive_int


def _check_weight(layer, attribute, weight: np.ndarray) -> None:
    if weight.ndim != 2:
        raise ShapeError("PositionalEmbedding", "a 2-D weight (max_length, dim)",
                         f"weight of shape {weight.shape}")


@register
@attrs.frozen(repr=False)
class PositionalEmbedding(Layer):
    """y[b, t] = x[b, t] + weight[t]: (n, t, dim) -> (n, t, dim), t <= max_length."""

    weight: np.ndarray = param(validator=_check_weight)

    @classmethod
    def init(cls, rng: np.random.Generator, max_length: int, dim: int, dtype=np.float32,
             init=1.0) -> "PositionalEmbedding":
        """A fresh table (max_length, dim) ~ N(0, 1) as torch's nn.Embedding (``init``: another std: 0.02)."""
        check_rng(rng, "PositionalEmbedding.init", "PositionalEmbedding.init(rng, max_length, dim)")
        max_length = positive_int("PositionalEmbedding.init", "max_length", max_length)
        dim = positive_int("PositionalEmbedding.init", "dim", dim)
        return cls(weight=normal(rng, (max_length, dim), init, 1, dim, dtype, "PositionalEmbedding.init"))

    @property
    def max_length(self) -> int:
        return self.weight.shape[0]

    @property
    def dim(self) -> int:
        return self.weight.shape[1]

    def __repr__(self) -> str:
        return f"PositionalEmbedding({self.max_length} x {self.dim}, {self.weight.dtype})"

    def output_shape(self, input_shape):
        """(t, dim) -> (t, dim) for t <= max_length; anything else is a ShapeError."""
        if input_shape is None:
            return None
        shape = tuple(input_shape)
        if len(shape) != 2 or shape[1] not in (None, self.dim):
            raise ShapeError(repr(self), f"sequences (n, t, {self.dim})", format_shape(shape))
        if shape[0] is not None and shape[0] > self.max_length:
            raise ShapeError(repr(self), f"sequences of at most {self.max_length} steps "
                             f"(n, t <= {self.max_length}, {self.dim})", format_shape(shape))
        return shape

    def forward(self, x: np.ndarray, mode: Mode):
        """x (n, t, dim) -> x + weight[:t]; the cache is t."""
        if x.ndim != 3 or x.shape[2] != self.dim or x.shape[1] > self.max_length:
            self.output_shape(x.shape[1:])
        return x + self.weight[:x.shape[1]], x.shape[1]

    def backward(self, t: int, dy: np.ndarray, mode: Mode):
        """dy (n, t, dim) -> (dx = dy, gradients: dy summed over the batch in the first t rows)."""
        d_weight = np.zeros(self.weight.shape, dy.dtype)
        d_weight[:t] = dy.sum(axis=0)
        return (dy if mode.input_grad else None), PositionalEmbedding(weight=d_weight)
