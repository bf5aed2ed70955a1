"""What every combinator does for its children, written once and public: paths in errors, the mode,
observation, shape checks when built, sharing, the entry checks of the outermost call, and the summary's rows.

A combinator (the built-ins and a user's own) is a frozen attrs record that subclasses ``Combinator``
and writes four things:

- ``children()``: ((local path, child), ...) in forward order, e.g. (("a", self.a), ("b", self.b));
- ``output_from(input_shape, outputs)``: its output shape from its children's output shapes
  (a ShapeError when they cannot be combined); ``child_inputs(input_shape)`` gives each child's
  input shape (every child gets the combinator's input unless it says otherwise);
- ``forward_unchecked(x, mode) -> (y, cache)``: running child i through ``self.forward_child(i, x, mode)``;
- ``backward(cache, dy, mode) -> (dx, grads)``: through ``self.backward_child(i, cache_i, dy_i, mode)``,
  returning ``self.gradient_record(field=child gradients, ...)`` (``add_input_grads`` sums input gradients).

The base class gives ``forward`` (the outermost call's entry checks, then ``forward_unchecked``),
``output_shape``, ``summary`` and the checks when built (the children are layers, one dtype, no
shared record with buffers).
"""

from __future__ import annotations

import functools

import attrs
import numpy as np

from lamina.layers.errors import LayerError, ShapeError, format_shape
from lamina.layers.layer import (Layer, check_layer, describe, entry, forward_of, output_shape_of, takes_ids,
                                 wrong_gradients)
from lamina.layers.mode import Mode
from lamina.layers.records.tree import (buffers, check_sharing, count_first_uses, count_parameters,
                                        first_paths, parameters)

PATHED = (ShapeError, LayerError)


@functools.lru_cache(maxsize=None)
def _field_names(cls: type) -> tuple:
    return tuple(field.name for field in attrs.fields(cls))


class _Prefixed:
    """An observer seen from inside a child combinator: paths get the child's path in front."""

    __slots__ = ("observe", "prefix")

    def __init__(self, observe, prefix: str):
        self.observe, self.prefix = observe, prefix

    def __call__(self, path, layer, y):
        self.observe(f"{self.prefix}.{path}", layer, y)


def _derived():
    return attrs.field(init=False, eq=False, repr=False)


def add_input_grads(*grads):
    """The sum of input gradients, None ones left out (None when all are); tuples (a tuple input) part by
    part."""
    given = [g for g in grads if g is not None]
    if not given:
        return None
    if type(given[0]) is tuple:
        return tuple(add_input_grads(*parts) for parts in zip(*given))
    total = given[0]
    for g in given[1:]:
        total = total + g
    return total


def as_children(who: str, noun: str, nouns: str):
    """The converter of a combinator's list field: a non-empty tuple of layers (``who([a, b, ...])``)."""
    def convert(value) -> tuple:
        if attrs.has(type(value)):
            raise TypeError(f"{who} takes a list of {nouns}: {who}([a, b, ...]), got a single "
                            f"{type(value).__name__}")
        value = tuple(value)
        if not value:
            raise ValueError(f"{who} needs at least one {noun}, got none")
        return value
    return convert


def _shape_text(shape) -> str:
    """'(n, 10)', '?' when unknown, '[(n, 10), (n, 4)]' for a tuple output (a list of shapes)."""
    if type(shape) is list:
        return "[" + ", ".join(map(_shape_text, shape)) + "]"
    return "?" if shape is None else format_shape(shape)


