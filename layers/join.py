"""Join: a tuple of arrays to one array, joined on the last axis ("concat") or added ("sum")."""

from __future__ import annotations

import attrs
import numpy as np

from lamina.layers.errors import LayerError, ShapeError, format_shape
from lamina.layers.layer import Layer
from lamina.layers.mode import Mode
from lamina.layers.records.registry import register

HOWS = ("concat", "sum")


def _input(i: int) -> str:
    return f"input {i}"


def joined_shape(layer: str, how: str, shapes: list, part=_input, every: str = "every input"):
    """The per-sample shape of ``how``-joined parts of ``shapes`` (None: unknown); a ShapeError naming the
    first part (``part(i)``) that does not fit the first one."""
    if any(shape is None for shape in shapes):
        return None
    shapes = [tuple(shape) for shape in shapes]
    first = shapes[0]
    for i, shape in enumerate(shapes):
        if how == "sum" and shape != first:
            raise ShapeError(layer, f"{every} shaped like {part(0)}'s {format_shape(first)}",
                             format_shape(shape), source=part(i))
        if how == "concat" and (len(shape) == 0 or len(shape) != len(first) or shape[:-1] != first[:-1]):
            raise ShapeError(layer, f"{every} shaped like {part(0)}'s {format_shape((*first[:-1], '...'))} "
                             f"but for the last axis", format_shape(shape), source=part(i))
    if how == "sum":
        return first
    if any(shape[-1] is None for shape in shapes):
        return (*first[:-1], None)
    return (*first[:-1], sum(shape[-1] for shape in shapes))


def join(layer: str, how: str, ys, part=_input, every: str = "every input"):
    """(the joined array, the cache its backward needs) for the tuple ``ys``."""
    if any(y.shape[1:] != ys[0].shape[1:] for y in ys[1:]) or how == "concat" and ys[0].ndim < 2:
        joined_shape(layer, how, [y.shape[1:] for y in ys], part, every)
    bad = next((i for i, y in enumerate(ys) if len(y) != len(ys[0])), None)
    if bad is not None:
        raise ShapeError(layer, f"{every} to keep the batch's {len(ys[0])} samples", f"{len(ys[bad])} samples",
                         source=part(bad))
    if how == "sum":
        total = ys[0] + ys[1] if len(ys) > 1 else ys[0].copy()
        for y in ys[2:]:
            total += y
        return total, len(ys)
    return np.concatenate(ys, axis=-1), tuple(y.shape[-1] for y in ys)


def split(how: str, cache, dy) -> tuple:
    """dy of the joined array -> the tuple of its parts' gradients."""
    if how == "sum":
        return (dy,) * cache
    starts = np.cumsum((0,) + cache)
    return tuple(dy[..., a:b] for a, b in zip(starts[:-1], starts[1:]))


def _check_how(instance, attribute, how) -> None:
    if how not in HOWS:
        raise LayerError("Join", f"how must be 'concat' (on the last axis) or 'sum', got {how!r}")


@register
@attrs.frozen
class Join(Layer):
    """A tuple (x_0, ..., x_k) -> one array: joined on the last axis ("concat") or added ("sum")."""

    how: str = attrs.field(default="concat", validator=_check_how)

    def describe(self) -> str:
        return f"Join({self.how!r})"

    def output_shape(self, input_shape):
        """A list of per-sample shapes (a tuple input) -> the joined shape."""
        if input_shape is None:
            return None
        if type(input_shape) is not list:
            raise ShapeError(self.describe(), "a tuple of inputs (x0, x1, ...)", format_shape(input_shape))
        return joined_shape(self.describe(), self.how, input_shape)

    def forward(self, x, mode: Mode):
        """(x_0 (n, ..., a), x_1 (n, ..., b), ...) -> (n, ..., a + b + ...) or their sum (n, ...)."""
        if type(x) is not tuple:
            raise ShapeError(self.describe(), "a tuple of inputs (x0, x1, ...)",
                             f"one array {format_shape(np.shape(x)[1:])}")
        return join(self.describe(), self.how, x)

    def backward(self, cache, dy, mode: Mode):
        """dy -> (the tuple of the inputs' gradients, Join)."""
        return split(self.how, cache, dy), self
