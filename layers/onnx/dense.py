"""ONNX forms of Dense (any rank: MatMul + Add), the element-wise activations and Dropout (the identity)."""

from __future__ import annotations

import numpy as np

from lamina.layers.activations import (GELU, GELU_CUBIC, SQRT_2_OVER_PI, Identity, LeakyReLU, ReLU, Sigmoid,
                                       Tanh)
from lamina.layers.dense import Dense
from lamina.layers.dropout import Dropout
from lamina.layers.onnx.forms import form


@form(Dense)
def dense(layer, graph, x):
    """y = x @ weight + bias, on the last axis of any rank."""
    product = graph.add_node("MatMul", [x, graph.add_initializer(layer.weight, "weight")])
    return graph.add_node("Add", [product, graph.add_initializer(layer.bias, "bias")])


@form(ReLU, Sigmoid, Tanh)
def elementwise(layer, graph, x):
    """The ONNX operator of the same name (Relu, Sigmoid, Tanh)."""
    return graph.add_node({ReLU: "Relu", Sigmoid: "Sigmoid", Tanh: "Tanh"}[type(layer)], [x])


@form(LeakyReLU)
def leaky_relu(layer, graph, x):
    """y = x where x > 0, else negative_slope * x (LeakyRelu's alpha is a float32: float64 writes it out)."""
    if graph.dtype == np.float32:
        return graph.add_node("LeakyRelu", [x], alpha=float(layer.negative_slope))
    scaled = graph.add_node("Mul", [x, graph.constant(layer.negative_slope)])
    return graph.add_node("Where", [graph.add_node("Greater", [x, graph.constant(0.0)]), x, scaled])


@form(GELU)
def gelu(layer, graph, x):
    """y = x/2 (1 + tanh(sqrt(2/pi) (x + 0.044715 x^3))), written out as lamina computes it."""
    def mul(a, b):
        return graph.add_node("Mul", [a, b])

    cube = mul(mul(mul(graph.constant(GELU_CUBIC), x), x), x)
    t = graph.add_node("Tanh", [mul(graph.constant(SQRT_2_OVER_PI), graph.add_node("Add", [x, cube]))])
    return mul(mul(graph.constant(0.5), x), graph.add_node("Add", [graph.constant(1.0), t]))


@form(Identity, Dropout)
def identity(layer, graph, x):
    """y = x (Dropout in inference)."""
    return x
