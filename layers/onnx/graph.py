"""The ONNX graph a model is written into: nodes, initializers (each array object once), fresh names.

A layer's ONNX form is a function ``(layer, graph, x) -> y`` (a built-in's, in this package) or
the layer's own method ``to_onnx(self, graph, x) -> y``: ``x`` is the name of the input value (a
tuple of names for a tuple input), ``y`` the name (or tuple of names) of the output, and the
form adds what it needs through the methods below. Nothing here imports ``onnx``: the graph is
plain data until ``export_onnx`` turns it into a file.
"""

from __future__ import annotations

import numpy as np

from lamina.layers.layer import describe, onnx_form

MIN_OPSET = 13
"""The oldest opset written: Squeeze and Unsqueeze take their axes as inputs from 13 on."""


class Graph:
    """A graph being built: add_node, add_initializer, constant, fresh, layer (a child), require (an opset).

    ``dtype`` is the model's floating dtype (constants are made in it), ``opset`` the ONNX opset
    version the file declares, ``path`` the path of the layer whose form is running.
    """

    def __init__(self, dtype, opset: int, forms: dict):
        self.dtype, self.opset, self.path = np.dtype(dtype), opset, ""
        self.nodes: list[tuple] = []                 # (op, inputs, outputs, attributes)
        self.initializers: dict[str, np.ndarray] = {}
        self._stored: dict[int, tuple] = {}          # id(array) -> (array, name): a shared array stored once
        self._taken: set[str] = set()
        self._forms = forms

    def fresh(self, hint: str = "v") -> str:
        """A value name not used before, made from the current layer's path and ``hint``."""
        return self._unique(f"{self.path}/{hint}" if self.path else hint)

    def add_node(self, op: str, inputs, outputs: int = 1, **attributes):
        """Append the node ``op(*inputs)`` with ONNX ``attributes``; its output name (a tuple if several)."""
        names = tuple(self.fresh(op) for _ in range(outputs))
        self.nodes.append((op, list(inputs), list(names), attributes))
        return names[0] if outputs == 1 else names

    def add_initializer(self, array: np.ndarray, name: str = "const") -> str:
        """``array`` (floats in the graph's dtype) as the initializer ``path.name``; one array stored once."""
        stored = self._stored.get(id(array))
        if stored is not None and stored[0] is array:
            return stored[1]
        full = self._unique(f"{self.path}.{name}" if self.path else name)
        dtype = self.dtype if array.dtype.kind == "f" else None
        self.initializers[full] = np.asarray(array, dtype, order="C")
        self._stored[id(array)] = (array, full)      # the array is kept, so its id is never reused
        return full

    def _unique(self, name: str) -> str:
        """``name``, or ``name_2``, ``name_3``, ... when it is taken; taken from now on."""
        base, k = name, 1
        while name in self._taken:
            k += 1
            name = f"{base}_{k}"
        self._taken.add(name)
        return name

    def constant(self, value, dtype=None) -> str:
        """A small constant: floats in the model's dtype, integers as int64 (or ``dtype``)."""
        array = np.asarray(value)
        if dtype is None:
            dtype = self.dtype if array.dtype.kind == "f" else np.int64
        return self.add_initializer(array.astype(dtype), "const")

    def require(self, opset: int, what: str) -> None:
        """A ValueError naming the layer when the opset is older than ``opset``, which ``what`` needs."""
        if self.opset < opset:
            raise ValueError(f"{self.path or 'model'}: {what} needs ONNX opset {opset} or newer, but "
                             f"export_onnx was given opset={self.opset}; pass opset={opset} (or newer)")

    def layer(self, layer, x, path: str):
        """Write ``layer`` (the child at ``path`` of the running layer) on input ``x``; its output name(s)."""
        outer = self.path
        self.path = f"{outer}.{path}" if outer and path else (path or outer)
        try:
            form = onnx_form(layer)
            if form is not None:
                return form(self, x)
            builtin = self._forms.get(type(layer))
            if builtin is None:
                raise TypeError(
                    f"{self.path or 'model'} {describe(layer)}: {type(layer).__name__} has no ONNX form; "
                    f"give it a method to_onnx(self, graph, x) -> y that adds its nodes to graph (see "
                    f"lamina.layers.onnx.Graph: add_node, add_initializer, constant, layer for a child)")
            return builtin(layer, self, x)
        finally:
            self.path = outer

    # ---- conveniences for forms (opset differences hidden) --------------------------------------

    def reduce(self, op: str, x: str, axes, keepdims: bool = False) -> str:
        """``op`` (ReduceMean, ReduceMax, ...) over ``axes``: an attribute before opset 18, then an input."""
        if self.opset >= 18:
            return self.add_node(op, [x, self.constant(list(axes))], keepdims=int(keepdims))
        return self.add_node(op, [x], axes=list(axes), keepdims=int(keepdims))

    def size(self, x: str, axis: int) -> str:
        """The length of ``x``'s axis ``axis`` at run time, a scalar int64 (for dynamic axes)."""
        return self.add_node("Gather", [self.add_node("Shape", [x]), self.constant(axis)])

    def reverse(self, x: str, axis: int) -> str:
        """``x`` reversed along ``axis`` (a Slice with step -1)."""
        return self.add_node("Slice", [x, self.constant([-1]), self.constant([np.iinfo(np.int64).min]),
                                       self.constant([axis]), self.constant([-1])])

    def channels_first(self, x: str, rank: int) -> str:
        """(n, ..., c) -> (n, c, ...): the layout of ONNX's Conv and pools."""
        return self.add_node("Transpose", [x], perm=[0, rank - 1, *range(1, rank - 1)])

    def channels_last(self, x: str, rank: int) -> str:
        """(n, c, ...) -> (n, ..., c): back to lamina's layout."""
        return self.add_node("Transpose", [x], perm=[0, *range(2, rank), 1])
