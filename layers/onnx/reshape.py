"""ONNX forms of Flatten and Reshape: per sample, row-major, so channels-last data keeps lamina's order."""

from __future__ import annotations

from lamina.layers.onnx.forms import form
from lamina.layers.reshape import Flatten, Reshape


@form(Flatten)
def flatten(layer, graph, x):
    """(n, ...) -> (n, prod): Reshape to (batch, -1)."""
    return graph.add_node("Reshape", [x, graph.constant([0, -1])])


@form(Reshape)
def reshape(layer, graph, x):
    """(n, ...) -> (n, *shape): Reshape to (batch, *shape), its -1 inferred."""
    return graph.add_node("Reshape", [x, graph.constant([0, *layer.shape])])
