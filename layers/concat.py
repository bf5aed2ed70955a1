"""Concat: every branch gets the same x; y is their outputs joined on the last axis (Inception-style)."""

from __future__ import annotations

import attrs
import numpy as np

from lamina.layers.combinator import Combinator
from lamina.layers.errors import ShapeError, format_shape
from lamina.layers.mode import Mode
from lamina.layers.records.registry import register


def _as_branches(branches) -> tuple:
    if attrs.has(type(branches)):
        raise TypeError(f"Concat takes a list of branches: Concat([a, b, ...]), got a single {type(branches).__name__}")
    branches = tuple(branches)
    if not branches:
        raise ValueError("Concat needs at least one branch, got none")
    return branches


@register
@attrs.frozen(repr=False)
class Concat(Combinator):
    """y = [b_1(x), ..., b_k(x)] joined on the last axis; dx = sum of the branches' input gradients."""

    branches: tuple = attrs.field(converter=_as_branches)

    def __init__(self, branches, *more):
        if more:
            raise TypeError(f"Concat takes one list of branches: Concat([a, b, ...]), not Concat(a, b, ...) "
                            f"(got {1 + len(more)} arguments)")
        self.__attrs_init__(branches)

    def __repr__(self) -> str:
        inner = ",\n".join("    " + repr(branch).replace("\n", "\n    ") for branch in self.branches)
        return f"Concat([\n{inner},\n])"

    def describe(self) -> str:
        n = len(self.branches)
        return f"Concat({n} branch{'es' if n != 1 else ''})"

    def children(self) -> tuple:
        return tuple((f"branches[{i}]", branch) for i, branch in enumerate(self.branches))

    def _child_records(self) -> tuple:
        return self.branches

    def _child_shapes(self, input_shape) -> list:
        return [(input_shape, self.child_shape(i, input_shape)) for i in range(len(self.branches))]

    def _output(self, input_shape, shapes):
        outputs = [shape for _, shape in shapes]
        if any(shape is None for shape in outputs):
            return None
        self._check_joinable([tuple(shape) for shape in outputs])
        if any(shape[-1] is None for shape in outputs):
            return (*outputs[0][:-1], None)
        return (*outputs[0][:-1], sum(shape[-1] for shape in outputs))

    def _check_joinable(self, outputs) -> None:
        """Every branch's output has the first one's shape but for the last axis."""
        first = outputs[0]
        for i, shape in enumerate(outputs):
            if len(shape) == 0 or len(shape) != len(first) or shape[:-1] != first[:-1]:
                raise ShapeError(self.describe(), f"every branch's output shaped like branches[0]'s "
                                 f"{format_shape((*first[:-1], '...'))} but for the last axis",
                                 format_shape(shape), source=f"branches[{i}]")

    def _forward(self, x, mode: Mode):
        ys, caches = [], []
        for i in range(len(self.branches)):
            y, cache = self._run(i, x, mode)
            ys.append(y)
            caches.append(cache)
        if any(y.shape[:-1] != ys[0].shape[:-1] or y.ndim != ys[0].ndim for y in ys):
            self._check_joinable([y.shape[1:] for y in ys])
            i = next(i for i, y in enumerate(ys) if len(y) != len(ys[0]))      # only the batch axis differs
            raise ShapeError(self.describe(), f"every branch to keep the batch's {len(ys[0])} samples",
                             f"{len(ys[i])} samples", source=f"branches[{i}]")
        widths = tuple(y.shape[-1] for y in ys)
        return np.concatenate(ys, axis=-1), (tuple(caches), widths)

    def backward(self, cache, dy, mode: Mode):
        """dy (n, ..., sum of widths) -> (sum of the branches' dx, gradients as a Concat)."""
        caches, widths = cache
        dx, grads, start = None, [], 0
        for i, width in enumerate(widths):
            d, g = self._run_back(i, caches[i], dy[..., start:start + width], mode)
            start += width
            grads.append(g)
            if d is not None:
                dx = d if dx is None else dx + d
        return dx, self._gradients(branches=tuple(grads))
