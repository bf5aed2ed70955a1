"""ONNX forms of BatchNorm (inference: the running statistics) and LayerNorm, on the last axis of any rank."""

from __future__ import annotations

from lamina.layers.batch_norm import BatchNorm
from lamina.layers.layer_norm import LayerNorm
from lamina.layers.onnx.forms import form


@form(BatchNorm)
def batch_norm(layer, graph, x):
    """y = weight * (x - running_mean) / sqrt(running_var + eps) + bias, broadcast on the last axis."""
    running_var = graph.add_initializer(layer.running_var, "running_var")
    variance = graph.add_node("Add", [running_var, graph.constant(layer.eps)])
    inv_sigma = graph.add_node("Reciprocal", [graph.add_node("Sqrt", [variance])])
    centered = graph.add_node("Sub", [x, graph.add_initializer(layer.running_mean, "running_mean")])
    x_hat = graph.add_node("Mul", [centered, inv_sigma])
    scaled = graph.add_node("Mul", [graph.add_initializer(layer.weight, "weight"), x_hat])
    return graph.add_node("Add", [scaled, graph.add_initializer(layer.bias, "bias")])


@form(LayerNorm)
def layer_norm(layer, graph, x):
    """ONNX's LayerNormalization over the last axis (opset 17)."""
    graph.require(17, "LayerNorm (ONNX's LayerNormalization)")
    weight, bias = graph.add_initializer(layer.weight, "weight"), graph.add_initializer(layer.bias, "bias")
    return graph.add_node("LayerNormalization", [x, weight, bias], axis=-1, epsilon=float(layer.eps))
