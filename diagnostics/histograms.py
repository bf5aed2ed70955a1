"""Weight histograms: how the values of each weight matrix are spread."""

from __future__ import annotations

import numpy as np

from lamina import layers


def weight_histograms(model, bins: int = 30) -> dict:
    """{path: {"edges": [bins + 1 floats], "counts": [bins ints]}} for every parameter of two or more axes (the weights)."""
    if isinstance(bins, bool) or not isinstance(bins, (int, np.integer)) or bins < 1:
        raise ValueError(f"weight_histograms: bins must be a positive int, got {bins!r}")
    histograms = {}
    for path, weight in layers.named_parameters(model):
        if weight.ndim >= 2 and weight.size:
            counts, edges = np.histogram(weight, bins=bins)
            histograms[path] = {"edges": [float(e) for e in edges], "counts": [int(c) for c in counts]}
    return histograms
