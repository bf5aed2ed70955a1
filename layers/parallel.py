"""Parallel: a tuple of k inputs to a tuple of k outputs, branch i on input i."""

from __future__ import annotations

import attrs
import numpy as np

from lamina.layers.combinator import Combinator
from lamina.layers.errors import ShapeError, format_shape
from lamina.layers.fork import as_branches, branches_describe, branches_repr
from lamina.layers.mode import Mode
from lamina.layers.records.registry import register


@register
@attrs.frozen(repr=False)
class Parallel(Combinator):
    """(x_1, ..., x_k) -> (b_1(x_1), ..., b_k(x_k)); dx the tuple of the branches' input gradients."""

    branches: tuple = attrs.field(converter=as_branches("Parallel"))

    def __repr__(self) -> str:
        return branches_repr("Parallel", self.branches)

    def describe(self) -> str:
        return branches_describe("Parallel", self.branches)

    def children(self) -> tuple:
        return tuple((f"branches[{i}]", branch) for i, branch in enumerate(self.branches))

    def source_of(self, i: int) -> str | None:
        return f"input {i}"

    def _refuse(self, got: str):
        k = len(self.branches)
        raise ShapeError(self.describe(), f"a tuple of {k} inputs ({', '.join(f'x{i}' for i in range(k))}), "
                         f"one per branch", got)

    def child_inputs(self, input_shape) -> list:
        if input_shape is None:
            return [None] * len(self.branches)
        if type(input_shape) is not list:
            self._refuse(f"one input {format_shape(input_shape)}")
        if len(input_shape) != len(self.branches):
            self._refuse(f"{len(input_shape)} inputs")
        return list(input_shape)

    def output_from(self, input_shape, outputs):
        return list(outputs)

    def forward_unchecked(self, x, mode: Mode):
        if type(x) is not tuple:
            self._refuse(f"one array {format_shape(np.shape(x)[1:])}")
        if len(x) != len(self.branches):
            self._refuse(f"a tuple of {len(x)}")
        ys, caches = zip(*[self.forward_child(i, x[i], mode) for i in range(len(x))])
        return tuple(ys), tuple(caches)

    def backward(self, cache, dy, mode: Mode):
        """dy (a tuple, one part per branch) -> (the tuple of the branches' dx, gradients as a Parallel)."""
        dxs, grads = zip(*[self.backward_child(i, cache[i], dy[i], mode) for i in range(len(self.branches))])
        return tuple(dxs), self.gradient_record(branches=tuple(grads))
