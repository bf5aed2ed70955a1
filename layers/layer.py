"""The layer protocol: ``forward(x, mode) -> (y, cache)``, ``backward(cache, dy, mode) -> (dx, grads)``.

``Layer`` is the optional base class: it gives ``__call__`` (inference, bit for bit
``forward(x, EVAL)[0]`` without keeping a cache, in chunks of rows so memory stays bounded) and
``output_shape`` (unknown). The entry checks of the outermost call live here too: a batch is
cast to the model's dtype once and refused when non-numeric, empty or non-finite; nested layers
never check again.
"""

from __future__ import annotations

import functools
import inspect
import math
import warnings

import attrs
import numpy as np

from lamina.layers.errors import ShapeError
from lamina.layers.records.finite import first_nonfinite_row
from lamina.layers.records.hints import KeywordHints
from lamina.layers.records.pickling import BuiltOnLoad
from lamina.layers.mode import INFER, Mode

ROWS_PER_CHUNK = 1024
"""Inference runs in chunks of about this many rows (equal chunks, none smaller than half of it) ..."""

POSITIONS_PER_CHUNK = 16384
"""... or of about this many positions, when a sample holds several (a sequence's steps, an image's pixels:
each grows into a row of features inside the model), but never fewer than ROW_ALIGN rows."""

_PROBE = Mode()


def describe(layer) -> str:
    """A short name for messages: the layer's ``describe()`` if it has one, else its repr or class name."""
    own = getattr(layer, "describe", None)
    if own is not None:
        return own()
    text = repr(layer)
    default = type(layer).__repr__ is object.__repr__   # '<module.Class object at 0x...>' says nothing
    return text if len(text) <= 60 and not default else type(layer).__name__


@functools.lru_cache(maxsize=None)
def _protocol_problem(cls: type) -> str | None:
    """What keeps ``cls`` from being a layer of protocol v2, or None (one look per class, to phrase the
    error)."""
    for method, arguments in (("forward", ("x", "mode")), ("backward", ("cache", "dy", "mode"))):
        function = getattr(cls, method, None)
        if not callable(function):
            return f"it has no {method}({', '.join(arguments)}) method"
        try:
            inspect.signature(function).bind(None, *arguments)
        except TypeError:
            return (f"its {method} does not take ({', '.join(arguments)}): lamina passes the mode to every "
                    f"layer (protocol v2); write forward(self, x, mode) -> (y, cache) and "
                    f"backward(self, cache, dy, mode) -> (dx, grads), reading mode.train and mode.rng where "
                    f"the layer needs them")
        except ValueError:  # no signature to read (a builtin): trust it
            pass
    return None


def check_layer(layer, where: str = "") -> None:
    """TypeError when ``layer`` is not a layer record of the current protocol; ``where`` names its place."""
    at = f"{where} " if where else ""
    if not attrs.has(type(layer)):
        raise TypeError(f"{at}must be a layer record (an attrs class with forward(x, mode) and "
                        f"backward(cache, dy, mode)), got {type(layer).__name__}")
    problem = _protocol_problem(type(layer))
    if problem is not None:
        raise TypeError(f"{at}{type(layer).__name__}: {problem}")
    if getattr(type(layer), "forward_unchecked", None) is None:  # (a combinator checked it when built)
        from lamina.layers.records.tree import check_sharing
        check_sharing(layer, describe(layer))


def wrong_gradients(layer, grads, path: str = "the model") -> str:
    """What to say when ``layer.backward`` returned ``grads`` of another class than the layer's."""
    name = type(layer).__name__
    return (f"{path} {describe(layer)}: backward returned a {type(grads).__name__} as its gradients; it must "
            f"return (dx, grads) with grads a {name} holding the gradients in its param fields, e.g. "
            f"attrs.evolve(self, weight=dweight) or {name}(weight=dweight, ...)")


def onnx_form(layer):
    """The layer's own ONNX form, its optional method ``to_onnx(graph, x) -> y``, or None (layers/onnx/)."""
    return getattr(layer, "to_onnx", None)


