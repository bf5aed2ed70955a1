"""ONNX forms of the sequence layers: Embedding (Gather), PositionalEmbedding, Conv1D, 1-D pools, LastStep."""

from __future__ import annotations

from lamina.layers.conv1d import Conv1D
from lamina.layers.embedding import Embedding
from lamina.layers.last_step import LastStep
from lamina.layers.onnx.forms import form
from lamina.layers.pooling1d import AvgPool1D, GlobalAvgPool1D, GlobalMaxPool1D, MaxPool1D
from lamina.layers.positional_embedding import PositionalEmbedding


@form(Embedding)
def embedding(layer, graph, ids):
    """ids (n, ...) int64 -> weight[ids] (n, ..., dim)."""
    return graph.add_node("Gather", [graph.add_initializer(layer.weight, "weight"), ids], axis=0)


@form(PositionalEmbedding)
def positional_embedding(layer, graph, x):
    """x (n, t, dim) -> x + weight[:t], t read at run time."""
    t = graph.add_node("Unsqueeze", [graph.size(x, 1), graph.constant([0])])
    rows = graph.add_node("Slice", [graph.add_initializer(layer.weight, "weight"), graph.constant([0]), t,
                                    graph.constant([0])])
    return graph.add_node("Add", [x, rows])


@form(Conv1D)
def conv1d(layer, graph, x):
    """Conv on (n, c, t), the weight (k, c_in, c_out) as (c_out, c_in, k); causal pads only at the start."""
    weight = graph.add_node("Transpose", [graph.add_initializer(layer.weight, "weight")], perm=[2, 1, 0])
    bias = graph.add_initializer(layer.bias, "bias")
    y = graph.add_node("Conv", [graph.channels_first(x, 3), weight, bias], kernel_shape=[layer.kernel_size],
                       strides=[layer.stride], dilations=[layer.dilation], pads=list(layer.pads))
    return graph.channels_last(y, 3)


@form(MaxPool1D, AvgPool1D)
def pool1d(layer, graph, x):
    """MaxPool / AveragePool over windows of ``size`` steps at steps of ``step``."""
    op = "MaxPool" if isinstance(layer, MaxPool1D) else "AveragePool"
    y = graph.add_node(op, [graph.channels_first(x, 3)], kernel_shape=[layer.size], strides=[layer.step])
    return graph.channels_last(y, 3)


@form(GlobalAvgPool1D, GlobalMaxPool1D)
def global_pool1d(layer, graph, x):
    """(n, t, c) -> (n, c): the mean or the maximum over time."""
    return graph.reduce("ReduceMean" if isinstance(layer, GlobalAvgPool1D) else "ReduceMax", x, [1])


@form(LastStep)
def last_step(layer, graph, x):
    """(n, t, f) -> (n, f): the step at index -1."""
    return graph.add_node("Gather", [x, graph.constant(-1)], axis=1)
