"""ONNX forms of the built-in combinators: each child written through ``graph.layer`` at its path."""

from __future__ import annotations

from lamina.layers.concat import Concat
from lamina.layers.onnx.forms import form
from lamina.layers.residual import Residual
from lamina.layers.sequence import Sequence


@form(Sequence)
def sequence(layer, graph, x):
    """The layers in order."""
    for path, child in layer.children():
        x = graph.layer(child, x, path)
    return x


@form(Residual)
def residual(layer, graph, x):
    """y = inner(x) + shortcut(x), the shortcut x itself when None."""
    y = graph.layer(layer.inner, x, "inner")
    z = x if layer.shortcut is None else graph.layer(layer.shortcut, x, "shortcut")
    return graph.add_node("Add", [y, z])


@form(Concat)
def concat(layer, graph, x):
    """Every branch on x, joined on the last axis."""
    ys = [graph.layer(child, x, path) for path, child in layer.children()]
    return graph.add_node("Concat", ys, axis=-1)
