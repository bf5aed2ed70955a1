"""Sliding windows over channels-last images (n, height, width, channels), shared by Conv2D and the pooling
layers.

``windows`` is a strided view, no copy: ``windows(x, k, s)[b, i, j, p, q, c] = x[b, i*s0 + p, j*s1 + q, c]``.
``im2col`` copies it into the matrix a convolution multiplies, one row per output pixel and the
row laid out as the kernel is, ``(kh, kw, c)``. ``col2im_add`` is its adjoint: every row's window
added back where it came from, as one shifted add per kernel offset (no ``np.add.at``).
Work on a large batch goes through ``blocks``, so that no copy grows past ``BLOCK_BYTES``; the blocks are
made in ``scratch`` buffers that each thread keeps from call to call.
"""

from __future__ import annotations

import mmap
import threading

import numpy as np
from numpy.lib.stride_tricks import as_strided

from lamina.layers.layer import ROW_ALIGN
from lamina.layers.errors import ShapeError, format_shape
from lamina.layers.settings import is_int

BLOCK_BYTES = 1 << 21
"""How large an im2col block may grow: it stays in a core's L2 cache between the copy and the matrix
multiply."""


SKEW = 1088
"""Bytes (17 cache lines) between the start of a thread's scratch buffers and their pages' starts, times
the buffer's number."""

_scratch = threading.local()


def scratch(name: str, shape: tuple, dtype) -> np.ndarray:
    """An uninitialised array of ``shape`` in this thread's buffer ``name``, kept for the next call (grown
    when too small): for work inside one call that never leaves it. A fresh block each call costs page
    faults, and on two cores the kernel's TLB shootdowns when it is given back. The buffer is a memory map
    of its own, outside malloc's heap, where a block that stays would keep the heap from shrinking between
    steps."""
    dtype = np.dtype(dtype)
    size = int(np.prod(shape)) * dtype.itemsize
    buffers = _scratch.__dict__
    buffer = buffers.get(name)
    if buffer is None or buffer.size < size:
        skip = SKEW * (1 + len(buffers))   # not page-aligned alike: no 4K aliasing between the buffers
        buffer = buffers[name] = np.frombuffer(mmap.mmap(-1, size + skip), np.uint8)[skip:]
    return buffer[:size].view(dtype).reshape(shape)


def pair(value, what: str, layer: str, *, minimum: int = 1) -> tuple[int, int]:
    """An int or a pair of ints, each at least ``minimum``, as a (height, width) tuple; a ValueError naming
    ``layer`` otherwise."""
    items = tuple(value) if isinstance(value, (tuple, list)) else (value, value)
    if len(items) != 2 or not all(is_int(v) for v in items):
        raise ValueError(f"{layer}: {what} must be an int or a pair of ints (height, width), got {value!r}")
    if min(items) < minimum:
        raise ValueError(f"{layer}: {what} must be at least {minimum}, got {value!r}")
    return int(items[0]), int(items[1])


def output_size(size: int, kernel: int, stride: int) -> int:
    """Windows of ``kernel`` at steps of ``stride`` that fit in ``size``: floor((size - kernel) / stride)
    + 1."""
    return (size - kernel) // stride + 1


def pad(x: np.ndarray, pads: tuple[int, int, int, int]) -> np.ndarray:
    """x (n, h, w, c) with (top, bottom, left, right) rows and columns of zeros around it (x itself when all
    are 0)."""
    top, bottom, left, right = pads
    if not any(pads):
        return x
    n, h, w, c = x.shape
    out = np.zeros((n, h + top + bottom, w + left + right, c), x.dtype)
    out[:, top:top + h, left:left + w] = x
    return out


def windows(x: np.ndarray, kernel: tuple[int, int], stride: tuple[int, int]) -> np.ndarray:
    """The read-only view (n, oh, ow, kh, kw, c) of every window of x (n, h, w, c)."""
    n, h, w, c = x.shape
    (kh, kw), (sh, sw) = kernel, stride
    bn, bh, bw, bc = x.strides
    shape = (n, output_size(h, kh, sh), output_size(w, kw, sw), kh, kw, c)
    return as_strided(x, shape, (bn, bh * sh, bw * sw, bh, bw, bc), writeable=False)


