"""Pooling of channels-last images: MaxPool2D, AvgPool2D (windows of ``size`` at steps of ``stride``,
``padding``
rows and columns around the image, as torch) and GlobalAvgPool2D.

Padding is at most half the window; max pooling pads with -inf (a window's maximum is a real
element), average pooling with zeros that count (torch's ``count_include_pad=True``). The padded
image goes through the same passes, and the backward pass crops dx back to the image.

Each works as one pass per window offset (p, q): ``x[:, p::s, q::s]`` cut to the output's size is
an (n, oh, ow, c) view, so a 2x2 pool is four element-wise operations on views whose rows of
channels are contiguous (channels-last), and the backward pass adds ``dy`` back through the same
views. When the windows tile the image (stride = size, the usual case), max pooling's backward
sees x as (n, oh, kh, ow, kw, c) tiles instead: one comparison with the maxima and one product
with dy over whole arrays, the ties settled in between on the small boolean array.

Every pass works on each sample apart, so on several cores the batch is cut in parts by samples
(``split_rows``), the same bits as the whole.
"""

from __future__ import annotations

import attrs
import numpy as np
from numpy.lib.stride_tricks import as_strided

from lamina.layers import split_rows
from lamina.layers.errors import ShapeError, format_shape
from lamina.layers.im2col import image_shape, offsets, output_size, pair
from lamina.layers.layer import Layer
from lamina.layers.mode import Mode
from lamina.layers.records.registry import register


def _size(layer: str):
    """The converter of a pooling layer's ``size``: an int or a pair, each at least 1."""
    return lambda value: pair(value, "size", layer)


def _stride(layer: str):
    """The converter of a pooling layer's ``stride``: None (the size), an int or a pair, each at least 1."""
    return lambda value: None if value is None else pair(value, "stride", layer)


def _padding(layer: str):
    """The converter of a pooling layer's ``padding``: an int or a pair >= 0, "valid" (0), or "same" (kept as
    given; checked against the window and the stride when the layer is built)."""
    return lambda value: value if value == "same" else (0, 0) if value == "valid" else \
        pair(value, "padding", layer, minimum=0)


