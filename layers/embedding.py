"""Embedding: a lookup table of token vectors, ids (n, ...) -> (n, ..., dim), as ``torch.nn.Embedding``."""

from __future__ import annotations

import attrs
import numpy as np

from lamina.layers.errors import LayerError, ShapeError
from lamina.layers.initializers import check_rng, normal
from lamina.layers.layer import Layer
from lamina.layers.mode import Mode
from lamina.layers.records.parameter import param
from lamina.layers.records.registry import register
from lamina.layers.settings import is_int, positive_int


def _check_padding_idx(layer: "Embedding", attribute, value) -> None:
    if layer.weight.ndim != 2:
        raise ShapeError("Embedding", "a 2-D weight (n_tokens, dim)", f"weight of shape {layer.weight.shape}")
    if value is None:
        return
    n_tokens = len(layer.weight)
    if not (is_int(value) and 0 <= value < n_tokens):
        raise ValueError(f"Embedding: padding_idx must be None or an id in [0, {n_tokens}), got {value!r}")


def check_ids(layer, ids: np.ndarray, n_tokens: int) -> None:
    """LayerError unless ``ids`` are integers in [0, n_tokens): float ids refused, the first bad id named."""
    if ids.dtype.kind not in "iu":
        raise LayerError(repr(layer), f"takes integer token ids (n, ...), got dtype {ids.dtype}: pass the "
                                      f"ids as an int array (float ids are refused, never rounded)")
    if ids.size and (np.minimum.reduce(ids, axis=None) < 0 or np.maximum.reduce(ids, axis=None) >= n_tokens):
        position = np.unravel_index(np.argmax((ids < 0) | (ids >= n_tokens)), ids.shape)
        index = ", ".join(str(int(i)) for i in position)
        raise LayerError(repr(layer), f"ids must be in [0, {n_tokens}), but ids[{index}] is "
                                      f"{int(ids[position])} (the first out of range)")


@register
@attrs.frozen(repr=False)
class Embedding(Layer):
    """y[b, ...] = weight[ids[b, ...]]: ids (n, ...) -> (n, ..., dim), weight (n_tokens, dim). The gradient of
    a row is the sum of dy over its occurrences; the ``padding_idx`` row gets none (as torch)."""

    takes_ids = True

    weight: np.ndarray = param()
    padding_idx: int | None = attrs.field(default=None, validator=_check_padding_idx)

    @classmethod
    def init(cls, rng: np.random.Generator, n_tokens: int, dim: int, *, padding_idx: int | None = None,
             dtype=np.float32, init=1.0) -> "Embedding":
        """A fresh table (n_tokens, dim) ~ N(0, 1) as torch (``init``: another std, or "he"/"glorot" with
        fan_in 1); the ``padding_idx`` row zero."""
        check_rng(rng, "Embedding.init", "Embedding.init(rng, n_tokens, dim)")
        n_tokens = positive_int("Embedding.init", "n_tokens", n_tokens)
        dim = positive_int("Embedding.init", "dim", dim)
        weight = normal(rng, (n_tokens, dim), init, 1, dim, dtype, "Embedding.init")
        if is_int(padding_idx) and 0 <= padding_idx < n_tokens:   # else refused below
            weight[padding_idx] = 0
        return cls(weight=weight, padding_idx=padding_idx)

    @property
    def n_tokens(self) -> int:
        return self.weight.shape[0]

    @property
    def dim(self) -> int:
        return self.weight.shape[1]

    def __repr__(self) -> str:
        padding = "" if self.padding_idx is None else f", padding_idx={self.padding_idx}"
        return f"Embedding({self.n_tokens} -> {self.dim}{padding}, {self.weight.dtype})"

    def output_shape(self, input_shape):
        """ids (...) -> (..., dim); unknown ids are taken as sequences (t,): (None, dim)."""
        return (None, self.dim) if input_shape is None else (*input_shape, self.dim)

    def forward(self, ids: np.ndarray, mode: Mode):
        """ids (n, ...) -> y (n, ..., dim); the cache is the ids."""
        check_ids(self, ids, self.n_tokens)
        return np.take(self.weight, ids, axis=0), ids

    def backward(self, ids: np.ndarray, dy: np.ndarray, mode: Mode):
        """dy (n, ..., dim) -> (None: ids have no gradient, gradients: dy summed into each id's row)."""
        if dy.shape != (*ids.shape, self.dim):
            raise ShapeError(f"{self!r}.backward", f"an output gradient of shape {(*ids.shape, self.dim)}",
                             f"one of shape {dy.shape}")
        d_weight = np.zeros(self.weight.shape, dy.dtype)
        flat = ids.reshape(-1)
        order = np.argsort(flat, kind="stable")   # each id's rows of dy side by side, summed in one reduceat
        ordered = flat[order]
        starts = np.flatnonzero(np.concatenate([[True], ordered[1:] != ordered[:-1]]))
        d_weight[ordered[starts]] = np.add.reduceat(dy.reshape(-1, self.dim)[order], starts, axis=0)
        if self.padding_idx is not None:
            d_weight[self.padding_idx] = 0
        return None, attrs.evolve(self, weight=d_weight)
