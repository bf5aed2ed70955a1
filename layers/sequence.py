"""Sequence: layers applied one after another, y = f_k(... f_1(x)); itself a layer, so they nest."""

from __future__ import annotations

import functools
import warnings

import attrs
import numpy as np

from lamina.layers.errors import ShapeError, format_shape
from lamina.layers.protocol import takes_keyword
from lamina.layers.tree import count_parameters, parameters


def _as_layers(layers) -> tuple:
    layers = tuple(layers)
    if not layers:
        raise ValueError("Sequence needs at least one layer, got none")
    for i, layer in enumerate(layers):
        if not (attrs.has(type(layer)) and hasattr(layer, "forward") and hasattr(layer, "backward")):
            raise TypeError(f"Sequence: layers[{i}] must be a layer record (an attrs class with forward "
                            f"and backward), got {type(layer).__name__}")
    return layers


def describe(layer) -> str:
    """A short name for messages: the repr, or the class name when the repr is long."""
    if isinstance(layer, Sequence):
        n = len(layer.layers)
        return f"Sequence({n} layer{'s' if n != 1 else ''})"
    text = repr(layer)
    return text if len(text) <= 60 else type(layer).__name__


def _check_numeric(x) -> np.ndarray:
    x = np.asarray(x)
    if x.dtype.kind not in "fiu":
        raise TypeError(f"model input must be a float or integer array, got dtype {x.dtype}")
    return x


def _check_finite(x: np.ndarray, what: str = "model input") -> None:
    """Raise ValueError naming the first row with NaN or inf.

    One BLAS pass first: the column sums ones @ x are finite unless x holds NaN or inf (or a
    sum overflows); only then an exact scan.
    """
    if x.dtype.kind != "f":
        return
    flat = x.reshape(len(x), -1)
    with np.errstate(over="ignore", invalid="ignore"):
        column_sums = np.ones(len(flat), x.dtype) @ flat
    if not np.isfinite(column_sums).all():
        bad = ~np.isfinite(flat).all(axis=1)
        if bad.any():
            row = int(np.argmax(bad))
            raise ValueError(f"{what} row {row} holds NaN or inf; expected finite values")


def _bound(layer, method: str, previous):
    """``layer.method`` with the keywords this Sequence passes every batch bound once.

    check=False for a nested model (its input was checked on entry here); overwrite=True for a
    layer that takes it when the layer before declares ``fresh_outputs``: its output is then
    dead after this layer has read it (see layers/protocol.py).
    """
    keywords = {}
    if takes_keyword(type(layer), method, "check"):
        keywords["check"] = False
    # the promise is the class's own: a subclass (which may keep y in its cache) does not inherit it
    if vars(type(previous)).get("fresh_outputs") is True and takes_keyword(type(layer), method, "overwrite"):
        keywords["overwrite"] = True
    bound = getattr(layer, method)
    return functools.partial(bound, **keywords) if keywords else bound


