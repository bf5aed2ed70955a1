"""Conv1D: a 1-D convolution (cross-correlation, as torch's) of sequences (n, t, c_in), by im2col.

With ``cols`` the (n*t', kernel_size*c_in) matrix of every window of the padded input (step i's row holds
``x_padded[b, i*stride + p*dilation, c]`` laid out (p, c)) and ``W`` the weight as (kernel_size*c_in, c_out):

    y = cols @ W + bias        dW = cols.T @ dy        dbias = sum(dy)        dx = col2im(dy @ W.T)
"""

from __future__ import annotations

import attrs
import numpy as np
from numpy.lib.stride_tricks import as_strided

from lamina.layers.errors import ShapeError, format_shape
from lamina.layers.initializers import check_rng, normal
from lamina.layers.layer import Layer
from lamina.layers.mode import Mode
from lamina.layers.pooling1d import sequence_shape
from lamina.layers.records.parameter import param
from lamina.layers.records.registry import register
from lamina.layers.settings import converter, is_int, positive_int, refuse

PADDINGS = ("valid", "same", "causal")


def _padding(value):
    """An int >= 0 (both ends), or "valid" (kept as 0), "same" or "causal"."""
    if isinstance(value, str) and value in PADDINGS:
        return 0 if value == "valid" else value
    if not (is_int(value) and value >= 0):
        refuse("Conv1D", "padding", 'an int >= 0, "valid", "same" or "causal"', value)
    return int(value)


def _check(conv: "Conv1D", attribute, value) -> None:
    weight, bias = conv.weight, conv.bias
    if weight.ndim != 3:
        raise ValueError(f"Conv1D: the weight must be 3-D (kernel_size, in_channels, out_channels), got "
                         f"shape {weight.shape}")
    if bias.shape != weight.shape[2:]:
        raise ShapeError("Conv1D", f"bias of shape ({weight.shape[2]},) to match weight {weight.shape}",
                         f"bias of shape {bias.shape}")
    if bias.dtype != weight.dtype:
        raise TypeError(f"Conv1D weight and bias must share a dtype, got {weight.dtype} and {bias.dtype}")
    if isinstance(conv.padding, str) and conv.stride != 1:
        raise ValueError(f'Conv1D: padding="{conv.padding}" needs stride 1, got stride {conv.stride}')


