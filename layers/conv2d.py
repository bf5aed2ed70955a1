"""Conv2D: a 2-D convolution (cross-correlation, as torch's) of channels-last images, through im2col and one matrix multiply.

With ``cols = im2col(x_padded)`` of shape (n*oh*ow, kh*kw*c_in), one row per output pixel, and
``W`` the weight (kh, kw, c_in, c_out) seen as (kh*kw*c_in, c_out):

    y = cols @ W + bias        dW = cols.T @ dy        dbias = sum(dy)        dx = col2im(dy @ W.T)
"""

from __future__ import annotations

import attrs
import numpy as np

from lamina.layers.errors import ShapeError, format_shape
from lamina.layers.im2col import blocks, col2im_add, image_shape, im2col, output_size, pad, pair
from lamina.layers.layer import Layer
from lamina.layers.mode import Mode
from lamina.layers.parameter import param
from lamina.layers.registry import register

INITS = ("he", "glorot")

KEEP_COLS_BYTES = 64 << 20
"""In training, the im2col matrix of a batch up to this size is kept for backward; a larger one is made again there, block by block."""


def _stride(value) -> tuple[int, int]:
    return pair(value, "stride", "Conv2D")


def _padding(value):
    """An int, a pair (top and bottom, left and right), "valid" (no padding) or "same" (kept as "same")."""
    if isinstance(value, str):
        if value not in ("same", "valid"):
            raise ValueError(f'Conv2D: padding must be an int, a pair of ints, "same" or "valid", got {value!r}')
        return "same" if value == "same" else (0, 0)
    return pair(value, "padding", "Conv2D", minimum=0)


def _check_bias(conv: "Conv2D", attribute, bias: np.ndarray) -> None:
    weight = conv.weight
    if weight.ndim != 4 or min(weight.shape) < 1:
        raise ValueError(f"Conv2D: the weight must be 4-D (kh, kw, in_channels, out_channels), each at least 1, "
                         f"got shape {weight.shape}")
    if bias.shape != weight.shape[3:]:
        raise ShapeError("Conv2D", f"bias of shape ({weight.shape[3]},) to match weight {weight.shape}",
                         f"bias of shape {bias.shape}")
    if bias.dtype != weight.dtype:
        raise TypeError(f"Conv2D weight and bias must share a dtype, got {weight.dtype} and {bias.dtype}")
    if conv.padding == "same" and conv.stride != (1, 1):
        raise ValueError(f'Conv2D: padding="same" needs stride 1, got stride {conv.stride}')


