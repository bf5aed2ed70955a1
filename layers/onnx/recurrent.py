"""ONNX forms of RNN, LSTM and GRU (ONNX's operators of the same names) and Bidirectional.

ONNX's operators are time-major and order their gates their own way: LSTM's blocks are i, o, f, c
where lamina's (torch's) are i, f, g, o; GRU's are z, r, h where lamina's are r, z, n, and lamina's
GRU formula is ONNX's ``linear_before_reset=1``. The weights are stored as lamina holds them; the
transposes and the gate order are nodes on them, which runtimes fold into constants.
"""

from __future__ import annotations

import numpy as np

from lamina.layers.bidirectional import Bidirectional
from lamina.layers.onnx.forms import form
from lamina.layers.recurrent import GRU, LSTM, RNN

ONNX_GATES = {RNN: (0,), LSTM: (0, 3, 1, 2), GRU: (1, 0, 2)}
"""For each ONNX gate block in order, the index of lamina's block."""


@form(RNN, LSTM, GRU)
def recurrent(layer, graph, x):
    """x (n, t, n_in) -> every step's hidden state (n, t, n_hidden), from a zero initial state."""
    h = layer.n_hidden
    rows = graph.constant(np.concatenate([np.arange(b * h, (b + 1) * h) for b in ONNX_GATES[type(layer)]]))

    def onnx_order(name, transpose):
        value = graph.add_initializer(getattr(layer, name), name)
        if transpose:
            value = graph.add_node("Transpose", [value], perm=[1, 0])
        return graph.add_node("Gather", [value, rows], axis=0)

    def one_direction(value):
        return graph.add_node("Unsqueeze", [value, graph.constant([0])])

    weight = one_direction(onnx_order("weight_input", True))
    recurrence = one_direction(onnx_order("weight_hidden", True))
    biases = [onnx_order("bias_input", False), onnx_order("bias_hidden", False)]
    bias = one_direction(graph.add_node("Concat", biases, axis=0))
    options = {"hidden_size": h}
    if isinstance(layer, RNN):
        options["activations"] = ["Tanh" if layer.nonlinearity == "tanh" else "Relu"]
    if isinstance(layer, GRU):
        options["linear_before_reset"] = 1
    time_major = graph.add_node("Transpose", [x], perm=[1, 0, 2])
    ys = graph.add_node(type(layer).__name__, [time_major, weight, recurrence, bias], **options)
    steps = graph.add_node("Squeeze", [ys, graph.constant([1])])       # (t, 1, n, h) -> (t, n, h)
    return graph.add_node("Transpose", [steps], perm=[1, 0, 2])


@form(Bidirectional)
def bidirectional(layer, graph, x):
    """[forward_layer(x), reversed(backward_layer(reversed(x)))] on the last axis, reversed along time."""
    ahead = graph.layer(layer.forward_layer, x, "forward_layer")
    behind = graph.layer(layer.backward_layer, graph.reverse(x, 1), "backward_layer")
    return graph.add_node("Concat", [ahead, graph.reverse(behind, 1)], axis=-1)
