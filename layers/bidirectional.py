"""Bidirectional: two recurrent layers, the second reading the sequence backwards, joined on the last axis."""

from __future__ import annotations

import attrs
import numpy as np

from lamina.layers.combinator import Combinator
from lamina.layers.errors import ShapeError, format_shape
from lamina.layers.mode import Mode
from lamina.layers.records.registry import register


@register
@attrs.frozen(repr=False)
class Bidirectional(Combinator):
    """y = [forward_layer(x), reversed(backward_layer(reversed(x)))] joined on the last axis, reversed along
    time (axis 1); x (n, t, f) -> (n, t, h_forward + h_backward), as torch's ``bidirectional=True``."""

    forward_layer: object
    backward_layer: object

    @classmethod
    def init(cls, rng: np.random.Generator, kind: type, n_in: int, n_hidden: int, *, dtype=np.float32,
             **options) -> "Bidirectional":
        """Two fresh ``kind`` layers (layers.LSTM, layers.GRU or layers.RNN; ``options`` go to its init)."""
        if not isinstance(kind, type) or not hasattr(kind, "init"):
            raise TypeError(f"Bidirectional.init: kind must be a layer class with init, such as layers.LSTM, "
                            f"got {kind!r}")
        return cls(*(kind.init(rng, n_in, n_hidden, dtype=dtype, **options) for _ in range(2)))

    def __repr__(self) -> str:
        parts = (repr(child).replace("\n", "\n    ") for child in (self.forward_layer, self.backward_layer))
        return "Bidirectional(\n    {},\n    {},\n)".format(*parts)

    def describe(self) -> str:
        return "Bidirectional"

    def children(self) -> tuple:
        return (("forward_layer", self.forward_layer), ("backward_layer", self.backward_layer))

    def output_from(self, input_shape, outputs):
        ahead, behind = outputs
        if ahead is None or behind is None:
            return None
        for path, shape in (("forward_layer", ahead), ("backward_layer", behind)):
            if len(shape) != 2:
                raise ShapeError(self.describe(), "each layer's output a sequence (n, t, features)",
                                 format_shape(shape), source=path)
        width = None if None in (ahead[1], behind[1]) else ahead[1] + behind[1]
        return (ahead[0] if ahead[0] is not None else behind[0], width)

    def forward_unchecked(self, x, mode: Mode):
        ahead, ahead_cache = self.forward_child(0, x, mode)
        behind, behind_cache = self.forward_child(1, x[:, ::-1], mode)
        return np.concatenate([ahead, behind[:, ::-1]], axis=-1), (ahead_cache, behind_cache, ahead.shape[-1])

    def backward(self, cache, dy, mode: Mode):
        """dy (n, t, h_forward + h_backward) -> (the directions' dx summed, gradients as a Bidirectional)."""
        ahead_cache, behind_cache, width = cache
        dx, ahead = self.backward_child(0, ahead_cache, dy[..., :width], mode)
        d_behind, behind = self.backward_child(1, behind_cache, dy[:, ::-1, width:], mode)
        if dx is not None and d_behind is not None:
            dx = dx + d_behind[:, ::-1]
        return dx, self.gradient_record(forward_layer=ahead, backward_layer=behind)
