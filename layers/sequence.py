"""Sequence: layers applied one after another, y = f_k(... f_1(x)); itself a layer, so they nest."""

from __future__ import annotations

import functools

import attrs

from lamina.layers.combinator import PATHED, Combinator, as_children
from lamina.layers.layer import describe
from lamina.layers.mode import Mode
from lamina.layers.records.registry import register


@functools.lru_cache(maxsize=None)
def _paths(n: int) -> tuple:
    """("layers[0]", ..., "layers[n - 1]")."""
    return tuple(f"layers[{i}]" for i in range(n))


@register
@attrs.frozen(repr=False, init=False)
class Sequence(Combinator):
    """The layers in order (``model.layers[i]``); (n, ...) -> (n, ...); caches and gradients per layer."""

    layers: tuple = attrs.field(converter=as_children("Sequence", "layer", "layers"))

    def __init__(self, layers, *more):
        if more:
            raise TypeError(f"Sequence takes one list of layers: Sequence([a, b, ...]), "
                            f"not Sequence(a, b, ...) "
                            f"(got {1 + len(more)} arguments)")
        self.__attrs_init__(layers)

    def __repr__(self) -> str:
        inner = ",\n".join("    " + repr(layer).replace("\n", "\n    ") for layer in self.layers)
        return f"Sequence([\n{inner},\n])"

    def describe(self) -> str:
        n = len(self.layers)
        return f"Sequence({n} layer{'s' if n != 1 else ''})"

    def children(self) -> tuple:
        return tuple(zip(_paths(len(self.layers)), self.layers))

    def source_of(self, i: int) -> str | None:
        return None if i == 0 else f"layers[{i - 1}] {describe(self.layers[i - 1])}"

    def child_shapes(self, input_shape) -> list:
        shapes, shape = [], input_shape
        for i in range(len(self.layers)):
            output = self.child_shape(i, shape)
            shapes.append((shape, output))
            shape = output
        return shapes

    def output_from(self, input_shape, outputs):
        return outputs[-1]

    def forward_unchecked(self, x, mode: Mode):
        caches = []
        if mode.observe is None:   # forward_child's work without an observer, inline: the path on an error
            i, keep, kids = 0, mode.keep_cache, self._kids
            try:
                for i, forward in enumerate(self._forwards):
                    x, cache = forward(kids[i], x, mode)
                    if keep:
                        caches.append(cache)
            except PATHED as error:
                raise error.within(self._paths[i], self.source_of(i)) from None
            return x, tuple(caches)
        for i in range(len(self.layers)):
            x, cache = self.forward_child(i, x, mode)
            caches.append(cache)
        return x, tuple(caches)

    def backward(self, cache: tuple, dy, mode: Mode):
        """dy -> (dx, gradients as a Sequence); the first layer gets the caller's input_grad, others True."""
        if not isinstance(cache, tuple) or len(cache) != len(self.layers):
            raise ValueError(f"Sequence.backward needs the cache of this Sequence's forward "
                             f"({len(self.layers)} entries), got {type(cache).__name__}")
        inner = mode.needing_input_grad()
        grads = [None] * len(self.layers)
        for i in range(len(self.layers) - 1, -1, -1):
            dy, grads[i] = self.backward_child(i, cache[i], dy, inner if i else mode)
        return dy, self.gradient_record(layers=tuple(grads))
