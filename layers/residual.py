"""Residual: y = inner(x) + shortcut(x), the shortcut the identity when None (a ResNet block)."""

from __future__ import annotations

import attrs

from lamina.layers.combinator import Combinator, add_input_grads
from lamina.layers.errors import ShapeError, format_shape
from lamina.layers.layer import describe
from lamina.layers.mode import Mode
from lamina.layers.records.registry import register


@register
@attrs.frozen(repr=False)
class Residual(Combinator):
    """y = inner(x) + shortcut(x); dx = d inner + d shortcut (dy itself for the identity)."""

    inner: object
    shortcut: object = None

    def __repr__(self) -> str:
        inner = repr(self.inner).replace("\n", "\n    ")
        shortcut = repr(self.shortcut).replace("\n", "\n    ")
        return f"Residual(\n    inner={inner},\n    shortcut={shortcut},\n)"

    def describe(self) -> str:
        return "Residual" if self.shortcut is None else f"Residual(shortcut={describe(self.shortcut)})"

    def children(self) -> tuple:
        shortcut = (("shortcut", self.shortcut),) if self.shortcut is not None else ()
        return (("inner", self.inner),) + shortcut

    def output_from(self, input_shape, outputs):
        inner = outputs[0]
        shortcut = outputs[1] if self.shortcut is not None else input_shape
        if inner is not None and shortcut is not None:
            self._check_same(tuple(inner), tuple(shortcut))
        return inner if inner is not None else shortcut

    def _check_same(self, inner, shortcut) -> None:
        if inner != shortcut:
            what = ("the shortcut's output" if self.shortcut is not None else
                    "the input (the identity shortcut; give a shortcut, e.g. a Dense or 1x1 Conv2D, when "
                    "widths differ)")
            raise ShapeError(self.describe(), f"inner's output shaped like {what}: {format_shape(shortcut)}",
                             format_shape(inner), source="inner")

    def forward_unchecked(self, x, mode: Mode):
        y, inner_cache = self.forward_child(0, x, mode)
        if self.shortcut is None:
            z, shortcut_cache = x, None
        else:
            z, shortcut_cache = self.forward_child(1, x, mode)
        if y.shape != z.shape:
            self._check_same(y.shape[1:], z.shape[1:])
        return y + z, (inner_cache, shortcut_cache)

    def backward(self, cache, dy, mode: Mode):
        """dy -> (d inner + d shortcut, gradients as a Residual)."""
        inner_cache, shortcut_cache = cache
        dx, inner = self.backward_child(0, inner_cache, dy, mode)
        if self.shortcut is None:
            shortcut, d_shortcut = None, dy
        else:
            d_shortcut, shortcut = self.backward_child(1, shortcut_cache, dy, mode)
        dx = add_input_grads(dx, d_shortcut) if mode.input_grad else None
        return dx, self.gradient_record(inner=inner, shortcut=shortcut)
