"""ONNX form of MultiHeadAttention: every head at once, as batched MatMuls over (n, heads, t, head_dim);
the causal mask is built from the sequence's length at run time, so it holds for any t."""

from __future__ import annotations

import math

import numpy as np

from lamina.layers.attention import MultiHeadAttention
from lamina.layers.onnx.forms import form


def later_keys(graph, x):
    """(t, t) booleans, true where the key comes after the query (the entries a causal mask hides)."""
    steps = graph.add_node("Range", [graph.constant(0), graph.size(x, 1), graph.constant(1)])
    keys = graph.add_node("Unsqueeze", [steps, graph.constant([0])])
    queries = graph.add_node("Unsqueeze", [steps, graph.constant([1])])
    return graph.add_node("Greater", [keys, queries])


@form(MultiHeadAttention)
def multi_head_attention(layer, graph, x):
    """x (n, t, dim) -> softmax(q k^T / sqrt(head_dim) (+ mask)) v, heads joined, @ weight_out + bias_out."""
    heads, size = layer.n_heads, layer.dim // layer.n_heads
    projected = graph.add_node("MatMul", [x, graph.add_initializer(layer.weight_qkv, "weight_qkv")])
    qkv = graph.add_node("Add", [projected, graph.add_initializer(layer.bias_qkv, "bias_qkv")])
    split = graph.add_node("Reshape", [qkv, graph.constant([0, 0, 3, heads, size])])
    parts = graph.add_node("Transpose", [split], perm=[2, 0, 3, 1, 4])          # (3, n, heads, t, head_dim)
    q, k, v = (graph.add_node("Gather", [parts, graph.constant(i)], axis=0) for i in range(3))
    q = graph.add_node("Mul", [q, graph.constant(1 / math.sqrt(size))])
    scores = graph.add_node("MatMul", [q, graph.add_node("Transpose", [k], perm=[0, 1, 3, 2])])
    if layer.causal:
        scores = graph.add_node("Where", [later_keys(graph, x), graph.constant(-np.inf), scores])
    attention = graph.add_node("Softmax", [scores], axis=-1)
    joined = graph.add_node("Transpose", [graph.add_node("MatMul", [attention, v])], perm=[0, 2, 1, 3])
    heads_out = graph.add_node("Reshape", [joined, graph.constant([0, 0, layer.dim])])
    y = graph.add_node("MatMul", [heads_out, graph.add_initializer(layer.weight_out, "weight_out")])
    return graph.add_node("Add", [y, graph.add_initializer(layer.bias_out, "bias_out")])