def offsets(x: np.ndarray, kernel: tuple[int, int], stride: tuple[int, int], out_hw: tuple[int, int]):
    """(p, q, view) per kernel offset in row-major order: view (n, oh, ow, c) holds
    x[:, i*sh + p, j*sw + q]."""
    (kh, kw), (sh, sw), (oh, ow) = kernel, stride, out_hw
    for p in range(kh):
        for q in range(kw):
            yield p, q, x[:, p:p + (oh - 1) * sh + 1:sh, q:q + (ow - 1) * sw + 1:sw]


def im2col(x: np.ndarray, kernel, stride, out: np.ndarray, *, transposed: bool = False) -> np.ndarray:
    """Write the windows of x (n, h, w, c) into out (n*oh*ow, >= kh*kw*c): one row per window, laid
    out (kh, kw, c).

    ``transposed``: into out (>= kh*kw*c, n*oh*ow) instead, one copy of a shifted slab of x per kernel
    offset, far faster when c is small (a grayscale or RGB input). Columns (rows) past kh*kw*c are
    left as they are: a conv keeps the bias's ones there. Returns out.
    """
    view = windows(x, kernel, stride)
    n, oh, ow, kh, kw, c = view.shape
    if transposed:
        row, item = out.strides
        slabs = as_strided(out, (kh, kw, c, n, oh, ow),
                           (row * kw * c, row * c, row, item * oh * ow, item * ow, item))
        for p, q, slab in offsets(x, kernel, stride, (oh, ow)):
            slabs[p, q] = slab.transpose(3, 0, 1, 2)
    else:
        row, item = out.strides
        as_strided(out, view.shape, (row * oh * ow, row * ow, row, item * kw * c, item * c, item))[...] = view
    return out


def col2im_add(cols: np.ndarray, dx: np.ndarray, kernel, stride, *, transposed: bool = False) -> np.ndarray:
    """dx (n, h, w, c) += the adjoint of im2col of cols (n*oh*ow, kh*kw*c), or of cols.T when ``transposed``:
    each window added back in place."""
    n, h, w, c = dx.shape
    (kh, kw), (sh, sw) = kernel, stride
    oh, ow = output_size(h, kh, sh), output_size(w, kw, sw)
    if transposed:
        windows_of = cols.reshape(kh, kw, c, n, oh, ow).transpose(0, 1, 3, 4, 5, 2)
    else:
        windows_of = cols.reshape(n, oh, ow, kh, kw, c).transpose(3, 4, 0, 1, 2, 5)
    for p, q, target in offsets(dx, kernel, stride, (oh, ow)):
        target += windows_of[p, q]
    return dx


def blocks(n: int, rows: int, row_bytes: int, budget: int | None = None):
    """(samples, output rows) slices covering an (n, rows, ...) output so that each block's im2col stays near
    ``budget``.

    Whole samples go together while one fits; a sample larger than the budget is cut into bands of rows.
    """
    budget = BLOCK_BYTES if budget is None else budget
    sample_bytes = rows * row_bytes
    if sample_bytes <= budget:  # a divisor of ROW_ALIGN: a chunk of inference is cut as the whole batch is
        limit = max(1, budget // sample_bytes)
        step = max(d for d in range(1, ROW_ALIGN + 1) if ROW_ALIGN % d == 0 and d <= limit)
        for start in range(0, n, step):
            yield slice(start, min(n, start + step)), slice(0, rows)
    else:
        step = max(1, budget // row_bytes)
        for b in range(n):
            for start in range(0, rows, step):
                yield slice(b, b + 1), slice(start, min(rows, start + step))


def image_shape(layer: str, shape, channels: int | None = None) -> tuple:
    """Check that a per-sample shape is a channels-last image (h, w, c) (c == ``channels`` when given); a
    ShapeError that says so otherwise."""
    shape = tuple(shape)
    c = "c" if channels is None else channels
    expected = f"channels-last images (n, height, width, {c})"
    if len(shape) != 3:
        hint = ""
        if len(shape) == 1 and shape[0] is not None:
            side = round((shape[0] / (channels or 1)) ** 0.5)
            if side * side * (channels or 1) == shape[0]:
                hint = f"; flat images need layers.Reshape(({side}, {side}, {channels or 1})) first"
        raise ShapeError(layer, expected, format_shape(shape) + hint)
    if channels is not None and shape[2] is not None and shape[2] != channels:
        hint = ""
        if shape[0] == channels:
            hint = (", which looks channels-first; images are channels-last (n, h, w, c): "
                    "move the channels last with x.transpose(0, 2, 3, 1)")
        raise ShapeError(layer, expected, format_shape(shape) + hint)
    return shape
