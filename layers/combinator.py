"""What every combinator does for its children, written once: paths in errors, the mode, observation,
shape checks when built, the entry checks of the outermost call, and the summary's rows.

A combinator is a frozen attrs record that subclasses ``Combinator`` and says, in a few lines,
how its children are wired: ``children()`` (local path, child), ``_child_shapes`` (each child's
input and output shape for an input shape), ``_output(input_shape, shapes)``, ``_forward`` (which
runs each child through ``_run``) and ``backward`` (through ``_run_back``, returning
``self._gradients(...)``).
"""

from __future__ import annotations

import functools

import attrs
import numpy as np

from lamina.layers.errors import LayerError, ShapeError, format_shape
from lamina.layers.layer import Layer, check_layer, describe, entry, forward_of, takes_ids, wrong_gradients
from lamina.layers.mode import Mode
from lamina.layers.records.tree import buffers, count_parameters, parameters

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


@attrs.frozen(repr=False)
class Combinator(Layer):
    """Base of Sequence, Residual and Concat (and of any combinator a user writes): subclass it with ``@attrs.frozen``."""

    dtype: np.dtype | None = _derived()   # the dtype every array of the combinator shares (None: no arrays)
    _paths: tuple = _derived()            # each child's local path
    _kids: tuple = _derived()             # the children
    _forwards: tuple = _derived()         # each child's forward without entry checks
    _nested: tuple = _derived()           # whether each child is a combinator

    def __attrs_post_init__(self):
        self._build()

    # ---- what a combinator says about itself ----------------------------------------------------

    def children(self) -> tuple:
        """((local path, child), ...) in forward order."""
        raise NotImplementedError

    def _child_records(self) -> tuple:
        """The children alone, in forward order."""
        return tuple(child for _, child in self.children())

    def _child_shapes(self, input_shape) -> list:
        """[(input shape, output shape)] per child, through ``child_shape`` (so errors carry paths)."""
        raise NotImplementedError

    def _output(self, input_shape, shapes):
        """The combinator's output shape from its children's shapes (a ShapeError when they cannot be combined)."""
        raise NotImplementedError

    # ---- shared: building ------------------------------------------------------------------------

    def _build(self) -> None:
        """Check the children and their wiring; note the dtype and each child's forward."""
        kids = self.children()
        for path, child in kids:
            check_layer(child, f"{type(self).__name__}: {path}")
        dtypes = {array.dtype for array in parameters(self) + buffers(self)}
        if len(dtypes) > 1:
            raise TypeError(f"{type(self).__name__}: all parameters must share one dtype, got "
                            f"{sorted(map(str, dtypes))}{self._dtype_culprit(dtypes)}")
        object.__setattr__(self, "dtype", dtypes.pop() if dtypes else None)
        object.__setattr__(self, "_paths", tuple(path for path, _ in kids))
        object.__setattr__(self, "_kids", tuple(child for _, child in kids))
        object.__setattr__(self, "_forwards", tuple(forward_of(child) for _, child in kids))
        object.__setattr__(self, "_nested", tuple(isinstance(child, Combinator) for _, child in kids))
        self.output_shape(None)

    def _gradients(self, **children):
        """The gradient record of this combinator: its class with ``children`` (the children's gradient records) in their
        fields, without building and checking it again (it has this record's structure: the children's backward made it)."""
        grads = object.__new__(type(self))
        for name in _field_names(type(self)):
            object.__setattr__(grads, name, children[name] if name in children else getattr(self, name))
        kids = grads._child_records()
        object.__setattr__(grads, "_kids", kids)
        object.__setattr__(grads, "_forwards", tuple([forward_of(child) for child in kids]))
        return grads

    def _dtype_culprit(self, dtypes) -> str:
        counts = {}
        for path, child in self.children():
            for array in parameters(child) + buffers(child):
                counts.setdefault(array.dtype, []).append(path)
        minority = min(counts, key=lambda d: len(set(counts[d])))
        paths = list(dict.fromkeys(counts[minority]))
        return f" ({', '.join(paths)} {'is' if len(paths) == 1 else 'are'} {minority})"

    # ---- shared: shapes ----------------------------------------------------------------------------

    def child_shape(self, i: int, input_shape):
        """Child i's output shape for ``input_shape`` (None: unknown); a ShapeError gets the child's path."""
        child = self._kids[i]
        if not hasattr(child, "output_shape"):
            return None
        try:
            return child.output_shape(input_shape)
        except PATHED as error:
            raise error.within(self._paths[i], self._source(i)) from None

    def _source(self, i: int) -> str | None:
        """What gives child i its input, for messages (None: the combinator's own input)."""
        return None

    def output_shape(self, input_shape):
        """Per-sample output shape for a per-sample input shape (None: unknown); checks that the children fit."""
        return self._output(input_shape, self._child_shapes(input_shape))

    # ---- shared: running a child -------------------------------------------------------------------

    def _run(self, i: int, x, mode: Mode):
        """Child i's forward (unchecked), with its path on errors and ``mode.observe`` told of its output."""
        try:
            if mode.observe is None:
                return self._forwards[i](x, mode)
            inner = mode
            if self._nested[i]:
                inner = attrs.evolve(mode, observe=_Prefixed(mode.observe, self._paths[i]))
            y, cache = self._forwards[i](x, inner)
            mode.observe(self._paths[i], self._kids[i], y)
            return y, cache
        except PATHED as error:
            raise error.within(self._paths[i], self._source(i)) from None

    def _run_back(self, i: int, cache, dy, mode: Mode):
        """Child i's backward, with its path on errors; dx must come back unless ``mode.input_grad`` is False
        or the child takes ids (which have no gradient: dx None, passed on)."""
        child = self._kids[i]
        try:
            dx, grads = child.backward(cache, dy, mode)
        except PATHED as error:
            raise error.within(self._paths[i]) from None
        if type(grads) is not type(child):
            raise TypeError(wrong_gradients(child, grads, self._paths[i]))
        if dx is None and mode.input_grad and not takes_ids(child):
            raise TypeError(f"{self._paths[i]} {describe(child)}: backward returned dx None, but the mode asks "
                            f"for the input gradient (mode.input_grad is True)")
        return dx, grads

    # ---- shared: the outermost call ----------------------------------------------------------------

    def forward(self, x, mode: Mode):
        """(n, ...) -> (y, cache); the outermost call casts and checks x (nested combinators never check again)."""
        return self._forward(entry(self, x, dtype=self.dtype), mode)

    # ---- shared: the summary -----------------------------------------------------------------------

    def _rows(self, input_shape, prefix: str, depth: int) -> list:
        rows = []
        for path, child, (shape_in, shape) in zip(self._paths, self._kids, self._child_shapes(input_shape)):
            full = f"{prefix}.{path}" if prefix else path
            rows.append(("  " * depth + full, describe(child),
                         "?" if shape is None else format_shape(shape), f"{count_parameters(child):,}"))
            if isinstance(child, Combinator):
                rows.extend(child._rows(shape_in, full, depth + 1))
        return rows

    def summary(self, input_shape=None) -> str:
        """One row per layer (nested layers indented): path, layer, output shape, parameter count; then the total."""
        if input_shape is not None:
            self.output_shape(input_shape)      # the top level's own wiring too (a Residual's identity)
        rows = self._rows(input_shape, "", 0)
        header = ("path", "layer", "output", "parameters")
        widths = [max(len(r[k]) for r in [header, *rows]) for k in range(4)]

        def line(r):
            return "  ".join([r[0].ljust(widths[0]), r[1].ljust(widths[1]),
                              r[2].ljust(widths[2]), r[3].rjust(widths[3])]).rstrip()

        total = f"total: {count_parameters(self):,} parameters"
        if self.dtype is not None:
            total += f" ({self.dtype})"
        return "\n".join([line(header), *map(line, rows), total])

