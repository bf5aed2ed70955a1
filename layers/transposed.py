"""Transposed: a layer's weight applied transposed, y = x @ layer.weight.T (+ a bias of its own); ties weights
when the same layer record sits elsewhere in the model (a tied autoencoder, a language model's output
layer)."""

from __future__ import annotations

import attrs
import numpy as np

from lamina.layers.errors import ShapeError, format_shape
from lamina.layers.layer import Layer, describe
from lamina.layers.mode import Mode
from lamina.layers.records.parameter import param
from lamina.layers.records.registry import register
from lamina.layers.records.tree import map_parameters


def _weighted(instance, attribute, layer) -> None:
    weight = getattr(layer, "weight", None)
    if not isinstance(weight, np.ndarray) or weight.ndim != 2:
        raise TypeError(f"Transposed needs a layer with a 2-D weight (a Dense, an Embedding), got "
                        f"{describe(layer) if attrs.has(type(layer)) else type(layer).__name__}")


@register
@attrs.frozen(repr=False)
class Transposed(Layer):
    """y = x @ layer.weight.T (+ bias): with weight (a, b), (n, ..., b) -> (n, ..., a); the layer's bias is
    not used."""

    layer: object = attrs.field(validator=_weighted)
    bias: np.ndarray | None = param(default=None, optional=True)

    @classmethod
    def init(cls, layer, bias: bool = False) -> "Transposed":
        """The layer transposed, with a bias of zeros (weight.shape[0],) of its own when ``bias``."""
        return cls(layer, np.zeros(layer.weight.shape[0], layer.weight.dtype) if bias else None)

    def __attrs_post_init__(self):
        if self.bias is not None and (self.bias.shape != self.layer.weight.shape[:1]
                                      or self.bias.dtype != self.layer.weight.dtype):
            weight = self.layer.weight
            raise ShapeError(self.describe(), f"a bias {weight.dtype}{weight.shape[:1]}",
                             f"{self.bias.dtype}{self.bias.shape}")

    def describe(self) -> str:
        a, b = self.layer.weight.shape
        return f"Transposed({describe(self.layer)}: {b} -> {a}{'' if self.bias is not None else ', no bias'})"

    def __repr__(self) -> str:
        return self.describe()

    def output_shape(self, input_shape):
        """(..., b) -> (..., a)."""
        if input_shape is None:
            return None
        a, b = self.layer.weight.shape
        if len(input_shape) == 0 or input_shape[-1] not in (None, b):
            raise ShapeError(self.describe(), f"input {format_shape((*input_shape[:-1], b))}",
                             format_shape(input_shape))
        return (*input_shape[:-1], a)

    def forward(self, x, mode: Mode):
        """x (n, ..., b) -> y (n, ..., a); the cache is x."""
        weight = self.layer.weight
        if x.ndim < 2 or x.shape[-1] != weight.shape[1]:
            self.output_shape(x.shape[1:])
        y = x @ weight.T
        return (y if self.bias is None else y + self.bias), x

    def backward(self, x, dy, mode: Mode):
        """dy (n, ..., a) -> (dx (n, ..., b), gradients: the layer's weight gets dy^T x, its other params
        zero)."""
        weight = self.layer.weight
        flat_x, flat_dy = x.reshape(-1, x.shape[-1]), dy.reshape(-1, dy.shape[-1])
        d_weight = flat_dy.T @ flat_x
        inner = attrs.evolve(map_parameters(np.zeros_like, self.layer), weight=d_weight)
        d_bias = None if self.bias is None else flat_dy.sum(axis=0)
        dx = dy @ weight if mode.input_grad else None
        return dx, Transposed(inner, d_bias)
