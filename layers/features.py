"""The part BatchNorm and LayerNorm share: arrays (n_features,), inputs with n_features on the last axis."""

from __future__ import annotations

import numpy as np

from lamina.layers.errors import ShapeError


def feature_arrays(layer_name: str, record, *groups: tuple[str, ...]) -> None:
    """ShapeError unless the named arrays of ``record`` are all (n_features,); TypeError unless each group
    shares a dtype."""
    first_name = groups[0][0]
    first = getattr(record, first_name)
    if first.ndim != 1:
        raise ShapeError(layer_name, f"a 1-D {first_name} (n_features,)",
                         f"{first_name} of shape {first.shape}")
    for group in groups:
        for name in group:
            array = getattr(record, name)
            if array.shape != first.shape:
                raise ShapeError(layer_name, f"{name} of shape {first.shape} to match {first_name}",
                                 f"{name} of shape {array.shape}")
            if array.dtype != getattr(record, group[0]).dtype:
                raise TypeError(f"{layer_name}: {group[0]} and {name} must share a dtype, "
                                f"got {getattr(record, group[0]).dtype} and {array.dtype}")


def check_features(layer, shape) -> None:
    """ShapeError unless the per-sample ``shape`` has ``layer.n_features`` on its last axis (None:
    unknown)."""
    if shape is not None and (len(shape) == 0 or shape[-1] not in (None, layer.n_features)):
        raise ShapeError(repr(layer), f"input (n, ..., {layer.n_features}) (features on the last axis)",
                         tuple(shape))


class PerFeature:
    """Mixin of a layer with a ``weight`` (n_features,) that keeps the shape of x (n, ..., n_features)."""

    __slots__ = ()

    @property
    def n_features(self) -> int:
        return self.weight.shape[0]

    def output_shape(self, input_shape):
        """(..., n_features) -> the same; another width is a ShapeError."""
        check_features(self, input_shape)
        return input_shape

    def check_input(self, x: np.ndarray) -> None:
        """ShapeError unless x is (n, ..., n_features)."""
        if x.ndim < 2 or x.shape[-1] != self.n_features:
            check_features(self, x.shape[1:] if x.ndim else ())
