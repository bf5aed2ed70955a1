"""Fork: every branch gets the same x; the output is the tuple of their outputs."""

from __future__ import annotations

import attrs

from lamina.layers.combinator import Combinator, add_input_grads, as_children
from lamina.layers.mode import Mode
from lamina.layers.records.registry import register


def as_branches(who: str):
    """The converter of a branches field: a non-empty tuple of layers."""
    return as_children(who, "branch", "branches")


def branches_repr(name: str, branches) -> str:
    inner = ",\n".join("    " + repr(branch).replace("\n", "\n    ") for branch in branches)
    return f"{name}([\n{inner},\n])"


def branches_describe(name: str, branches) -> str:
    n = len(branches)
    return f"{name}({n} branch{'es' if n != 1 else ''})"


@register
@attrs.frozen(repr=False)
class Fork(Combinator):
    """x -> (b_1(x), ..., b_k(x)); dx = sum of the branches' input gradients."""

    branches: tuple = attrs.field(converter=as_branches("Fork"))

    def __repr__(self) -> str:
        return branches_repr(type(self).__name__, self.branches)

    def describe(self) -> str:
        return branches_describe(type(self).__name__, self.branches)

    def children(self) -> tuple:
        return tuple((f"branches[{i}]", branch) for i, branch in enumerate(self.branches))

    def output_from(self, input_shape, outputs):
        return list(outputs)

    def forward_unchecked(self, x, mode: Mode):
        ys, caches = zip(*[self.forward_child(i, x, mode) for i in range(len(self.branches))])
        return tuple(ys), tuple(caches)

    def backward(self, cache, dy, mode: Mode):
        """dy (a tuple, one part per branch) -> (sum of the branches' dx, gradients as a Fork)."""
        dxs, grads = zip(*[self.backward_child(i, cache[i], dy[i], mode) for i in range(len(self.branches))])
        return add_input_grads(*dxs), self.gradient_record(branches=tuple(grads))
