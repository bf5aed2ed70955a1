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