def _check_padding(layer, attribute, padding) -> None:
    """At most half the window (as torch); "same" only for stride 1 and an odd window; each refusal suggests a
    padding."""
    name, (kh, kw), (sh, sw) = type(layer).__name__, layer.size, layer.step
    works = ((kh - 1) // 2, (kw - 1) // 2)
    suggestion = f"padding={works[0] if works[0] == works[1] else works}"
    if padding == "same":
        if (sh, sw) != (1, 1) or kh % 2 == 0 or kw % 2 == 0:
            raise ValueError(f"{name}: padding='same' keeps the image's size only with stride 1 and an odd "
                             f"window, got window {kh}x{kw}, stride {(sh, sw)}; {suggestion} gives "
                             f"floor((h + 2 * padding - size) / stride) + 1 rows "
                             f"(ceil(h / stride) for an odd window)")
        object.__setattr__(layer, "padding", works)
    elif padding[0] > kh // 2 or padding[1] > kw // 2:
        raise ValueError(f"{name}: padding {padding} is more than half the window {kh}x{kw} (torch refuses "
                         f"it too); at most padding={(kh // 2, kw // 2)}")


class _Pool2D(Layer):
    """Shared plumbing: the window, the output shape and its checks, and the views per window offset."""

    __slots__ = ()

    @property
    def step(self) -> tuple[int, int]:
        """The stride, which defaults to the window's size."""
        return self.size if self.stride is None else self.stride

    def __repr__(self) -> str:
        text = f"{self.size[0]}x{self.size[1]}"
        if self.step != self.size:
            sh, sw = self.step
            text += f", stride {sh if sh == sw else (sh, sw)}"
        if self.padding != (0, 0):
            ph, pw = self.padding
            text += f", padding {ph if ph == pw else (ph, pw)}"
        return f"{type(self).__name__}({text})"

    def _padded(self, x: np.ndarray, fill) -> np.ndarray:
        """x with ``padding`` rows and columns of ``fill`` around each image (x itself without padding)."""
        ph, pw = self.padding
        if not ph and not pw:
            return x
        n, h, w, c = x.shape
        out = np.full((n, h + 2 * ph, w + 2 * pw, c), fill, x.dtype)
        out[:, ph:ph + h, pw:pw + w] = x
        return out

    def _cropped(self, dx: np.ndarray) -> np.ndarray:
        """The gradient of the padded image cut back to the image."""
        ph, pw = self.padding
        return dx if not ph and not pw else dx[:, ph:dx.shape[1] - ph, pw:dx.shape[2] - pw]

    def output_shape(self, input_shape):
        """(h, w, c) -> (oh, ow, c) with oh = floor((h + 2 padding - size) / stride) + 1; a ShapeError when
        the window
        does not fit."""
        if input_shape is None:
            return None
        h, w, c = image_shape(repr(self), input_shape)
        ph, pw = self.padding
        h, w = (None if h is None else h + 2 * ph), (None if w is None else w + 2 * pw)
        (kh, kw), (sh, sw) = self.size, self.step
        if (h is not None and h < kh) or (w is not None and w < kw):
            raise ShapeError(repr(self), f"images of at least {kh}x{kw}, the size of its window",
                             format_shape(tuple(input_shape)))
        return (None if h is None else output_size(h, kh, sh),
                None if w is None else output_size(w, kw, sw), c)

    def _out_hw(self, x: np.ndarray) -> tuple[int, int]:
        """(oh, ow) for a batch x (padded already), after checking it is a batch of images the window fits
        in."""
        (kh, kw), (sh, sw), (ph, pw) = self.size, self.step, self.padding
        if x.ndim != 4 or x.shape[1] < kh or x.shape[2] < kw:
            shape = x.shape[1:] if x.ndim != 4 else (x.shape[1] - 2 * ph, x.shape[2] - 2 * pw, x.shape[3])
            self.output_shape(shape)
        return output_size(x.shape[1], kh, sh), output_size(x.shape[2], kw, sw)

    def _views(self, x: np.ndarray, out_hw):
        """(n, oh, ow, c) views of x, one per window offset in row-major order."""
        return [view for _, _, view in offsets(x, self.size, self.step, out_hw)]

    def _disjoint(self) -> bool:
        return self.step[0] >= self.size[0] and self.step[1] >= self.size[1]

    def _dx(self, x_shape, dtype, out_hw) -> np.ndarray:
        """An array for dx: uninitialised when disjoint windows cover all of it, zeros otherwise."""
        (sh, sw), (oh, ow) = self.step, out_hw
        covered = self.step == self.size and oh * sh == x_shape[1] and ow * sw == x_shape[2]
        return np.empty(x_shape, dtype) if covered else np.zeros(x_shape, dtype)


@register
@attrs.frozen(repr=False)
class MaxPool2D(_Pool2D):
    """y[b, i, j, c] = max of the window x[b, i*s:i*s+size, j*s:j*s+size, c]; the gradient goes to its first
    maximum in row-major order (as torch)."""

    size: tuple = attrs.field(default=(2, 2), converter=_size("MaxPool2D"))
    stride: tuple | None = attrs.field(default=None, converter=_stride("MaxPool2D"))
    padding: tuple = attrs.field(default=(0, 0), converter=_padding("MaxPool2D"), validator=_check_padding)

    def forward(self, x: np.ndarray, mode: Mode):
        """x (n, h, w, c) -> y (n, oh, ow, c); the cache is (padded x, y)."""
        if x.ndim == 4:
            x = self._padded(x, -np.inf if x.dtype.kind == "f" else np.iinfo(x.dtype).min)
        out_hw = self._out_hw(x)
        y = np.empty((len(x), *out_hw, x.shape[3]), x.dtype)

        def part(a: int, b: int) -> None:
            views, out = self._views(x[a:b], out_hw), y[a:b]
            if len(views) == 1:
                out[...] = views[0]
            for k in range(1, len(views)):
                np.maximum(views[0] if k == 1 else out, views[k], out=out)

        split_rows.run(part, len(x), x.size)
        return y, (x, y)

    def backward(self, cache, dy: np.ndarray, mode: Mode):
        """dy (n, oh, ow, c) -> dx (n, h, w, c): dy at the first maximum of each window, overlapping windows
        adding up."""
        x, y = cache
        if dy.shape != y.shape:
            raise ShapeError(f"{self!r}.backward", f"an output gradient of shape {y.shape}", f"one of shape "
                                                                                             f"{dy.shape}")
        if not mode.input_grad:
            return None, self
        dx = self._dx(x.shape, np.result_type(x.dtype, dy.dtype), y.shape[1:3])
        backward = self._tiled_backward if self.step == self.size else self._window_backward
        split_rows.run(lambda a, b: backward(x[a:b], y[a:b], dy[a:b], dx[a:b]), len(x), x.size)
        return self._cropped(dx), self

    def _window_backward(self, x, y, dy, dx) -> None:
        """Any windows: one pass per window offset, dy to the first maximum not claimed by an earlier
        offset."""
        out_hw = y.shape[1:3]
        unclaimed = np.ones(y.shape, bool)   # windows whose maximum has not been found yet
        first = np.empty(y.shape, bool)
        views, targets = self._views(x, out_hw), self._views(dx, out_hw)
        disjoint, last = self._disjoint(), len(views) - 1
        for k, (view, target) in enumerate(zip(views, targets)):
            np.equal(view, y, out=first)
            first &= unclaimed
            if disjoint:
                np.multiply(dy, first, out=target)
            else:
                target += dy * first
            if k < last:
                unclaimed &= ~first

    def _tiled_backward(self, x, y, dy, dx) -> None:
        """Windows that tile the image (stride = size): one comparison and one product over whole arrays, not
        one per offset."""
        at_max = np.equal(_tiles(x, self.size, y.shape), y[:, :, None, :, None, :])
        found = None   # windows whose maximum came at an earlier offset: later ties lose
        kh, kw = self.size
        for p in range(kh):
            for q in range(kw):
                here = at_max[:, :, p, :, q]
                if found is None:
                    found = here.copy()
                    continue
                found_next = found | here if (p, q) != (kh - 1, kw - 1) else None
                np.greater(here, found, out=here)    # here and not found
                found = found_next
        np.multiply(at_max, dy[:, :, None, :, None, :], out=_tiles(dx, self.size, y.shape))


def _tiles(a: np.ndarray, size, y_shape) -> np.ndarray:
    """The view (n, oh, kh, ow, kw, c) of a (n, h, w, c) cut into the windows of a pool whose stride is its
    size."""
    (kh, kw), (n, oh, ow, c) = size, y_shape
    s0, s1, s2, s3 = a.strides
    return as_strided(a, (n, oh, kh, ow, kw, c), (s0, s1 * kh, s1, s2 * kw, s2, s3),
                      writeable=a.flags.writeable)


@register
@attrs.frozen(repr=False)
class AvgPool2D(_Pool2D):
    """y[b, i, j, c] = mean of the window x[b, i*s:i*s+size, j*s:j*s+size, c] of the zero-padded image (the
    padding's
    zeros count, as torch's ``count_include_pad=True``)."""

    size: tuple = attrs.field(default=(2, 2), converter=_size("AvgPool2D"))
    stride: tuple | None = attrs.field(default=None, converter=_stride("AvgPool2D"))
    padding: tuple = attrs.field(default=(0, 0), converter=_padding("AvgPool2D"), validator=_check_padding)

    def forward(self, x: np.ndarray, mode: Mode):
        """x (n, h, w, c) -> y (n, oh, ow, c); the cache is the padded x's shape."""
        if x.ndim == 4:
            x = self._padded(x, 0)
        out_hw = self._out_hw(x)
        dtype = x.dtype if x.dtype.kind == "f" else np.dtype(np.float64)
        y = np.empty((len(x), *out_hw, x.shape[3]), dtype)

        def part(a: int, b: int) -> None:
            views, out = self._views(x[a:b], out_hw), y[a:b]
            if len(views) == 1:
                out[...] = views[0]
            for k in range(1, len(views)):
                np.add(views[0] if k == 1 else out, views[k], out=out, dtype=dtype)
            out *= dtype.type(1 / len(views))

        split_rows.run(part, len(x), x.size)
        return y, (x.shape, y.shape)

    def backward(self, cache, dy: np.ndarray, mode: Mode):
        """dy (n, oh, ow, c) -> dx (n, h, w, c): dy / size² to every element of its window, overlapping
        windows adding up."""
        x_shape, y_shape = cache
        if dy.shape != y_shape:
            raise ShapeError(f"{self!r}.backward", f"an output gradient of shape {y_shape}", f"one of shape "
                                                                                             f"{dy.shape}")
        if not mode.input_grad:
            return None, self
        dx = self._dx(x_shape, dy.dtype, y_shape[1:3])
        disjoint, scale = self._disjoint(), dy.dtype.type(1 / (self.size[0] * self.size[1]))

        def part(a: int, b: int) -> None:
            share = dy[a:b] * scale
            for target in self._views(dx[a:b], y_shape[1:3]):
                if disjoint:
                    target[...] = share
                else:
                    target += share

        split_rows.run(part, len(dx), dx.size)
        return self._cropped(dx), self


@register
@attrs.frozen
class GlobalAvgPool2D(Layer):
    """y[b, c] = mean of x[b, :, :, c]: (n, h, w, c) -> (n, c)."""

    def output_shape(self, input_shape):
        if input_shape is None:
            return None
        return (image_shape(repr(self), input_shape)[2],)

    def forward(self, x: np.ndarray, mode: Mode):
        """x (n, h, w, c) -> y (n, c); the cache is x's shape."""
        if x.ndim != 4:
            self.output_shape(x.shape[1:])
        return x.mean(axis=(1, 2)), x.shape

    def backward(self, x_shape, dy: np.ndarray, mode: Mode):
        """dy (n, c) -> dx (n, h, w, c) = dy / (h*w) everywhere."""
        if dy.shape != (x_shape[0], x_shape[3]):
            raise ShapeError(f"{self!r}.backward", f"an output gradient of shape {(x_shape[0], x_shape[3])}",
                             f"one of shape {dy.shape}")
        if not mode.input_grad:
            return None, self
        dx = np.empty(x_shape, dy.dtype)
        dx[...] = (dy * dy.dtype.type(1 / (x_shape[1] * x_shape[2])))[:, None, None, :]
        return dx, self
