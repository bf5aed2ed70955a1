"""Layers written the way a user would, for the tests: lamina knows nothing about them."""

from __future__ import annotations

import attrs
import numpy as np

from lamina import layers


@attrs.frozen
class Scale(layers.Layer):
    """The README's user layer, as it is there: y = x * gain, one gain per feature (x (n, f), gain (f,))."""

    gain: np.ndarray = layers.param()

    def forward(self, x, mode):
        return x * self.gain, x

    def backward(self, x, dy, mode):
        return dy * self.gain, Scale(gain=(dy * x).sum(axis=0))


@layers.register(name="TestGatedSum")      # (the README registers its own GatedSum)
@attrs.frozen(repr=False)
class GatedSum(layers.Combinator):
    """The README's user combinator: y = a(x) * sigmoid(b(x)), written on the public seam only."""

    a: object
    b: object

    def children(self):
        return (("a", self.a), ("b", self.b))

    def output_from(self, input_shape, outputs):
        if None not in outputs and tuple(outputs[0]) != tuple(outputs[1]):
            raise layers.ShapeError("GatedSum", f"b's output like a's {outputs[0]}", outputs[1], source="b")
        return outputs[0]

    def forward_unchecked(self, x, mode):
        ya, cache_a = self.forward_child(0, x, mode)
        yb, cache_b = self.forward_child(1, x, mode)
        gate = 1 / (1 + np.exp(-yb))
        return ya * gate, (cache_a, cache_b, ya, gate)

    def backward(self, cache, dy, mode):
        cache_a, cache_b, ya, gate = cache
        dxa, a = self.backward_child(0, cache_a, dy * gate, mode)
        dxb, b = self.backward_child(1, cache_b, dy * ya * gate * (1 - gate), mode)
        return layers.add_input_grads(dxa, dxb), self.gradient_record(a=a, b=b)
