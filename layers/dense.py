"""Dense: the affine layer y = x @ weight + bias."""

from __future__ import annotations

import attrs
import numpy as np

from lamina.layers.errors import ShapeError
from lamina.layers.initializers import check_rng, normal
from lamina.layers.layer import Layer
from lamina.layers.mode import Mode
from lamina.layers.records.registry import register
from lamina.layers.records.parameter import frozen_array, param
from lamina.layers.settings import positive_int

def _check_bias(dense: "Dense", attribute, bias: np.ndarray) -> None:
    weight = dense.weight
    if weight.ndim != 2:
        raise ShapeError("Dense", "a 2-D weight (n_in, n_out)", f"weight of shape {weight.shape}")
    if bias.shape != weight.shape[1:]:
        raise ShapeError("Dense", f"bias of shape ({weight.shape[1]},) to match weight {weight.shape}",
                         f"bias of shape {bias.shape}")
    if bias.dtype != weight.dtype:
        raise TypeError(f"Dense weight and bias must share a dtype, got {weight.dtype} and {bias.dtype}")


@register
@attrs.frozen(repr=False)
class Dense(Layer):
    """y = x @ weight + bias, with weight (n_in, n_out) and bias (n_out,); x is (n, ..., n_in)
    (any rank: the last axis, as torch.nn.Linear)."""

    weight: np.ndarray = param()
    bias: np.ndarray = param(validator=_check_bias)

    @classmethod
    def init(cls, rng: np.random.Generator, n_in: int, n_out: int, dtype=np.float32, init="he") -> "Dense":
        """A fresh layer: weight (n_in, n_out) drawn as ``init`` says ("he", "glorot" or a std), bias 0."""
        check_rng(rng, "Dense.init", "Dense.init(rng, n_in, n_out)")
        n_in, n_out = positive_int("Dense.init", "n_in", n_in), positive_int("Dense.init", "n_out", n_out)
        weight = normal(rng, (n_in, n_out), init, n_in, n_out, dtype, "Dense.init")
        return cls(weight=weight, bias=np.zeros(n_out, dtype=dtype))

    @property
    def n_in(self) -> int:
        return self.weight.shape[0]

    @property
    def n_out(self) -> int:
        return self.weight.shape[1]

    def __repr__(self) -> str:
        return f"Dense({self.n_in} -> {self.n_out}, {self.weight.dtype})"

    def output_shape(self, input_shape):
        """(..., n_in) -> (..., n_out); another width on the last axis is a ShapeError. An unknown input
        (None) is taken as flat features, as in an MLP: (n_out,)."""
        if input_shape is None:
            return (self.n_out,)
        if len(input_shape) == 0 or input_shape[-1] not in (None, self.n_in):
            self._refuse(tuple(input_shape), flat=len(input_shape) == 1)
        return (*input_shape[:-1], self.n_out)

    def _refuse(self, received, flat: bool):
        """The ShapeError for an input whose last axis is not n_in (``received``: a shape or text)."""
        raise ShapeError(repr(self), (self.n_in,) if flat else f"input (n, ..., {self.n_in})", received)

    def forward(self, x: np.ndarray, mode: Mode):
        """x (n, ..., n_in) -> y (n, ..., n_out), as torch.nn.Linear; the cache is x."""
        weight = self.weight
        n_in = weight.shape[0]
        if x.ndim == 2 and x.shape[1] == n_in:   # (n, n_in): no reshapes
            y = x @ weight
            y += self.bias
            return y, x
        if x.ndim < 2 or x.shape[-1] != n_in:
            self._refuse(str(x.shape), flat=x.ndim <= 2)
        y = x.reshape(-1, n_in) @ weight
        y += self.bias
        return y.reshape(*x.shape[:-1], weight.shape[1]), x

    def backward(self, x: np.ndarray, dy: np.ndarray, mode: Mode):
        """dy (n, ..., n_out) -> dx (n, ..., n_in) (None when the mode needs no input gradient), gradients."""
        weight = self.weight
        n_in, n_out = weight.shape
        if dy.shape != (*x.shape[:-1], n_out):
            raise ShapeError(f"{self!r}.backward", f"an output gradient of shape {(*x.shape[:-1], n_out)}",
                             f"one of shape {dy.shape}")
        shape = x.shape
        if x.ndim != 2:
            x, dy = x.reshape(-1, n_in), dy.reshape(-1, n_out)
        grads = _gradients(x.T @ dy, np.add.reduce(dy, axis=0))
        if not mode.input_grad:
            return None, grads
        dx = dy @ weight.T
        return (dx if len(shape) == 2 else dx.reshape(shape)), grads


def _gradients(weight: np.ndarray, bias: np.ndarray) -> Dense:
    """The record of backward's gradients, without the constructor's checks: backward made them fit (the
    arrays are taken as the constructor takes them)."""
    if weight.dtype != bias.dtype:
        return Dense(weight=weight, bias=bias)   # (which says what is wrong)
    grads = object.__new__(Dense)
    object.__setattr__(grads, "weight", frozen_array(weight))
    object.__setattr__(grads, "bias", frozen_array(bias))
    return grads