def output_shape_of(layer, input_shape):
    """The per-sample output shape for ``input_shape`` by the optional ``output_shape``; None: unknown."""
    shape = getattr(layer, "output_shape", None)
    return None if shape is None else shape(input_shape)


def takes_ids(layer) -> bool:
    """Whether ``layer`` takes integer ids as they are: its class says ``takes_ids = True`` (an Embedding), or
    it is a combinator whose first child takes ids. The one place this optional attribute is read."""
    own = getattr(type(layer), "takes_ids", None)
    if own is not None:
        return bool(own)
    children = getattr(layer, "children", None)
    kids = children() if callable(children) else ()
    return bool(kids) and takes_ids(kids[0][1])


def forward_of(layer):
    """The layer's forward without entry checks (a combinator's ``forward_unchecked``)."""
    return getattr(layer, "forward_unchecked", None) or layer.forward


def model_dtype(layer) -> np.dtype | None:
    """The dtype a model computes in: its arrays' (None without any)."""
    dtype = getattr(layer, "dtype", None)
    if isinstance(dtype, np.dtype):
        return dtype
    from lamina.layers.records.tree import buffers, parameters
    arrays = parameters(layer) + buffers(layer)
    return arrays[0].dtype if arrays else None


def input_dtype(layer, x) -> np.dtype | None:
    """The dtype batches of ``x`` are cast to for ``layer``: None (no cast) for integer ids into a model that
    takes ids, else the model's dtype (None without arrays); a tuple of them for a tuple input."""
    if type(x) is tuple:
        return tuple(input_dtype(layer, part) for part in x)
    return None if x.dtype.kind in "iu" and takes_ids(layer) else model_dtype(layer)


def entry(layer, x, *, finite: bool = True, dtype: np.dtype | None = None, part: str = "") -> np.ndarray:
    """The batch for the outermost call: numeric, non-empty, in the model's dtype (one cast; integer ids into
    a model that takes them stay as they are), and (``finite``) scanned for NaN and inf; a tuple input part by
    part (``part``: "input i " in messages), the same number of rows."""
    if type(x) is tuple:
        return entry_tuple(layer, x, finite=finite, dtype=dtype)
    if type(x) is list and x and all(isinstance(a, np.ndarray) for a in x):
        raise TypeError(f"{describe(layer)}: a list of {len(x)} arrays as the model input; for several "
                        f"inputs pass a tuple: (x0, x1)")
    if type(x) is not np.ndarray:
        x = np.asarray(x)
    if x.dtype.kind not in "fiu":
        raise TypeError(f"{describe(layer)}: model {part or 'input '}must be a float or integer array, "
                        f"got dtype {x.dtype}")
    if x.ndim == 0 or x.shape[0] == 0 or x.size == 0:
        raise ShapeError(describe(layer), f"{part}a batch with at least one sample and one feature",
                         str(x.shape))
    if x.dtype.kind in "iu" and takes_ids(layer):
        return x
    dtype = dtype or model_dtype(layer) or (x.dtype if x.dtype.kind == "f" else np.dtype(np.float64))
    if x.dtype != dtype:
        x = x.astype(dtype)
    if finite:
        row = first_nonfinite_row(x)
        if row is not None:
            raise ValueError(f"model {part or 'input '}row {row} holds NaN or inf; expected finite values")
    return x


def entry_tuple(layer, x: tuple, *, finite: bool = True, dtype: np.dtype | None = None) -> tuple:
    """``entry`` for each part of a tuple input; every part has the first one's number of samples."""
    if not x:
        raise ShapeError(describe(layer), "a tuple of at least one input", "()")
    parts = tuple(entry(layer, a, finite=finite, dtype=dtype, part=f"input {i} ") for i, a in enumerate(x))
    for i, a in enumerate(parts):
        if len(a) != len(parts[0]):
            raise ShapeError(describe(layer), f"every input with input 0's {len(parts[0])} samples",
                             f"input {i} with {len(a)}")
    return parts


