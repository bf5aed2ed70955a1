"""ONNX forms of the built-in combinators (each child written through ``graph.layer`` at its path), Join and
Transposed."""

from __future__ import annotations

from lamina.layers.concat import Concat
from lamina.layers.fork import Fork
from lamina.layers.join import Join
from lamina.layers.onnx.forms import form
from lamina.layers.parallel import Parallel
from lamina.layers.residual import Residual
from lamina.layers.sequence import Sequence
from lamina.layers.transposed import Transposed


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


@form(Fork)
def fork(layer, graph, x):
    """Every branch on x: the tuple of their outputs."""
    return tuple(graph.layer(child, x, path) for path, child in layer.children())


@form(Parallel)
def parallel(layer, graph, x):
    """Branch i on input i: the tuple of their outputs."""
    return tuple(graph.layer(child, part, path) for (path, child), part in zip(layer.children(), x))


@form(Join)
def join(layer, graph, x):
    """A tuple -> its parts joined on the last axis, or added in order."""
    if layer.how == "concat":
        return graph.add_node("Concat", list(x), axis=-1)
    total = x[0]
    for part in x[1:]:
        total = graph.add_node("Add", [total, part])
    return total


@form(Transposed)
def transposed(layer, graph, x):
    """y = x @ layer.weight.T (+ bias): the layer's weight stored once, transposed by a node."""
    weight = graph.add_initializer(layer.layer.weight, "layer.weight")
    weight = graph.add_node("Transpose", [weight], perm=[1, 0])
    y = graph.add_node("MatMul", [x, weight])
    return y if layer.bias is None else graph.add_node("Add", [y, graph.add_initializer(layer.bias, "bias")])
