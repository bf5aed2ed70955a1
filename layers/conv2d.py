"""Conv2D: a 2-D convolution (cross-correlation, as torch's) of channels-last images, through im2col and
matrix multiplies.

With ``cols = im2col(x_padded)`` of shape (n*oh*ow, kh*kw*c_in), one row per output pixel, and
``W`` the weight (kh, kw, c_in, c_out) seen as (kh*kw*c_in, c_out):

    y = cols @ W + bias        dW = cols.T @ dy        dbias = sum(dy)        dx = col2im(dy @ W.T)

cols carries one more column of ones, so that ``cols @ [W; bias]`` adds the bias and
``cols.T @ dy`` gives ``[dW; dbias]`` in the same product. The work goes block by block of output
pixels (``im2col.blocks``): each block's im2col is made in one buffer that stays in cache while
it is multiplied, and backward makes it again instead of keeping the whole matrix (measured: as
fast, and memory stays at one block whatever the batch).

On several cores (``split_rows.parts()`` > 1) the blocks are shared out: each core makes its own blocks'
im2col and multiplies them with BLAS at one thread, in its own cache. The weight gradient is summed in
``SUMS`` partial sums over consecutive blocks, added in order at the end, so its bits do not depend on how
many cores ran the blocks.
"""

from __future__ import annotations

import attrs
import numpy as np

from lamina.layers import split_rows
from lamina.layers.errors import ShapeError, format_shape
from lamina.layers.im2col import blocks, col2im_add, image_shape, im2col, output_size, pad, pair, scratch
from lamina.layers.initializers import check_rng, normal
from lamina.layers.layer import Layer
from lamina.layers.mode import Mode
from lamina.layers.records.parameter import param
from lamina.layers.records.registry import register
from lamina.layers.settings import positive_int

TRANSPOSED_MAX_CHANNELS = 3
"""Up to this many input channels im2col is made transposed, one shifted slab per kernel offset."""

SUMS = 4
"""The weight gradient's partial sums, each over consecutive blocks: the most cores its blocks can use."""


def _stride(value) -> tuple[int, int]:
    return pair(value, "stride", "Conv2D")


def _padding(value):
    """An int, a pair (top and bottom, left and right), "valid" (no padding) or "same" (kept as "same")."""
    if isinstance(value, str):
        if value not in ("same", "valid"):
            raise ValueError('Conv2D: padding must be an int, a pair of ints, "same" or "valid", got '
                             f'{value!r}')
        return "same" if value == "same" else (0, 0)
    return pair(value, "padding", "Conv2D", minimum=0)