@attrs.frozen(repr=False)
class Combinator(Layer):
    """Base of Sequence, Residual, Concat, Fork, Parallel (and of any combinator a user writes): subclass it
    with
    ``@attrs.frozen``; see the module's docstring for the four methods to write."""

    dtype: np.dtype | None = _derived()   # the dtype every array of the combinator shares (None: no arrays)
    _paths: tuple = _derived()            # each child's local path
    _kids: tuple = _derived()             # the children
    _forwards: tuple = _derived()         # each child's class's unchecked forward: f(child, x, mode)
    _nested: tuple = _derived()           # whether each child is a combinator

    def __attrs_post_init__(self):
        self._build()

    # ---- what a combinator writes -----------------------------------------------------------------

    def children(self) -> tuple:
        """((local path, child), ...) in forward order."""
        raise NotImplementedError(f"{type(self).__name__}: a combinator writes "
                                  f"children() -> ((path, child), ...)")

    def child_inputs(self, input_shape) -> list:
        """Each child's per-sample input shape for the combinator's (by default every child gets it)."""
        return [input_shape] * len(self._kids)

    def output_from(self, input_shape, outputs: list):
        """The combinator's output shape from its children's (None: unknown); a ShapeError when they do not
        combine."""
        raise NotImplementedError(f"{type(self).__name__}: a combinator writes "
                                  f"output_from(input_shape, outputs)")

    def forward_unchecked(self, x, mode: Mode):
        """(y, cache) without the entry checks (the outermost call made them)."""
        raise NotImplementedError(f"{type(self).__name__}: a combinator writes forward_unchecked(x, mode)")

    def source_of(self, i: int) -> str | None:
        """What gives child i its input, for messages (None: the combinator's own input)."""
        return None

    # ---- building ----------------------------------------------------------------------------------

    def _build(self) -> None:
        """Check the children and their wiring; note the dtype and each child's forward."""
        kids = self.children()
        for path, child in kids:
            check_layer(child, f"{type(self).__name__}: {path}")
        dtypes = {array.dtype for array in parameters(self) + buffers(self)}
        if len(dtypes) > 1:
            raise TypeError(f"{type(self).__name__}: all parameters must share one dtype, got "
                            f"{sorted(map(str, dtypes))}{self._dtype_culprit(dtypes)}")
        check_sharing(self, type(self).__name__)
        object.__setattr__(self, "dtype", dtypes.pop() if dtypes else None)
        object.__setattr__(self, "_paths", tuple(path for path, _ in kids))
        object.__setattr__(self, "_kids", tuple(child for _, child in kids))
        object.__setattr__(self, "_forwards", tuple(forward_of(type(child)) for _, child in kids))
        object.__setattr__(self, "_nested", tuple(isinstance(child, Combinator) for _, child in kids))
        self.output_shape(None)

    def gradient_record(self, **children):
        """The gradient record of this combinator: its class with ``children`` (the children's gradient
        records, of the children's classes) in their fields, built without checking again (it has this
        record's structure: the children's backward made it); its other fields are this record's."""
        grads = object.__new__(type(self))
        for name in _field_names(type(self)):
            object.__setattr__(grads, name, children[name] if name in children else getattr(self, name))
        object.__setattr__(grads, "_kids", tuple([child for _, child in grads.children()]))
        return grads

    def _dtype_culprit(self, dtypes) -> str:
        counts = {}
        for path, child in self.children():
            for array in parameters(child) + buffers(child):
                counts.setdefault(array.dtype, []).append(path)
        minority = min(counts, key=lambda d: len(set(counts[d])))
        paths = list(dict.fromkeys(counts[minority]))
        return f" ({', '.join(paths)} {'is' if len(paths) == 1 else 'are'} {minority})"

    # ---- shapes ------------------------------------------------------------------------------------

    def child_shape(self, i: int, input_shape):
        """Child i's output shape for ``input_shape`` (None: unknown); a ShapeError gets the child's path."""
        try:
            return output_shape_of(self._kids[i], input_shape)
        except PATHED as error:
            raise error.within(self._paths[i], self.source_of(i)) from None

    def child_shapes(self, input_shape) -> list:
        """[(input shape, output shape)] of each child for the combinator's input shape."""
        return [(shape, self.child_shape(i, shape)) for i, shape in enumerate(self.child_inputs(input_shape))]

    def output_shape(self, input_shape):
        """Per-sample output shape for a per-sample input shape (None: unknown); checks the children fit."""
        return self.output_from(input_shape, [shape for _, shape in self.child_shapes(input_shape)])

    # ---- running a child ---------------------------------------------------------------------------

    def forward_child(self, i: int, x, mode: Mode):
        """Child i's forward (unchecked), with its path on errors and ``mode.observe`` told of its output."""
        try:
            if mode.observe is None:
                result = self._forwards[i](self._kids[i], x, mode)
                return result if mode.keep_cache else (result[0], None)
            inner = mode
            if self._nested[i]:
                inner = attrs.evolve(mode, observe=_Prefixed(mode.observe, self._paths[i]))
            y, cache = self._forwards[i](self._kids[i], x, inner)
            mode.observe(self._paths[i], self._kids[i], y)
            return y, (cache if mode.keep_cache else None)
        except PATHED as error:
            raise error.within(self._paths[i], self.source_of(i)) from None

    def backward_child(self, i: int, cache, dy, mode: Mode):
        """Child i's backward, with its path on errors; dx must come back unless mode.input_grad is False
        or the child takes ids (which have no gradient: dx None, passed on)."""
        child = self._kids[i]
        try:
            dx, grads = child.backward(cache, dy, mode)
        except PATHED as error:
            raise error.within(self._paths[i]) from None
        if type(grads) is not type(child):
            raise TypeError(wrong_gradients(child, grads, self._paths[i]))
        if dx is None and mode.input_grad and not takes_ids(child):
            raise TypeError(f"{self._paths[i]} {describe(child)}: backward returned dx None, but the mode "
                            f"asks for the input gradient (mode.input_grad is True)")
        return dx, grads

    # ---- the outermost call ------------------------------------------------------------------------

    def forward(self, x, mode: Mode):
        """(n, ...) -> (y, cache); the outermost call casts and checks x (nested ones never check again)."""
        return self.forward_unchecked(entry(self, x, dtype=self.dtype), mode)

    # ---- the summary -------------------------------------------------------------------------------

    def summary_rows(self, input_shape, prefix: str = "", depth: int = 0, first: dict | None = None) -> list:
        """(path, layer, output shape, parameters) per layer inside, nested ones indented; a later use of a
        shared
        record reads ``shared with <first path>`` with 0 parameters. ``first``: ``first_paths`` of the
        model."""
        first = first_paths(self, prefix) if first is None else first
        rows = []
        for path, child, (shape_in, shape) in zip(self._paths, self._kids, self.child_shapes(input_shape)):
            full = f"{prefix}.{path}" if prefix else path
            indented, name, out = "  " * depth + full, describe(child), _shape_text(shape)
            if first[id(child)] != full and (parameters(child) or buffers(child)):
                rows.append((indented, f"{name}, shared with {first[id(child)] or 'the model'}", out, "0"))
                continue
            rows.append((indented, name, out, f"{count_first_uses(child, full, first):,}"))
            if isinstance(child, Combinator):
                rows.extend(child.summary_rows(shape_in, full, depth + 1, first))
        return rows

    def summary(self, input_shape=None) -> str:
        """One row per layer (nested layers indented): path, layer, output shape, parameter count; then the
        total
        (a shared record counted once)."""
        if input_shape is not None:
            self.output_shape(input_shape)      # the top level's own wiring too (a Residual's identity)
        rows = self.summary_rows(input_shape)
        header = ("path", "layer", "output", "parameters")
        widths = [max(len(r[k]) for r in [header, *rows]) for k in range(4)]

        def line(r):
            return "  ".join([r[0].ljust(widths[0]), r[1].ljust(widths[1]),
                              r[2].ljust(widths[2]), r[3].rjust(widths[3])]).rstrip()

        total = f"total: {count_parameters(self):,} parameters"
        if self.dtype is not None:
            total += f" ({self.dtype})"
        return "\n".join([line(header), *map(line, rows), total])