@attrs.frozen(repr=False)
class Sequence:
    """The layers in order; ``forward`` (n, ...) -> (n, ...), caches and gradients are per layer."""

    layers: tuple = attrs.field(converter=_as_layers)
    dtype: np.dtype | None = attrs.field(init=False, eq=False, repr=False)
    needs_rng: bool = attrs.field(init=False, eq=False, repr=False)
    # per layer, looked up once rather than per batch: (forward, whether it needs the rng), with
    # check=False (a nested model) and overwrite=True (after a fresh_outputs layer) bound as _bound
    # decides; (backward, whether it takes input_grad, whether it takes out)
    _forwards: tuple = attrs.field(init=False, eq=False, repr=False)
    _calls: tuple = attrs.field(init=False, eq=False, repr=False)  # the same for inference (None: no __call__)
    _backwards: tuple = attrs.field(init=False, eq=False, repr=False)

    def __attrs_post_init__(self):
        dtypes = {array.dtype for array in parameters(self)}
        if len(dtypes) > 1:
            raise TypeError(f"Sequence: all parameters must share one dtype, got {sorted(map(str, dtypes))}")
        object.__setattr__(self, "dtype", dtypes.pop() if dtypes else None)
        needs_rng = tuple(bool(getattr(layer, "needs_rng", False)) for layer in self.layers)
        object.__setattr__(self, "needs_rng", any(needs_rng))
        object.__setattr__(self, "_forwards", tuple(
            (_bound(layer, "forward", previous), rng)
            for layer, previous, rng in zip(self.layers, (None, *self.layers), needs_rng)))
        object.__setattr__(self, "_calls", tuple(
            _bound(layer, "__call__", previous) if callable(layer) else None
            for layer, previous in zip(self.layers, (None, *self.layers))))
        object.__setattr__(self, "_backwards", tuple(
            (layer.backward, takes_keyword(type(layer), "backward", "input_grad"),
             takes_keyword(type(layer), "backward", "out")) for layer in self.layers))
        self.output_shape(None)

    def __repr__(self) -> str:
        inner = ",\n".join("    " + repr(layer).replace("\n", "\n    ") for layer in self.layers)
        return f"Sequence([\n{inner},\n])"

    def _source(self, i: int) -> str | None:
        return None if i == 0 else f"layers[{i - 1}] {describe(self.layers[i - 1])}"

    def output_shape(self, input_shape):
        """Per-sample output shape for a per-sample input shape (None: unknown); checks that the layers fit."""
        shape = input_shape
        for i, layer in enumerate(self.layers):
            if not hasattr(layer, "output_shape"):
                shape = None
                continue
            try:
                shape = layer.output_shape(shape)
            except ShapeError as error:
                raise error.within(f"layers[{i}]", self._source(i)) from None
        return shape

    def _entry(self, x, check: bool = True, finite: bool = True) -> np.ndarray:
        """The batch as an array of the model's dtype (one cast); with ``check``, non-numeric, empty or (``finite``) non-finite input is refused."""
        if check:
            x = _check_numeric(x)
            if x.ndim == 0 or x.shape[0] == 0 or x.size == 0:
                raise ShapeError(describe(self), "a batch with at least one sample and one feature", str(x.shape))
        # without parameters (activations only, say) a float batch keeps its dtype
        dtype = self.dtype or (x.dtype if x.dtype.kind == "f" else np.dtype(np.float64))
        if x.dtype != dtype:
            x = x.astype(dtype)
        if check and finite:
            _check_finite(x)
        return x

    def forward(self, x, *, rng: np.random.Generator | None = None, check: bool = True):
        """(n, ...) -> (y, cache); ``rng`` goes to the layers with ``needs_rng``.

        ``check=False`` skips the entry checks (for data checked once, as ``fit`` does); the
        cast to the model's dtype stays.
        """
        x = self._entry(x, check)
        caches = []
        for i, (forward, needs_rng) in enumerate(self._forwards):
            try:
                x, cache = forward(x, rng=rng) if needs_rng else forward(x)
            except ShapeError as error:
                raise error.within(f"layers[{i}]", self._source(i)) from None
            caches.append(cache)
        return x, tuple(caches)

    def __call__(self, x, *, check: bool = True) -> np.ndarray:
        """Inference: the output only, no cache, no randomness; ``check=False`` as in ``forward``.

        Here the check for NaN and inf looks at the output, which is small: when it is not
        finite, the input is scanned and a NaN or inf row named; when the input is finite, the
        model itself overflowed and a RuntimeWarning says so. (An inf the model maps to a finite
        number, as ReLU does -inf, passes: the output is what that row computes. ``forward``
        scans its input first and refuses it.)
        """
        x = self._entry(x, check, finite=False)
        if not check:
            return self._infer(x)
        with np.errstate(over="ignore", invalid="ignore"):  # bad input is reported below, not as a warning
            y = self._infer(x)
        if y.dtype.kind != "f" or not np.isfinite(y).all():  # (an integer output says nothing: scan)
            _check_finite(x)  # names a non-finite input row
            if y.dtype.kind == "f":
                warnings.warn("the model's output holds NaN or inf for a finite input: the model overflows",
                              RuntimeWarning, stacklevel=2)
        return y

    def _infer(self, x) -> np.ndarray:
        for i, (call, (forward, needs_rng)) in enumerate(zip(self._calls, self._forwards)):
            try:
                if call is not None:
                    x = call(x)
                elif needs_rng:
                    x = forward(x, rng=None)[0]
                else:
                    x = forward(x)[0]
            except ShapeError as error:
                raise error.within(f"layers[{i}]", self._source(i)) from None
        return x

    def backward(self, cache: tuple, dy: np.ndarray, *, input_grad: bool = True, out: "Sequence | None" = None):
        """dy -> (dx, gradients as a Sequence); ``input_grad=False`` gives dx None and skips it where the first layer can.

        ``out``: dead gradients of this Sequence donated by the caller (``fit``); the layers
        whose ``backward`` takes ``out`` write their gradients into its buffers.
        """
        if not isinstance(cache, tuple) or len(cache) != len(self.layers):
            raise ValueError(f"Sequence.backward needs the cache of this Sequence's forward "
                             f"({len(self.layers)} entries), got {type(cache).__name__}")
        grads = [None] * len(self.layers)
        into = out.layers if out is not None else None
        wrote_all = into is not None  # whether every layer wrote into the donated record
        for i in range(len(self.layers) - 1, -1, -1):
            backward, takes_input_grad, takes_out = self._backwards[i]
            if i == 0 and not input_grad and takes_input_grad:
                dy, grads[i] = (backward(cache[i], dy, input_grad=False, out=into[i]) if into is not None and takes_out
                                else backward(cache[i], dy, input_grad=False))
            else:
                dy, grads[i] = backward(cache[i], dy, out=into[i]) if into is not None and takes_out \
                    else backward(cache[i], dy)
            wrote_all = wrote_all and grads[i] is into[i]
        if wrote_all:
            return (dy if input_grad else None), out
        return (dy if input_grad else None), Sequence(grads)

    def summary(self, input_shape=None) -> str:
        """One line per layer: path, layer, output shape and parameter count; then the total."""
        rows, shape = [], input_shape
        for i, layer in enumerate(self.layers):
            shape = layer.output_shape(shape) if hasattr(layer, "output_shape") else None
            rows.append((f"layers[{i}]", describe(layer),
                         "?" if shape is None else format_shape(shape), f"{count_parameters(layer):,}"))
        header = ("path", "layer", "output", "parameters")
        widths = [max(len(r[k]) for r in [header, *rows]) for k in range(4)]
        line = lambda r: "  ".join([r[0].ljust(widths[0]), r[1].ljust(widths[1]),
                                    r[2].ljust(widths[2]), r[3].rjust(widths[3])]).rstrip()
        total = f"total: {count_parameters(self):,} parameters"
        if self.dtype is not None:
            total += f" ({self.dtype})"
        return "\n".join([line(header), *map(line, rows), total])
