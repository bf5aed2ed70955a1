"""Flatten and Reshape: the same numbers under another per-sample shape (row-major, channels-last)."""

from __future__ import annotations

import math

import attrs
import numpy as np

from lamina.layers.errors import ShapeError, format_shape
from lamina.layers.layer import Layer
from lamina.layers.mode import Mode
from lamina.layers.records.registry import register
from lamina.layers.settings import is_int


@register
@attrs.frozen
class Flatten(Layer):
    """y = x.reshape(n, -1): (n, ...) -> (n, prod), row-major, so a channels-last image's channels vary
    fastest."""

    def output_shape(self, input_shape):
        if input_shape is None:
            return None
        return None if None in tuple(input_shape) else (math.prod(input_shape),)

    def forward(self, x: np.ndarray, mode: Mode):
        """x (n, ...) -> y (n, prod); the cache is x's shape."""
        if x.ndim < 2:
            raise ShapeError(repr(self), "a batch of samples (n, ...)", str(x.shape))
        return x.reshape(len(x), -1), x.shape

    def backward(self, x_shape, dy: np.ndarray, mode: Mode):
        """dy (n, prod) -> dx (n, ...), x's shape."""
        expected = (x_shape[0], math.prod(x_shape[1:]))
        if dy.shape != expected:
            raise ShapeError(f"{self!r}.backward", f"an output gradient of shape {expected}",
                             f"one of shape {dy.shape}")
        return (dy.reshape(x_shape) if mode.input_grad else None), self


def _shape(value) -> tuple:
    """A per-sample shape: a tuple of positive ints, one of which may be -1 (inferred)."""
    items = (value,) if isinstance(value, (int, np.integer)) else value
    try:
        items = tuple(items)
    except TypeError:
        raise ValueError(f"Reshape: shape must be a tuple of ints (per sample), got {value!r}") from None
    if (not items or not all(is_int(s) for s in items)
            or any(s == 0 or s < -1 for s in items) or items.count(-1) > 1):
        raise ValueError("Reshape: shape must be a non-empty tuple of positive ints (one may be -1, "
                         f"inferred), per sample without the batch axis, got {value!r}")
    return tuple(int(s) for s in items)


@register
@attrs.frozen
class Reshape(Layer):
    """y = x.reshape(n, *shape), per sample (row-major): e.g. ``Reshape((28, 28, 1))`` turns flat MNIST into
    images."""

    shape: tuple = attrs.field(converter=_shape)

    def __repr__(self) -> str:
        return f"Reshape({self.shape})"

    def output_shape(self, input_shape):
        """The per-sample ``shape`` (its -1 inferred); a ShapeError when the sizes differ."""
        if input_shape is None:
            return None if -1 in self.shape else self.shape
        input_shape = tuple(input_shape)
        if None in input_shape:
            return tuple(None if s == -1 else s for s in self.shape)
        return self._resolve(input_shape, format_shape(input_shape))

    def _resolve(self, input_shape: tuple, received: str) -> tuple:
        size = math.prod(input_shape)
        known = math.prod(s for s in self.shape if s != -1)
        if -1 in self.shape:
            if size % known:
                raise ShapeError(repr(self), f"samples whose size is a multiple of {known}", received)
            return tuple(size // known if s == -1 else s for s in self.shape)
        if size != known:
            raise ShapeError(repr(self), f"samples of {known} values (to reshape to "
                                         f"{format_shape(self.shape)})",
                             f"{received} ({size} values)")
        return self.shape

    def forward(self, x: np.ndarray, mode: Mode):
        """x (n, ...) -> y (n, *shape); the cache is x's shape."""
        if x.ndim < 1:
            raise ShapeError(repr(self), "a batch of samples (n, ...)", str(x.shape))
        shape = self._resolve(x.shape[1:], format_shape(x.shape[1:]))
        return x.reshape((len(x), *shape)), x.shape

    def backward(self, x_shape, dy: np.ndarray, mode: Mode):
        """dy (n, *shape) -> dx (n, ...), x's shape."""
        if dy.size != math.prod(x_shape) or len(dy) != x_shape[0]:
            raise ShapeError(f"{self!r}.backward", f"an output gradient of {math.prod(x_shape)} values",
                             f"one of shape {dy.shape}")
        return (dy.reshape(x_shape) if mode.input_grad else None), self
