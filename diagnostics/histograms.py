"""Weight histograms: how the values of each weight matrix are spread."""

from __future__ import annotations

import numpy as np

from lamina import layers
from lamina.layers.settings import positive_int


def weight_histograms(model, bins: int = 30) -> dict:
    """{path: {"edges": [bins + 1 floats], "counts": [bins ints]}} for every parameter of two or more axes
    (the weights)."""
    positive_int("weight_histograms", "bins", bins)
    histograms = {}
    for path, weight in layers.named_parameters(model):
        if weight.ndim >= 2 and weight.size:
            counts, edges = np.histogram(weight, bins=bins)
            histograms[path] = {"edges": [float(e) for e in edges], "counts": [int(c) for c in counts]}
    return histograms
