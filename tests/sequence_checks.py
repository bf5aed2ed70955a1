"""Checks the tests of the sequence layers share: gradients in both modes, alone and nested, and saving."""

from __future__ import annotations

import numpy as np

from lamina import layers

TOLERANCE = 1e-6


def check_both_modes(layer, x, record, where: str) -> None:
    """The layer's gradients against finite differences in training and in inference, alone and inside a
    Residual (which adds its input: only for layers whose output has the input's shape) or a Sequence."""
    for train in (False, True):
        record.add(layers.check_gradients(layer, x, train=train, tol=TOLERANCE), where)
        record.add(layers.check_gradients(layers.Sequence([layer]), x, train=train, tol=TOLERANCE), where)
        if np.asarray(x).dtype.kind == "f" and layer.output_shape(np.shape(x)[1:]) == tuple(np.shape(x)[1:]):
            record.add(layers.check_gradients(layers.Residual(layer), x, train=train, tol=TOLERANCE),
                       f"Residual({where})")


def check_saved_and_loaded(layer, x, folder) -> None:
    """Saved and loaded, the layer is equal and computes the same bits."""
    layers.save(folder / "layer.npz", layer)
    loaded = layers.load(folder / "layer.npz")
    assert loaded == layer and repr(loaded) == repr(layer)
    np.testing.assert_array_equal(loaded(x), layer(x))
