"""Pooling of sequences (n, t, c): MaxPool1D, AvgPool1D (windows of ``size`` at steps of ``stride``, no
padding), GlobalAvgPool1D and GlobalMaxPool1D (n, t, c) -> (n, c).

Each windowed pool works as one pass per window offset p: ``x[:, p::stride]`` cut to the output's length is an
(n, t', c) view, so the forward pass is ``size`` element-wise operations and the backward pass adds dy back
through the same views, as the 2-D pools do.
"""

from __future__ import annotations

import attrs
import numpy as np

from lamina.layers.errors import ShapeError, format_shape
from lamina.layers.layer import Layer
from lamina.layers.mode import Mode
from lamina.layers.records.registry import register
from lamina.layers.settings import converter, positive_int


def sequence_shape(layer, shape, min_length: int = 1) -> tuple:
    """Check a per-sample shape is a sequence (t, c) with t >= min_length; a ShapeError if not."""
    shape = tuple(shape)
    if len(shape) != 2 or (shape[0] is not None and shape[0] < min_length):
        raise ShapeError(repr(layer), f"sequences (n, t, c) with t >= {min_length}", format_shape(shape))
    return shape


def _gradient_shape(layer, expected: tuple, dy: np.ndarray) -> None:
    if dy.shape != expected:
        raise ShapeError(f"{layer!r}.backward", f"an output gradient of shape {expected}",
                         f"one of shape {dy.shape}")


class _Pool1D(Layer):
    """Shared plumbing: the window, the output length and its checks, and the views per window offset."""

    __slots__ = ()

    @property
    def step(self) -> int:
        """The stride, which defaults to the window's size."""
        return self.size if self.stride is None else self.stride

    def __repr__(self) -> str:
        stride = "" if self.step == self.size else f", stride {self.step}"
        return f"{type(self).__name__}({self.size}{stride})"

    def output_shape(self, input_shape):
        """(t, c) -> (t', c) with t' = floor((t - size) / stride) + 1; ShapeError if the window is larger."""
        if input_shape is None:
            return None
        t, c = sequence_shape(self, input_shape, self.size)
        return (None if t is None else (t - self.size) // self.step + 1, c)

    def _views(self, x: np.ndarray, length: int) -> list:
        """(n, t', c) views of x, one per window offset."""
        return [x[:, p:p + (length - 1) * self.step + 1:self.step] for p in range(self.size)]

    def _length(self, x: np.ndarray) -> int:
        if x.ndim != 3 or x.shape[1] < self.size:
            sequence_shape(self, x.shape[1:], self.size)
        return (x.shape[1] - self.size) // self.step + 1


@register
@attrs.frozen(repr=False)
class MaxPool1D(_Pool1D):
    """y[b, i, c] = max of x[b, i*s:i*s+size, c]; the gradient to each window's first maximum (torch's)."""

    size: int = attrs.field(default=2, converter=converter(positive_int, "MaxPool1D", "size"))
    stride: int | None = attrs.field(
        default=None, converter=converter(positive_int, "MaxPool1D", "stride", allow_none=True))

    def forward(self, x: np.ndarray, mode: Mode):
        """x (n, t, c) -> y (n, t', c); the cache is (x, y)."""
        views = self._views(x, self._length(x))
        y = views[0].copy()
        for view in views[1:]:
            np.maximum(y, view, out=y)
        return y, (x, y)

    def backward(self, cache, dy: np.ndarray, mode: Mode):
        """dy (n, t', c) -> dx (n, t, c): dy at each window's first maximum, overlapping windows adding up."""
        x, y = cache
        _gradient_shape(self, y.shape, dy)
        if not mode.input_grad:
            return None, self
        dx = np.zeros(x.shape, np.result_type(x.dtype, dy.dtype))
        unclaimed = np.ones(y.shape, bool)   # windows whose maximum has not been found yet
        for view, target in zip(self._views(x, y.shape[1]), self._views(dx, y.shape[1])):
            first = (view == y) & unclaimed
            target += dy * first
            unclaimed &= ~first
        return dx, self


@register
@attrs.frozen(repr=False)
class AvgPool1D(_Pool1D):
    """y[b, i, c] = mean of x[b, i*s:i*s+size, c] (no padding, as torch's default)."""

    size: int = attrs.field(default=2, converter=converter(positive_int, "AvgPool1D", "size"))
    stride: int | None = attrs.field(
        default=None, converter=converter(positive_int, "AvgPool1D", "stride", allow_none=True))

    def forward(self, x: np.ndarray, mode: Mode):
        """x (n, t, c) -> y (n, t', c); the cache is x's shape and y's."""
        views = self._views(x, self._length(x))
        y = views[0].astype(x.dtype if x.dtype.kind == "f" else np.float64)
        for view in views[1:]:
            y += view
        y *= y.dtype.type(1 / self.size)
        return y, (x.shape, y.shape)

    def backward(self, cache, dy: np.ndarray, mode: Mode):
        """dy (n, t', c) -> dx (n, t, c): dy / size to each step of its window, overlaps adding up."""
        x_shape, y_shape = cache
        _gradient_shape(self, y_shape, dy)
        if not mode.input_grad:
            return None, self
        share = dy * dy.dtype.type(1 / self.size)
        dx = np.zeros(x_shape, dy.dtype)
        for target in self._views(dx, y_shape[1]):
            target += share
        return dx, self


class _GlobalPool1D(Layer):
    """Shared plumbing of the global pools: (n, t, c) -> (n, c)."""

    __slots__ = ()

    def output_shape(self, input_shape):
        """(t, c) -> (c,)."""
        return None if input_shape is None else sequence_shape(self, input_shape)[1:]

    def _check(self, x: np.ndarray) -> None:
        if x.ndim != 3 or x.shape[1] == 0:
            sequence_shape(self, x.shape[1:])


@register
@attrs.frozen
class GlobalAvgPool1D(_GlobalPool1D):
    """y[b, c] = mean over t of x[b, t, c]: (n, t, c) -> (n, c)."""

    def forward(self, x: np.ndarray, mode: Mode):
        """x (n, t, c) -> y (n, c); the cache is x's shape."""
        self._check(x)
        return x.mean(axis=1), x.shape

    def backward(self, x_shape, dy: np.ndarray, mode: Mode):
        """dy (n, c) -> dx (n, t, c) = dy / t at every step."""
        _gradient_shape(self, (x_shape[0], x_shape[2]), dy)
        if not mode.input_grad:
            return None, self
        dx = np.empty(x_shape, dy.dtype)
        dx[...] = (dy * dy.dtype.type(1 / x_shape[1]))[:, None, :]
        return dx, self


@register
@attrs.frozen
class GlobalMaxPool1D(_GlobalPool1D):
    """y[b, c] = max over t of x[b, t, c]: (n, t, c) -> (n, c); the gradient goes to the first maximum."""

    def forward(self, x: np.ndarray, mode: Mode):
        """x (n, t, c) -> y (n, c); the cache is (x's shape, the step of each maximum)."""
        self._check(x)
        at = x.argmax(axis=1)
        return np.take_along_axis(x, at[:, None, :], axis=1)[:, 0], (x.shape, at)

    def backward(self, cache, dy: np.ndarray, mode: Mode):
        """dy (n, c) -> dx (n, t, c): dy at the first maximum over t, zeros elsewhere."""
        x_shape, at = cache
        _gradient_shape(self, (x_shape[0], x_shape[2]), dy)
        if not mode.input_grad:
            return None, self
        dx = np.zeros(x_shape, dy.dtype)
        np.put_along_axis(dx, at[:, None, :], dy[:, None, :], axis=1)
        return dx, self