def _check_bias(conv: "Conv2D", attribute, bias: np.ndarray) -> None:
    weight = conv.weight
    if weight.ndim != 4 or min(weight.shape) < 1:
        raise ValueError("Conv2D: the weight must be 4-D (kh, kw, in_channels, out_channels), each at least "
                         f"1, got shape {weight.shape}")
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
    """y[b, i, j] = sum over (p, q, c) of x_padded[b, i*sh + p, j*sw + q, c] * weight[p, q, c] + bias:
    (n, h, w, c_in) -> (n, oh, ow, c_out)."""

    weight: np.ndarray = param()
    bias: np.ndarray = param(validator=_check_bias)
    stride: tuple = attrs.field(default=(1, 1), converter=_stride)
    padding: object = attrs.field(default=(0, 0), converter=_padding)

    @classmethod
    def init(cls, rng: np.random.Generator, in_channels: int, out_channels: int, kernel_size, *,
             stride=1, padding=0,
             dtype=np.float32, init="he") -> "Conv2D":
        """A fresh layer: weight drawn as ``init`` says ("he", "glorot", a std; fan kh*kw*c), bias 0."""
        check_rng(rng, "Conv2D.init", "Conv2D.init(rng, in_channels, out_channels, kernel_size)")
        in_channels = positive_int("Conv2D.init", "in_channels", in_channels)
        out_channels = positive_int("Conv2D.init", "out_channels", out_channels)
        kh, kw = pair(kernel_size, "kernel_size", "Conv2D.init")
        weight = normal(rng, (kh, kw, in_channels, out_channels), init, kh * kw * in_channels,
                        kh * kw * out_channels, dtype, "Conv2D.init")
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
        """Zero rows and columns added (top, bottom, left, right); "same" puts an even kernel's extra one
        bottom and right."""
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
        """(h, w, c_in) -> (oh, ow, c_out); a ShapeError for anything but channels-last images the kernel fits
        in."""
        if input_shape is None:
            return None
        h, w, _ = image_shape(repr(self), input_shape, self.in_channels)
        top, bottom, left, right = self.pads
        (kh, kw), (sh, sw) = self.kernel_size, self.stride
        if (h is not None and h + top + bottom < kh) or (w is not None and w + left + right < kw):
            raise ShapeError(repr(self), f"images of at least {kh}x{kw} after padding (height {h} + "
                                         f"{top + bottom}, width {w} + {left + right}), for its {kh}x{kw} "
                                         "kernel",
                             format_shape(tuple(input_shape)))
        oh = None if h is None else output_size(h + top + bottom, kh, sh)
        ow = None if w is None else output_size(w + left + right, kw, sw)
        return (oh, ow, self.out_channels)

    def forward(self, x: np.ndarray, mode: Mode):
        """x (n, h, w, c_in) -> y (n, oh, ow, c_out); the cache is the padded x (backward makes im2col again,
        block by block)."""
        top, bottom, left, right = self.pads
        kh, kw = self.kernel_size
        if (x.ndim != 4 or x.shape[3] != self.in_channels
                or x.shape[1] + top + bottom < kh or x.shape[2] + left + right < kw):
            self.output_shape(x.shape[1:])
            raise ShapeError(repr(self), "channels-last images (n, height, width, "
                                         f"{self.in_channels})", str(x.shape))
        xp = pad(x, self.pads)
        n, oh, ow, c_out = len(xp), *self._out_hw(xp), self.out_channels
        weight = self._weight_and_bias()
        y = np.empty((n, oh, ow, c_out), np.result_type(xp.dtype, weight.dtype))
        flat = y.reshape(-1, c_out)
        work = self._blocks(xp, oh, ow)

        def part(first: int, last: int) -> None:
            cols = self._cols(xp.dtype, _largest(work[first:last]))
            for rows, index in work[first:last]:
                block = self._im2col(xp[index], cols, rows.stop - rows.start)
                np.matmul(block.T if self._transposed else block, weight, out=flat[rows])

        split_rows.run(part, len(work), n * oh * ow * weight.shape[0], blas=True)
        return y, (xp, x.shape)

    @property
    def _transposed(self) -> bool:
        """Whether im2col is laid out transposed (kh*kw*c, rows): faster for few input channels."""
        return self.in_channels <= TRANSPOSED_MAX_CHANNELS

    def _cols(self, dtype, rows: int) -> np.ndarray:
        """An im2col matrix for ``rows`` output pixels, its bias column (row, when transposed) already
        ones."""
        width = self.kernel_size[0] * self.kernel_size[1] * self.in_channels
        if self._transposed:
            cols = scratch("cols", (width + 1, rows), dtype)
            cols[width] = 1
        else:
            cols = scratch("cols", (rows, width + 1), dtype)
            cols[:, width] = 1
        return cols

    def _im2col(self, xp: np.ndarray, cols: np.ndarray, rows: int) -> np.ndarray:
        """The im2col matrix of xp (or its transpose), ``rows`` output pixels, written into the first rows of
        ``cols``."""
        part = cols[:, :rows] if self._transposed else cols[:rows]
        return im2col(xp, self.kernel_size, self.stride, part, transposed=self._transposed)

    def _weight_and_bias(self) -> np.ndarray:
        """[weight; bias]: the weight as a (kh*kw*c_in, c_out) matrix with the bias as one more row."""
        kh, kw, c_in, c_out = self.weight.shape
        return np.concatenate([self.weight.reshape(kh * kw * c_in, c_out), self.bias[None]])

    def _out_hw(self, xp: np.ndarray) -> tuple[int, int]:
        (kh, kw), (sh, sw) = self.kernel_size, self.stride
        return output_size(xp.shape[1], kh, sh), output_size(xp.shape[2], kw, sw)

    def _blocks(self, xp: np.ndarray, oh: int, ow: int) -> list:
        """(rows of the (n*oh*ow, ...) matrices, index of the padded input they read) for each block of
        work."""
        (kh, kw), sh = self.kernel_size, self.stride[0]
        work = []
        for samples, out_rows in blocks(len(xp), oh, ow * (kh * kw * xp.shape[3] + 1) * xp.itemsize):
            first = (samples.start * oh + out_rows.start) * ow
            last = ((samples.stop - 1) * oh + out_rows.stop) * ow
            read = slice(out_rows.start * sh, (out_rows.stop - 1) * sh + kh)
            work.append((slice(first, last), (samples, read)))
        return work

    def backward(self, cache, dy: np.ndarray, mode: Mode):
        """dy (n, oh, ow, c_out) -> dx (n, h, w, c_in) (None when the mode needs no input gradient), gradients
        as a Conv2D."""
        xp, x_shape = cache
        n, oh, ow, c_out = len(xp), *self._out_hw(xp), self.out_channels
        if dy.shape != (n, oh, ow, c_out):
            raise ShapeError(f"{self!r}.backward", f"an output gradient of shape {(n, oh, ow, c_out)}",
                             f"one of shape {dy.shape}")
        dy = dy.reshape(-1, c_out)
        weight = self._weight_and_bias()
        dxp = np.zeros(xp.shape, np.result_type(dy.dtype, weight.dtype)) if mode.input_grad else None
        work = self._blocks(xp, oh, ow)
        count = max(1, min(SUMS, len(work)))
        sums = [len(work) * i // count for i in range(count + 1)]  # partial sum s: blocks sums[s]:sums[s + 1]
        empty = np.empty if work else np.zeros                       # no blocks (no samples): a zero gradient
        partial = empty((count, *weight.shape), np.result_type(dy.dtype, xp.dtype))   # [dweight; dbias]

        def part(first: int, last: int) -> None:
            largest = _largest(work[sums[first]:sums[last]])
            cols = self._cols(xp.dtype, largest)
            product = scratch("product", weight.shape, partial.dtype)
            width = weight.shape[0] - 1
            buffer = scratch("d_cols", (largest * width,), weight.dtype) if dxp is not None else None
            for s in range(first, last):
                for k in range(sums[s], sums[s + 1]):
                    rows, index = work[k]
                    block = self._im2col(xp[index], cols, rows.stop - rows.start)
                    out = partial[s] if k == sums[s] else product      # the ones column: dbias = sum(dy)
                    np.matmul(block if self._transposed else block.T, dy[rows], out=out)
                    if k > sums[s]:
                        partial[s] += product
                    if dxp is not None:
                        self._input_gradient(dy[rows], weight[:-1], buffer, dxp[index])

        # blocks of whole samples add into separate samples of dx; bands of one sample overlap
        if dxp is None or all(rows.stop - rows.start == oh * ow * (index[0].stop - index[0].start)
                              for rows, index in work):
            split_rows.run(part, count, n * oh * ow * weight.shape[0], blas=True)
        else:
            part(0, count)
        d_weight = partial[0]
        for more in partial[1:]:
            d_weight += more
        grads = attrs.evolve(self, weight=d_weight[:-1].reshape(self.weight.shape), bias=d_weight[-1])
        if dxp is None:
            return None, grads
        top, _, left, _ = self.pads
        return dxp[:, top:top + x_shape[1], left:left + x_shape[2]], grads

    def _input_gradient(self, dy, weight, buffer, dxp) -> None:
        """dxp += col2im(dy @ weight.T) for one block, the product made in ``buffer``."""
        size, width = len(dy), weight.shape[0]
        if self._transposed:     # d_cols.T = weight @ dy.T
            d_cols = np.matmul(weight, dy.T, out=buffer[:size * width].reshape(width, size))
        else:
            d_cols = np.matmul(dy, weight.T, out=buffer[:size * width].reshape(size, width))
        col2im_add(d_cols, dxp, self.kernel_size, self.stride, transposed=self._transposed)


def _largest(work: list) -> int:
    """The most output pixels of any of these blocks."""
    return max((rows.stop - rows.start for rows, _ in work), default=0)


def _show(value) -> str:
    if isinstance(value, str):
        return value
    return str(value[0]) if value[0] == value[1] else f"({value[0]}, {value[1]})"
