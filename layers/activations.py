"""Element-wise activations: ReLU, LeakyReLU, Sigmoid, Tanh, GELU (tanh form), Identity; no parameters, any
shape."""

from __future__ import annotations

import math

import attrs
import numpy as np

from lamina.layers import split_rows
from lamina.layers.layer import Layer
from lamina.layers.maths import relu
from lamina.layers.mode import Mode
from lamina.layers.records.registry import register
from lamina.layers.settings import finite_number, validator


def _dtype(y, dy) -> np.dtype:
    """The dtype of dx: NumPy's for y and dy (looked up only when they differ)."""
    return dy.dtype if dy.dtype == y.dtype else np.result_type(y, dy)


class _Elementwise(Layer):
    """Shared plumbing: y = apply(x) element by element, the output shape is the input shape,
    and dx = derivative(cache, dy), where the cache is what ``apply`` returns beside y."""

    __slots__ = ()

    def output_shape(self, input_shape):
        return input_shape

    def forward(self, x: np.ndarray, mode: Mode):
        return self.apply(x)

    def backward(self, cache, dy: np.ndarray, mode: Mode):
        if dy.shape != self.shape_of(cache):
            raise ValueError(f"{self!r}.backward: the output gradient has shape {dy.shape}, "
                             f"the output had {self.shape_of(cache)}")
        return (self.derivative(cache, dy) if mode.input_grad else None), self

    @staticmethod
    def shape_of(cache):
        return cache.shape


@register
@attrs.frozen
class ReLU(_Elementwise):
    """y = max(x, 0)."""

    def apply(self, x):
        y = relu(x)
        return y, y

    def derivative(self, y, dy):
        """dx = dy where y > 0, else 0."""
        dx = (y > 0).astype(_dtype(y, dy))
        dx *= dy
        return dx


@register
@attrs.frozen
class LeakyReLU(_Elementwise):
    """y = x where x > 0, else negative_slope * x (``torch.nn.LeakyReLU``)."""

    negative_slope: float = attrs.field(default=0.01, validator=validator(finite_number))

    def apply(self, x):
        return np.where(x > 0, x, x * x.dtype.type(self.negative_slope)), x

    def derivative(self, x, dy):
        """dx = dy where x > 0, else negative_slope * dy."""
        return np.where(x > 0, dy, dy * dy.dtype.type(self.negative_slope)).astype(_dtype(x, dy), copy=False)


@register
@attrs.frozen
class Sigmoid(_Elementwise):
    """y = 1 / (1 + exp(-x)), computed from exp(-|x|) so it never overflows."""

    def apply(self, x):
        e = np.exp(-np.abs(x))
        numerator = np.where(x >= 0, 1, e)
        e += 1
        y = np.divide(numerator, e, out=e)
        return y, y

    def derivative(self, y, dy):
        """dx = dy * y * (1 - y)."""
        dx = np.subtract(1, y, dtype=_dtype(y, dy))
        dx *= y
        dx *= dy
        return dx


@register
@attrs.frozen
class Tanh(_Elementwise):
    """y = tanh(x)."""

    def apply(self, x):
        y = np.tanh(x)
        return y, y

    def derivative(self, y, dy):
        """dx = dy * (1 - y**2)."""
        dx = np.multiply(y, y, dtype=_dtype(y, dy))
        np.subtract(1, dx, out=dx)
        dx *= dy
        return dx


SQRT_2_OVER_PI = math.sqrt(2 / math.pi)
GELU_CUBIC = 0.044715


@register
@attrs.frozen
class GELU(_Elementwise):
    """y = x/2 (1 + tanh(u)), u = sqrt(2/pi) (x + 0.044715 x^3): the tanh form,
    ``torch.nn.functional.gelu(x, approximate="tanh")`` (torch's own default is the erf form)."""

    def __repr__(self) -> str:
        return 'GELU(approximate="tanh")'

    def apply(self, x):
        y = np.empty_like(x)
        half = np.empty_like(x)     # (1 + t) / 2, t = tanh(u): y = x (1 + t) / 2

        def rows(a, b):             # in place on the parts of y and half: no x ** 3, no float64 scalar
            xa, h = x[a:b], half[a:b]
            np.multiply(xa, xa, out=h)
            h *= SQRT_2_OVER_PI * GELU_CUBIC
            h += SQRT_2_OVER_PI
            h *= xa                 # u = sqrt(2/pi) (x + 0.044715 x^3)
            np.tanh(h, out=h)
            h += 1
            h *= 0.5
            np.multiply(xa, h, out=y[a:b])

        split_rows.run(rows, len(x), x.size)
        return y, (x, half)

    def derivative(self, cache, dy):
        """dx = dy (h + 2 sqrt(2/pi) x (1 + 3 * 0.044715 x^2) h (1 - h)), h = (1 + t) / 2 (so 1 - t^2 =
        4 h (1 - h))."""
        x, half = cache
        dx = np.empty(x.shape, _dtype(x, dy))

        def rows(a, b):
            xa, h, d = x[a:b], half[a:b], dx[a:b]
            np.multiply(xa, xa, out=d)
            d *= 6 * SQRT_2_OVER_PI * GELU_CUBIC
            d += 2 * SQRT_2_OVER_PI
            d *= xa                 # 2 du/dx x
            g = np.subtract(1, h)
            g *= h
            d *= g
            d += h
            d *= dy[a:b]

        split_rows.run(rows, len(x), x.size)
        return dx

    @staticmethod
    def shape_of(cache):
        return cache[0].shape


@register
@attrs.frozen
class Identity(_Elementwise):
    """y = x."""

    def apply(self, x):
        return x, x

    def derivative(self, x, dy):
        return dy
