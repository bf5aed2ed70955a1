"""ONNX forms of Conv2D and the 2-D pools: lamina is channels-last (n, h, w, c), ONNX's operators are
channels-first, so each is a Transpose to (n, c, h, w), the operator, and a Transpose back (runtimes
cancel the pairs that meet between two such layers)."""

from __future__ import annotations

from lamina.layers.conv2d import Conv2D
from lamina.layers.onnx.forms import form
from lamina.layers.pooling import AvgPool2D, GlobalAvgPool2D, MaxPool2D


@form(Conv2D)
def conv2d(layer, graph, x):
    """Conv, its weight (kh, kw, c_in, c_out) as (c_out, c_in, kh, kw); pads (top, left, bottom, right)."""
    weight = graph.add_node("Transpose", [graph.add_initializer(layer.weight, "weight")], perm=[3, 2, 0, 1])
    top, bottom, left, right = layer.pads
    bias = graph.add_initializer(layer.bias, "bias")
    y = graph.add_node("Conv", [graph.channels_first(x, 4), weight, bias],
                       kernel_shape=list(layer.kernel_size), strides=list(layer.stride),
                       pads=[top, left, bottom, right])
    return graph.channels_last(y, 4)


@form(MaxPool2D, AvgPool2D)
def pool2d(layer, graph, x):
    """MaxPool / AveragePool over windows of ``size`` at steps of ``step``; averages count padded zeros."""
    ph, pw = layer.padding
    options = {"kernel_shape": list(layer.size), "strides": list(layer.step), "pads": [ph, pw, ph, pw]}
    if isinstance(layer, MaxPool2D):
        y = graph.add_node("MaxPool", [graph.channels_first(x, 4)], **options)
    else:
        y = graph.add_node("AveragePool", [graph.channels_first(x, 4)], count_include_pad=1, **options)
    return graph.channels_last(y, 4)


@form(GlobalAvgPool2D)
def global_avg_pool2d(layer, graph, x):
    """(n, h, w, c) -> (n, c): the mean over height and width."""
    return graph.reduce("ReduceMean", x, [1, 2])
