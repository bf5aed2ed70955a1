"""ONNX forms of BatchNorm (inference: the running statistics) and LayerNorm, on the last axis of any rank."""

from __future__ import annotations

import numpy as np

from lamina.layers.batch_norm import BatchNorm
from lamina.layers.layer_norm import LayerNorm
from lamina.layers.onnx.forms import form


def inverse_sigma(graph, variance, eps):
    """1 / sqrt(variance + eps)."""
    shifted = graph.add_node("Add", [variance, graph.constant(eps)])
    return graph.add_node("Reciprocal", [graph.add_node("Sqrt", [shifted])])


@form(BatchNorm)
def batch_norm(layer, graph, x):
    """y = weight * (x - running_mean) / sqrt(running_var + eps) + bias, broadcast on the last axis."""
    inv_sigma = inverse_sigma(graph, graph.add_initializer(layer.running_var, "running_var"), layer.eps)
    centered = graph.add_node("Sub", [x, graph.add_initializer(layer.running_mean, "running_mean")])
    x_hat = graph.add_node("Mul", [centered, inv_sigma])
    scaled = graph.add_node("Mul", [graph.add_initializer(layer.weight, "weight"), x_hat])
    return graph.add_node("Add", [scaled, graph.add_initializer(layer.bias, "bias")])


@form(LayerNorm)
def layer_norm(layer, graph, x):
    """LayerNormalization, last axis (opset 17); float64 writes it out (its eps attribute is float32)."""
    weight, bias = graph.add_initializer(layer.weight, "weight"), graph.add_initializer(layer.bias, "bias")
    if graph.dtype == np.float32:
        graph.require(17, "LayerNorm (ONNX's LayerNormalization)")
        return graph.add_node("LayerNormalization", [x, weight, bias], axis=-1, epsilon=float(layer.eps))
    centered = graph.add_node("Sub", [x, graph.reduce("ReduceMean", x, [-1], keepdims=True)])
    variance = graph.reduce("ReduceMean", graph.add_node("Mul", [centered, centered]), [-1], keepdims=True)
    x_hat = graph.add_node("Mul", [centered, inverse_sigma(graph, variance, layer.eps)])
    return graph.add_node("Add", [graph.add_node("Mul", [weight, x_hat]), bias])