@register
@attrs.frozen(repr=False)
class Conv1D(Layer):
    """y[b, i] = sum over (p, c) of x_padded[b, i*stride + p*dilation, c] * weight[p, c] + bias:
    (n, t, c_in) -> (n, t', c_out)."""

    weight: np.ndarray = param()
    bias: np.ndarray = param()
    stride: int = attrs.field(default=1, converter=converter(positive_int, "Conv1D", "stride"))
    padding: object = attrs.field(default=0, converter=_padding)
    dilation: int = attrs.field(default=1, converter=converter(positive_int, "Conv1D", "dilation"),
                                validator=_check)

    @classmethod
    def init(cls, rng: np.random.Generator, in_channels: int, out_channels: int, kernel_size: int, *,
             stride=1, padding=0, dilation=1, dtype=np.float32, init="he") -> "Conv1D":
        """A fresh layer: weight (kernel_size, in_channels, out_channels) drawn as ``init`` says, bias 0."""
        check_rng(rng, "Conv1D.init", "Conv1D.init(rng, in_channels, out_channels, kernel_size)")
        c_in = positive_int("Conv1D.init", "in_channels", in_channels)
        c_out = positive_int("Conv1D.init", "out_channels", out_channels)
        k = positive_int("Conv1D.init", "kernel_size", kernel_size)
        weight = normal(rng, (k, c_in, c_out), init, k * c_in, k * c_out, dtype, "Conv1D.init")
        return cls(weight=weight, bias=np.zeros(c_out, dtype), stride=stride, padding=padding,
                   dilation=dilation)

    @property
    def kernel_size(self) -> int:
        return self.weight.shape[0]

    @property
    def in_channels(self) -> int:
        return self.weight.shape[1]

    @property
    def out_channels(self) -> int:
        return self.weight.shape[2]

    @property
    def pads(self) -> tuple[int, int]:
        """Zero steps added (start, end): "same" puts an even kernel's extra one at the end, "causal" all
        at the start."""
        span = (self.kernel_size - 1) * self.dilation
        if self.padding == "same":
            return span // 2, span - span // 2
        if self.padding == "causal":
            return span, 0
        return self.padding, self.padding

    def __repr__(self) -> str:
        parts = [f"{self.in_channels} -> {self.out_channels}", f"kernel {self.kernel_size}"]
        for name, default in (("stride", 1), ("padding", 0), ("dilation", 1)):
            if getattr(self, name) != default:
                parts.append(f"{name} {getattr(self, name)}")
        return f"Conv1D({', '.join(parts + [str(self.weight.dtype)])})"

    def output_shape(self, input_shape):
        """(t, c_in) -> (t', c_out), t' = floor((t + pads - dilation*(kernel_size - 1) - 1) / stride) + 1."""
        if input_shape is None:
            return (None, self.out_channels)
        t, c = sequence_shape(self, input_shape)
        span = (self.kernel_size - 1) * self.dilation + 1
        if c not in (None, self.in_channels) or (t is not None and t + sum(self.pads) < span):
            raise ShapeError(repr(self), f"sequences (n, t, {self.in_channels}) of at least {span} steps "
                             f"after padding ({sum(self.pads)} steps)", format_shape(tuple(input_shape)))
        return (None if t is None else (t + sum(self.pads) - span) // self.stride + 1, self.out_channels)

    def forward(self, x: np.ndarray, mode: Mode):
        """x (n, t, c_in) -> y (n, t', c_out); the cache is (im2col of the padded x, x's shape)."""
        if x.ndim != 3:
            sequence_shape(self, x.shape[1:])
        self.output_shape(x.shape[1:])
        start, end = self.pads
        xp = np.pad(x, ((0, 0), (start, end), (0, 0))) if start or end else x
        n, tp, c = xp.shape
        length = (tp - (self.kernel_size - 1) * self.dilation - 1) // self.stride + 1
        bn, bt, bc = xp.strides
        windows = as_strided(xp, (n, length, self.kernel_size, c),
                             (bn, bt * self.stride, bt * self.dilation, bc), writeable=False)
        cols = windows.reshape(n * length, self.kernel_size * c)   # a copy: im2col
        y = cols @ self.weight.reshape(-1, self.out_channels)
        y += self.bias
        return y.reshape(n, length, self.out_channels), (cols, x.shape)

    def backward(self, cache, dy: np.ndarray, mode: Mode):
        """dy (n, t', c_out) -> dx (n, t, c_in) (None when the mode needs no input gradient), gradients."""
        cols, x_shape = cache
        n, t, c = x_shape
        length = len(cols) // n
        expected = (n, length, self.out_channels)
        if dy.shape != expected:
            raise ShapeError(f"{self!r}.backward", f"an output gradient of shape {expected}",
                             f"one of shape {dy.shape}")
        dy = dy.reshape(-1, self.out_channels)
        grads = attrs.evolve(self, weight=(cols.T @ dy).reshape(self.weight.shape), bias=dy.sum(axis=0))
        if not mode.input_grad:
            return None, grads
        d_cols = (dy @ self.weight.reshape(-1, self.out_channels).T).reshape(n, length, self.kernel_size, c)
        start, end = self.pads
        dxp = np.zeros((n, t + start + end, c), d_cols.dtype)
        for p in range(self.kernel_size):   # each kernel offset's steps added back where they came from
            first = p * self.dilation
            dxp[:, first:first + (length - 1) * self.stride + 1:self.stride] += d_cols[:, :, p]
        return dxp[:, start:start + t], grads
