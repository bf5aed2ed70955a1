"""Dense: the affine layer y = x @ weight + bias."""

from __future__ import annotations

import attrs
import numpy as np

from lamina.layers.errors import ShapeError
from lamina.layers.parameter import buffer_of, frozen_view, param

INITS = ("he", "glorot")


def _check_bias(dense: "Dense", attribute, bias: np.ndarray) -> None:
    weight = dense.weight
    if weight.ndim != 2 or bias.shape != weight.shape[1:]:
        if weight.ndim != 2:
            raise ShapeError("Dense", "a 2-D weight (n_in, n_out)", f"weight of shape {weight.shape}")
        raise ShapeError("Dense", f"bias of shape ({weight.shape[1]},) to match weight {weight.shape}",
                         f"bias of shape {bias.shape}")
    if bias.dtype is not weight.dtype and bias.dtype != weight.dtype:
        raise TypeError(f"Dense weight and bias must share a dtype, got {weight.dtype} and {bias.dtype}")


@attrs.frozen(repr=False)
class Dense:
    """y = x @ weight + bias, with weight (n_in, n_out) and bias (n_out,); x is (n, n_in)."""

    weight: np.ndarray = param()
    bias: np.ndarray = param(validator=_check_bias)
    fresh_outputs = True  # y and dx are new arrays it keeps no reference to (layers/protocol.py)

    @classmethod
    def init(cls, rng: np.random.Generator, n_in: int, n_out: int, dtype=np.float32, init: str = "he") -> "Dense":
        """A fresh layer: weight ~ N(0, 2/n_in) ("he") or N(0, 2/(n_in + n_out)) ("glorot"), bias 0."""
        if not isinstance(rng, np.random.Generator):
            raise TypeError(f"Dense.init needs a numpy.random.Generator, got {type(rng).__name__}")
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

    def _check_input(self, x: np.ndarray) -> None:
        if type(x) is not np.ndarray:
            raise TypeError(f"{self!r} needs a NumPy array (n, {self.n_in}), got {type(x).__name__}")
        if x.ndim != 2 or x.shape[1] != self.weight.shape[0]:
            raise ShapeError(repr(self), (self.n_in,), str(x.shape))

    def __call__(self, x: np.ndarray) -> np.ndarray:
        """Inference: (n, n_in) -> (n, n_out)."""
        self._check_input(x)
        y = x @ self.weight
        y += self.bias
        return y

    def forward(self, x: np.ndarray):
        """(n, n_in) -> y (n, n_out), cache x."""
        if type(x) is not np.ndarray or x.ndim != 2 or x.shape[1] != self.weight.shape[0]:
            self._check_input(x)
        y = x @ self.weight
        y += self.bias
        return y, x

    def backward(self, x: np.ndarray, dy: np.ndarray, *, input_grad: bool = True, out: "Dense | None" = None):
        """dy (n, n_out) -> dx (n, n_in) (None without ``input_grad``), gradients as a Dense.

        ``out`` is a dead gradient record of this layer's shape that the caller donates (as
        ``fit`` does with the previous step's): the gradients are written into its buffers and
        ``out`` itself is returned.
        """
        if dy.shape != (x.shape[0], self.weight.shape[1]):
            raise ShapeError(f"{self!r}.backward", f"an output gradient of shape ({x.shape[0]}, {self.n_out})",
                             f"one of shape {dy.shape}")
        if out is not None:
            weight, bias = buffer_of(out.weight), buffer_of(out.bias)
            if (weight is not None and bias is not None and weight.shape == self.weight.shape
                    and weight.dtype == self.weight.dtype and bias.dtype == self.bias.dtype):
                np.matmul(x.T, dy, out=weight)
                np.add.reduce(dy, axis=0, out=bias)  # dy.sum(axis=0)
                return (dy @ self.weight.T if input_grad else None), out  # out now holds these gradients
        grads = Dense(weight=frozen_view(x.T @ dy), bias=frozen_view(np.add.reduce(dy, axis=0)))
        return (dy @ self.weight.T if input_grad else None), grads