@register
@attrs.frozen(repr=False)
class Conv2D(Layer):
    """y[b, i, j] = sum over (p, q, c) of x_padded[b, i*sh + p, j*sw + q, c] * weight[p, q, c] + bias: (n, h, w, c_in) -> (n, oh, ow, c_out)."""

    weight: np.ndarray = param()
    bias: np.ndarray = param(validator=_check_bias)
    stride: tuple = attrs.field(default=(1, 1), converter=_stride)
    padding: object = attrs.field(default=(0, 0), converter=_padding)

    @classmethod
    def init(cls, rng: np.random.Generator, in_channels: int, out_channels: int, kernel_size, *, stride=1, padding=0,
             dtype=np.float32, init: str = "he") -> "Conv2D":
        """A fresh layer: weight ~ N(0, 2/fan_in) ("he") or N(0, 2/(fan_in + fan_out)) ("glorot"), fan = kh*kw*channels; bias 0."""
        if not isinstance(rng, np.random.Generator):
            raise TypeError(f"Conv2D.init needs a numpy.random.Generator first: Conv2D.init(rng, in_channels, "
                            f"out_channels, kernel_size), got {type(rng).__name__}")
        for name, size in (("in_channels", in_channels), ("out_channels", out_channels)):
            if not isinstance(size, (int, np.integer)) or isinstance(size, bool) or size < 1:
                raise ValueError(f"Conv2D.init: {name} must be a positive int, got {size!r}")
        if init not in INITS:
            raise ValueError(f"Conv2D.init: init must be one of {INITS}, got {init!r}")
        kh, kw = pair(kernel_size, "kernel_size", "Conv2D.init")
        fan_in, fan_out = kh * kw * in_channels, kh * kw * out_channels
        variance = 2.0 / fan_in if init == "he" else 2.0 / (fan_in + fan_out)
        weight = rng.normal(0.0, np.sqrt(variance), size=(kh, kw, in_channels, out_channels)).astype(dtype)
        return cls(weight=weight, bias=np.zeros(out_channels, dtype=dtype), stride=stride, padding=padding)

    @property
    def in_channels(self) -> int:
        return self.weight.shape[2]

    @property
    def out_channels(self) -> int:
        return self.weight.shape[3]

    @property
    def kernel_size(self) -> tuple[int, int]:
        return self.weight.shape[:2]

    @property
    def pads(self) -> tuple[int, int, int, int]:
        """Zero rows and columns added (top, bottom, left, right); "same" puts an even kernel's extra one bottom and right."""
        if self.padding == "same":
            kh, kw = self.kernel_size
            return (kh - 1) // 2, kh // 2, (kw - 1) // 2, kw // 2
        ph, pw = self.padding
        return ph, ph, pw, pw

    def __repr__(self) -> str:
        kh, kw = self.kernel_size
        parts = [f"{self.in_channels} -> {self.out_channels}", f"{kh}x{kw}"]
        if self.stride != (1, 1):
            parts.append(f"stride {_show(self.stride)}")
        if self.padding != (0, 0):
            parts.append(f"padding {_show(self.padding)}")
        return f"Conv2D({', '.join(parts + [str(self.weight.dtype)])})"

    def output_shape(self, input_shape):
        """(h, w, c_in) -> (oh, ow, c_out); a ShapeError for anything but channels-last images the kernel fits in."""
        if input_shape is None:
            return None
        h, w, _ = image_shape(repr(self), input_shape, self.in_channels)
        top, bottom, left, right = self.pads
        (kh, kw), (sh, sw) = self.kernel_size, self.stride
        if (h is not None and h + top + bottom < kh) or (w is not None and w + left + right < kw):
            raise ShapeError(repr(self), f"images of at least {kh}x{kw} after padding "
                             f"(height {h} + {top + bottom}, width {w} + {left + right}), for its {kh}x{kw} kernel",
                             format_shape(tuple(input_shape)))
        oh = None if h is None else output_size(h + top + bottom, kh, sh)
        ow = None if w is None else output_size(w + left + right, kw, sw)
        return (oh, ow, self.out_channels)

    def forward(self, x: np.ndarray, mode: Mode):
        """x (n, h, w, c_in) -> y (n, oh, ow, c_out); the cache holds the padded x and, in training, its im2col matrix."""
        top, bottom, left, right = self.pads
        kh, kw = self.kernel_size
        if (x.ndim != 4 or x.shape[3] != self.in_channels
                or x.shape[1] + top + bottom < kh or x.shape[2] + left + right < kw):
            self.output_shape(x.shape[1:])
            raise ShapeError(repr(self), f"channels-last images (n, height, width, {self.in_channels})", str(x.shape))
        xp = pad(x, self.pads)
        n, hp, wp, c = xp.shape
        (sh, sw), c_out = self.stride, self.out_channels
        oh, ow = output_size(hp, kh, sh), output_size(wp, kw, sw)
        width = kh * kw * c
        weight = self.weight.reshape(width, c_out)
        y = np.empty((n, oh, ow, c_out), np.result_type(xp.dtype, weight.dtype))
        flat = y.reshape(-1, c_out)
        keep = mode.train and n * oh * ow * width * xp.itemsize <= KEEP_COLS_BYTES
        cols = np.empty((n * oh * ow, width), xp.dtype) if keep else None
        scratch = None
        for rows, index in self._blocks(xp, oh, ow):
            if keep:
                out = cols[rows]
            else:
                if scratch is None:
                    scratch = np.empty((rows.stop - rows.start, width), xp.dtype)
                out = scratch[:rows.stop - rows.start]
            part = flat[rows]
            np.matmul(im2col(xp[index], (kh, kw), (sh, sw), out), weight, out=part)
            part += self.bias
        return y, (xp, cols, x.shape)

    def _blocks(self, xp: np.ndarray, oh: int, ow: int):
        """(rows of the (n*oh*ow, ...) matrices, index of the padded input they read) for each block of work."""
        (kh, kw), (sh, sw) = self.kernel_size, self.stride
        for samples, out_rows in blocks(len(xp), oh, ow * kh * kw * xp.shape[3] * xp.itemsize):
            first = (samples.start * oh + out_rows.start) * ow
            last = ((samples.stop - 1) * oh + out_rows.stop) * ow
            yield slice(first, last), (samples, slice(out_rows.start * sh, (out_rows.stop - 1) * sh + kh))

    def backward(self, cache, dy: np.ndarray, mode: Mode):
        """dy (n, oh, ow, c_out) -> dx (n, h, w, c_in) (None when the mode needs no input gradient), gradients as a Conv2D."""
        xp, cols, x_shape = cache
        n, hp, wp, c = xp.shape
        (kh, kw), (sh, sw), c_out = self.kernel_size, self.stride, self.out_channels
        oh, ow = output_size(hp, kh, sh), output_size(wp, kw, sw)
        if dy.shape != (n, oh, ow, c_out):
            raise ShapeError(f"{self!r}.backward", f"an output gradient of shape {(n, oh, ow, c_out)}",
                             f"one of shape {dy.shape}")
        width = kh * kw * c
        weight = self.weight.reshape(width, c_out)
        dy = dy.reshape(-1, c_out)
        dtype = np.result_type(dy.dtype, weight.dtype)
        dweight = None if cols is None else cols.T @ dy
        dxp = np.zeros(xp.shape, dtype) if mode.input_grad else None
        if dweight is None or dxp is not None:
            scratch = None
            for rows, index in self._blocks(xp, oh, ow):
                dy_rows = dy[rows]
                if cols is None:
                    if scratch is None:
                        scratch = np.empty((rows.stop - rows.start, width), xp.dtype)
                    block_cols = im2col(xp[index], (kh, kw), (sh, sw), scratch[:rows.stop - rows.start])
                    if dweight is None:
                        dweight = block_cols.T @ dy_rows
                    else:
                        dweight += block_cols.T @ dy_rows
                if dxp is not None:
                    col2im_add(dy_rows @ weight.T, dxp[index], (kh, kw), (sh, sw))
        grads = attrs.evolve(self, weight=dweight.reshape(self.weight.shape), bias=dy.sum(axis=0))
        if dxp is None:
            return None, grads
        top, _, left, _ = self.pads
        return dxp[:, top:top + x_shape[1], left:left + x_shape[2]], grads


def _show(value) -> str:
    if isinstance(value, str):
        return value
    return str(value[0]) if value[0] == value[1] else f"({value[0]}, {value[1]})"
