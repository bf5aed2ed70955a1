"""Dense: the affine layer y = x @ weight + bias."""

from __future__ import annotations

import attrs
import numpy as np

from lamina.layers.errors import ShapeError
from lamina.layers.layer import Layer
from lamina.layers.mode import Mode
from lamina.layers.records.registry import register
from lamina.layers.records.parameter import param

INITS = ("he", "glorot")


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
    """y = x @ weight + bias, with weight (n_in, n_out) and bias (n_out,); x is (n, n_in)."""

    weight: np.ndarray = param()
    bias: np.ndarray = param(validator=_check_bias)

    @classmethod
    def init(cls, rng: np.random.Generator, n_in: int, n_out: int, dtype=np.float32, init: str = "he") -> "Dense":
        """A fresh layer: weight ~ N(0, 2/n_in) ("he") or N(0, 2/(n_in + n_out)) ("glorot"), bias 0."""
        if not isinstance(rng, np.random.Generator):
            raise TypeError(f"Dense.init needs a numpy.random.Generator first: Dense.init(rng, n_in, n_out), "
                            f"got {type(rng).__name__}")
        for name, size in (("n_in", n_in), ("n_out", n_out)):
            if not isinstance(size, (int, np.integer)) or isinstance(size, bool) or size < 1:
                raise ValueError(f"Dense.init: {name} must be a positive int, got {size!r}")
        if init not in INITS:
            raise ValueError(f"Dense.init: init must be one of {INITS}, got {init!r}")
        variance = 2.0 / n_in if init == "he" else 2.0 / (n_in + n_out)
        weight = rng.normal(0.0, np.sqrt(variance), size=(n_in, n_out)).astype(dtype)
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
        """(n_in,) -> (n_out,); any other input shape is a ShapeError."""
        if input_shape is not None and tuple(input_shape) != (self.n_in,):
            raise ShapeError(repr(self), (self.n_in,), tuple(input_shape))
        return (self.n_out,)

    def forward(self, x: np.ndarray, mode: Mode):
        """x (n, n_in) -> y (n, n_out); the cache is x."""
        if x.ndim != 2 or x.shape[1] != self.n_in:
            raise ShapeError(repr(self), (self.n_in,), str(x.shape))
        y = x @ self.weight
        y += self.bias
        return y, x

    def backward(self, x: np.ndarray, dy: np.ndarray, mode: Mode):
        """dy (n, n_out) -> dx (n, n_in) (None when the mode needs no input gradient), gradients as a Dense."""
        if dy.shape != (x.shape[0], self.n_out):
            raise ShapeError(f"{self!r}.backward", f"an output gradient of shape ({x.shape[0]}, {self.n_out})",
                             f"one of shape {dy.shape}")
        grads = Dense(weight=x.T @ dy, bias=dy.sum(axis=0))
        return (dy @ self.weight.T if mode.input_grad else None), grads