ROW_ALIGN = 192
"""Chunks start at multiples of this many rows. BLAS kernels work on rows in groups (of 4, 8, 12, 16, 24 or
32 for OpenBLAS's x86 kernels, all dividing 192) and round a group's tail differently: a chunk that starts
on a group's edge rounds every row as the whole input would at one BLAS thread (with more, the rows are split
between the threads by the input's size, and chunked inference agrees with the whole to rounding)."""


def chunks(n: int, rows: int = ROWS_PER_CHUNK) -> list[slice]:
    """Slices of range(n) of about ``rows`` each (one slice when n <= rows), starting at multiples of
    ROW_ALIGN."""
    k = max(1, round(n / rows))
    bounds = sorted({0, n, *(min(n, -(-(n * i // k) // ROW_ALIGN) * ROW_ALIGN) for i in range(1, k))})
    return [slice(a, b) for a, b in zip(bounds[:-1], bounds[1:])]


def rows_per_chunk(x, rows: int = ROWS_PER_CHUNK) -> int:
    """``rows``, or fewer for an input ``x`` (n, ...) whose samples hold many positions: the axes before the
    features (every axis of integer ids)."""
    positions = 1
    for a in (x if type(x) is tuple else (x,)):
        shape = np.shape(a)[1:]
        per_sample = shape if a.dtype.kind in "iub" else shape[:-1]
        positions = max(positions, math.prod(per_sample))
    return min(rows, max(ROW_ALIGN, POSITIONS_PER_CHUNK // positions))


def _rows(x, part: slice):
    return tuple(a[part] for a in x) if type(x) is tuple else x[part]


def _joined(parts: list):
    """Chunks of an output put together again (a tuple output part by part)."""
    if type(parts[0]) is tuple:
        return tuple(_joined([p[i] for p in parts]) for i in range(len(parts[0])))
    return parts[0] if len(parts) == 1 else np.concatenate(parts)


def _first_bad(x) -> str | None:
    """'row r' or 'input i row r' of the first non-finite sample of an input, or None."""
    if type(x) is not tuple:
        row = first_nonfinite_row(x)
        return None if row is None else f"row {row}"
    for i, a in enumerate(x):
        row = first_nonfinite_row(a)
        if row is not None:
            return f"{i} row {row}"
    return None


def infer(layer, x):
    """Inference on a whole input: ``forward(x, EVAL)[0]`` in chunks of rows, no cache kept.

    The check for NaN and inf looks at the output, which is small: only when it is not finite is
    the input scanned and a bad row named; a finite input with a non-finite output warns that the
    model overflows.
    """
    check_layer(layer)
    x = entry(layer, x, finite=False)
    forward = forward_of(layer)
    n = len(x[0]) if type(x) is tuple else len(x)
    with np.errstate(over="ignore", invalid="ignore"):  # bad input is reported below, not as a warning
        y = _joined([forward(_rows(x, part), INFER)[0] for part in chunks(n, rows_per_chunk(x))])
    for out in (y if type(y) is tuple else (y,)):
        if out.dtype.kind != "f" or not np.isfinite(out).all():  # (an integer output says nothing: scan)
            bad = _first_bad(x)
            if bad is not None:
                raise ValueError(f"model input {bad} holds NaN or inf; expected finite values")
            if out.dtype.kind == "f":
                warnings.warn("the model's output holds NaN or inf for a finite input: the model overflows",
                              RuntimeWarning, stacklevel=3)
            break
    return y


class Layer(KeywordHints, BuiltOnLoad):
    """Optional base class of a layer: ``__call__`` as inference and ``output_shape`` unknown."""

    __slots__ = ()

    def __call__(self, x) -> np.ndarray:
        """Inference: bit for bit ``forward(x, layers.EVAL)[0]``, in chunks, without keeping a cache."""
        return infer(self, x)

    def output_shape(self, input_shape):
        """The per-sample output shape for a per-sample input shape; None: unknown."""
        return None
