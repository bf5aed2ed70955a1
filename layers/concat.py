"""Concat: every branch gets the same x; y is their outputs joined on the last axis (Inception-style): a Fork
followed by Join("concat")."""

from __future__ import annotations

import attrs

from lamina.layers.fork import Fork, as_branches
from lamina.layers.join import join, joined_shape, split
from lamina.layers.mode import Mode
from lamina.layers.records.registry import register


EVERY = "every branch's output"


def _branch(i: int) -> str:
    return f"branches[{i}]"


@register
@attrs.frozen(repr=False)
class Concat(Fork):
    """y = [b_1(x), ..., b_k(x)] joined on the last axis; dx = sum of the branches' input gradients."""

    branches: tuple = attrs.field(converter=as_branches("Concat"))

    def __init__(self, branches, *more):
        if more:
            raise TypeError(f"Concat takes one list of branches: Concat([a, b, ...]), not Concat(a, b, ...) "
                            f"(got {1 + len(more)} arguments)")
        self.__attrs_init__(branches)

    def output_from(self, input_shape, outputs):
        return joined_shape(self.describe(), "concat", outputs, _branch, EVERY)

    def forward_unchecked(self, x, mode: Mode):
        ys, caches = super().forward_unchecked(x, mode)
        y, widths = join(self.describe(), "concat", ys, _branch, EVERY)
        return y, (caches, widths)

    def backward(self, cache, dy, mode: Mode):
        """dy (n, ..., sum of widths) -> (sum of the branches' dx, gradients as a Concat)."""
        caches, widths = cache
        return super().backward(caches, split("concat", widths, dy), mode)
